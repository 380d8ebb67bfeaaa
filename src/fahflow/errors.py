"""The exception tree shared by every fahflow module.

One base, a few leaves. Callers catch :class:`FahflowError` at the CLI boundary and turn it into a
one-line message and a non-zero exit code (``fahflow.cli``); library code raises the most specific
leaf so that tests and callers can tell failures apart without parsing messages.
"""

from __future__ import annotations

from typing import Any


class FahflowError(Exception):
    """Base of every error fahflow raises on purpose."""


class ConfigError(FahflowError, ValueError):
    """Bad user input: a config file, spec or argument. The message names file, field and value."""


class WorkServerError(FahflowError):
    """The work server (or assignment server) answered with an error or could not be reached.

    Attributes
    ----------
    method, url:
        The request that failed.
    status:
        HTTP status code, or ``None`` when no answer came back.
    body:
        The start of the server's answer (at most 500 characters), for the message.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        url: str = "",
        status: int | None = None,
        body: str = "",
        response: Any = None,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.status = status
        self.body = body
        self.response = response


class NotFound(WorkServerError):
    """404: the project, job or file does not exist (yet)."""


class Conflict(WorkServerError):
    """400/409/422: the server refused the request as invalid or conflicting with its state."""


class CertificateError(WorkServerError):
    """TLS handshake failure, 401 or 403: the client certificate is missing, expired or foreign."""


class TransientError(WorkServerError):
    """Timeouts, dropped connections, 429 and 502-504: safe to retry.

    Raised once the client's retries ran out.
    """


class LedgerError(FahflowError):
    """The ledger refused an operation (exhausted ids, unknown task, inconsistent state)."""


class AnalysisError(FahflowError):
    """The analysis could not produce a number it can stand behind."""


class InsufficientWorkError(AnalysisError):
    """Too few usable forward/reverse work pairs to estimate a free energy."""


class NotConvergedError(AnalysisError):
    """The estimator did not converge."""
