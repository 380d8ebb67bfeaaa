"""The simulator's one HTTP error type, independent of the client's errors.

A handler raises :class:`HttpError` for every answer that is not a success (bad input, unknown
project, conflict, refusal); the server turns it into ``{"error": message, "status": status}``.
Any other exception inside a handler, ``ValueError`` included, is a simulator bug: a 500 with the
traceback logged. Keeping the simulator off ``fahflow.errors``' client errors means a misreading
of the real WS cannot be shared by both sides (docs/simulator.md).
"""

from __future__ import annotations


class HttpError(Exception):
    """An HTTP error answer: ``status`` and a message that names the field and value at fault."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.message!r})"


def bad_request(message: str) -> HttpError:
    return HttpError(400, message)


def not_found(message: str) -> HttpError:
    return HttpError(404, message)


def conflict(message: str) -> HttpError:
    return HttpError(409, message)


def forbidden(message: str) -> HttpError:
    return HttpError(403, message)
