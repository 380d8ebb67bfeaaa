"""HTTPS clients of the Folding@home work server (WS) and assignment server (AS), in one import.

Where each part lives:

* :mod:`fahflow.ws.transport`: the session, certificate reload, the retry loop and the
  translation of failures into :mod:`fahflow.errors` (:class:`~fahflow.ws.transport.Transport`),
  and which calls may be repeated by whom (:class:`~fahflow.ws.transport.Repeat`);
* :mod:`fahflow.ws.work_server`: the WS adaptive-sampling API (:class:`WorkServerClient`);
* :mod:`fahflow.ws.assignment_server`: the AS API (:class:`AssignmentServerClient`).

Connection settings from options and environment variables (``--url``, ``FAHFLOW_WS_URL``) are
the CLI's business (:mod:`fahflow.cli.ws`).
"""

from __future__ import annotations

from fahflow.ws.assignment_server import AssignmentServerClient
from fahflow.ws.transport import (
    DEFAULT_TIMEOUT,
    CertPair,
    Repeat,
    Timeout,
    Transport,
    Verify,
    parse_timeout,
)
from fahflow.ws.work_server import CREATE_FORMS, CreateForm, WorkServerClient

_Client = Transport  # the name the shared base had before the split

__all__ = [
    "CREATE_FORMS",
    "DEFAULT_TIMEOUT",
    "AssignmentServerClient",
    "CertPair",
    "CreateForm",
    "Repeat",
    "Timeout",
    "Transport",
    "Verify",
    "WorkServerClient",
    "parse_timeout",
]
