"""Client of the Folding@home assignment server (AS): WS and project weights, certificate
renewal (DESIGN §1). Same transport as the WS client (:mod:`fahflow.ws.transport`)."""

from __future__ import annotations

import re
from urllib.parse import quote

import requests

from fahflow.errors import ConfigError, WorkServerError
from fahflow.ws.models import ASProjectData, ASWorkServerData
from fahflow.ws.transport import Repeat, Transport, check_id, json_answer

_HOST = re.compile(r"^[A-Za-z0-9_.:-]{1,253}$")


class AssignmentServerClient(Transport):
    """Client of the FAH assignment server: WS and project weights, certificate renewal."""

    _what = "assignment server"

    @staticmethod
    def _ws(ws_ip: str) -> str:
        if not isinstance(ws_ip, str) or not _HOST.match(ws_ip):
            raise ConfigError(f"ws_ip must be an IP address or host name, got {ws_ip!r}")
        return f"/api/ws/{quote(ws_ip, safe='')}"

    def get_ws(self, ws_ip: str) -> ASWorkServerData:
        return self._get_model(self._ws(ws_ip), ASWorkServerData)

    def put_ws(self, ws_ip: str, data: ASWorkServerData) -> None:
        self._put_json(self._ws(ws_ip), data.model_dump(mode="json", exclude_none=True))

    def get_project(self, ws_ip: str, p: int) -> ASProjectData:
        path = f"{self._ws(ws_ip)}/projects/{check_id('project', p, maximum=None)}"
        return self._get_model(path, ASProjectData)

    def put_project(self, ws_ip: str, p: int, data: ASProjectData) -> None:
        path = f"{self._ws(ws_ip)}/projects/{check_id('project', p, maximum=None)}"
        self._put_json(path, data.model_dump(mode="json", exclude_none=True))

    def renew_certificate(self, csr_pem: bytes) -> bytes:
        """POST a CSR with the current credentials; return the new PEM certificate.

        Not retried here on transient failures (each success issues a certificate), but a
        repeat is harmless: a lost answer is a :class:`~fahflow.errors.TransientError` and the
        caller may simply call again, since the key, and so the CSR, stay the same.
        """
        if isinstance(csr_pem, str):
            csr_pem = csr_pem.encode()
        if b"CERTIFICATE REQUEST" not in csr_pem:
            raise ConfigError("renew_certificate needs a PEM certificate signing request (CSR)")

        def read(response: requests.Response) -> bytes:
            text = response.text.strip()
            if text.startswith(("{", '"')):
                data = json_answer(response)
                text = data if isinstance(data, str) else str(data.get("certificate", ""))
            if "-----BEGIN CERTIFICATE-----" not in text:
                raise WorkServerError(
                    f"POST {response.url} answered no PEM certificate: {text[:200]!r}",
                    method="POST", url=response.url, status=response.status_code,
                )  # fmt: skip
            return text.strip().encode() + b"\n"

        return self._call(
            "POST", "/api/auth/csr", read, repeat=Repeat.BY_CALLER, json={"csr": csr_pem.decode()},
            check="renewing again is safe (same key, same CSR)",
        )  # fmt: skip
