"""The exception tree shared by every fahflow module.

One base, a few leaves. Callers catch :class:`FahflowError` at the CLI boundary and turn it into a
one-line message and a non-zero exit code (``fahflow.cli``); library code raises the most specific
leaf so that tests and callers can tell failures apart without parsing messages.

Which server errors may be retried, and by whom:

================== ======================================= =====================================
error              what happened                           who may try again
================== ======================================= =====================================
TransientError     the call did not succeed, and doing it  the caller, later (the next batch):
                   again is safe (timeouts and resets of   the client already retried what it
                   idempotent calls, 429, 502-504, a       may, with backoff
                   request that never left)
OutcomeUnknown     a non-idempotent call (create a CLONE,  nobody blindly: look at the server
                   a job action) was sent and its answer   first (``fahflow ws job P R C``); the
                   was lost: it may or may not have        ledger's intent row makes the next
                   happened                                batch do so (``batch.create``)
NotFound, Conflict the server answered and refused         nobody: the same request gets the
CertificateError                                           same answer until something changes
WorkServerError    any other error answer (500, bad data)  the operator, after a look
================== ======================================= =====================================
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
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

    Raised once the client's retries ran out, or at once for a call the client does not repeat
    itself although a repeat is harmless (certificate renewal: each success issues a
    certificate). Never raised when a repeat could do something twice: that is
    :class:`OutcomeUnknown`.
    """


class OutcomeUnknown(WorkServerError):
    """A non-idempotent call was sent and its answer was lost (a read timeout, a connection
    dropped after the request went out, 502-504): it may or may not have happened.

    Not a :class:`TransientError` on purpose: repeating it could create a job twice or restart
    one twice, so nobody retries it blindly. Find out first what the server did; ``check`` says
    how (for a job: ``fahflow ws job P R C``), and the message ends with it.
    """

    def __init__(self, message: str, *, check: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.check = check


class LedgerError(FahflowError):
    """The ledger refused an operation (exhausted ids, unknown task, inconsistent state)."""


class AnalysisError(FahflowError):
    """The analysis could not produce a number it can stand behind."""


class InsufficientWorkError(AnalysisError):
    """Too few usable forward/reverse work pairs to estimate a free energy."""


class NotConvergedError(AnalysisError):
    """The estimator did not converge."""


class StorageError(FahflowError, OSError):
    """A file fahflow needs could not be written or read: full disk, read-only or foreign
    directory, a corrupt or misplaced database. The message names the path and what to do.

    Also an :class:`OSError`, so code that already handles ``OSError`` keeps working. Build one
    with :meth:`from_os_error` or :meth:`from_sqlite_error`, which turn the system's words
    ("No space left on device", "file is not a database") into advice for an operator.
    """

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    @classmethod
    def from_os_error(
        cls, exc: OSError, path: str | os.PathLike[str] | None = None, *, action: str = "use"
    ) -> StorageError:
        """``exc`` as one line naming the file (``path``, else the error's own filename) and
        what to do; ``action`` is the verb of "cannot <action> <path>"."""
        if isinstance(exc, StorageError):
            return exc
        where = path if path is not None else exc.filename
        target = str(where) if where is not None else "a file"
        code = exc.errno
        if code in (errno.ENOSPC, errno.EDQUOT):
            advice = f"free space on its filesystem (df -h {_folder(target)}) and run again"
            reason = "no space left on device"
        elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
            advice = f"make {_folder(target)} writable by this user, or configure another path"
            reason = "read-only file system" if code == errno.EROFS else "permission denied"
        elif code == errno.EISDIR:
            reason, advice = "is a directory", "give the path of a file, not of a folder"
        elif code == errno.EIO:
            reason, advice = "I/O error", "check the disk (dmesg, df -h) and run again"
        else:
            reason = exc.strerror or type(exc).__name__
            advice = "check the path and run again"
        error = cls(f"cannot {action} {target}: {reason}: {advice}", path=where)
        error.errno = code
        return error

    @classmethod
    def from_sqlite_error(cls, exc: Exception, path: str | os.PathLike[str]) -> StorageError:
        """A ``sqlite3`` error about the database file itself, naming it and what to do."""
        text = str(exc)
        lowered = text.lower()
        if "not a database" in lowered or "malformed" in lowered:
            advice = (
                "it is corrupt or not a SQLite file: move it aside and restore it from a backup "
                "(never delete a ledger: its PRCG ids must never be reused)"
            )
        elif "full" in lowered:
            advice = f"the disk is full: free space (df -h {_folder(path)}) and run again"
        elif "disk i/o" in lowered:
            advice = (
                f"check free space and the disk (df -h {_folder(path)}, dmesg) and that the "
                "folder is writable, then run again"
            )
        elif "readonly" in lowered or "read-only" in lowered:
            advice = f"make {path} and {_folder(path)} writable by this user"
        elif "unable to open" in lowered:
            advice = f"check that {_folder(path)} exists, is a folder and is writable"
        else:
            advice = "check the file and run again"
        return cls(f"database {path}: {text}: {advice}", path=path)


def _folder(path: str | os.PathLike[str]) -> str:
    return str(Path(path).parent)
