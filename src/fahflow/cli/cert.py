"""`fahflow cert ...`: the operator's key, CSR and certificate (:mod:`fahflow.ws.certs`).

``create-key`` and ``create-csr`` are done once; the FAH team signs the first CSR. ``renew`` belongs
in every batch (it does nothing until less than ``--min-fraction-left`` of the lifetime remains).
``show`` exits 1 when the certificate has expired or does not match ``--key``, so cron can alert.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from fahflow.errors import CertificateError
from fahflow.ws import certs
from fahflow.ws.assignment_server import AssignmentServerClient
from fahflow.ws.transport import DEFAULT_TIMEOUT

_FILE = click.Path(dir_okay=False, path_type=Path)
_CERT = click.option(
    "--cert", envvar="FAHFLOW_CERT", type=_FILE, required=True, help="Certificate (PEM)."
)


@click.group("cert")
def cert() -> None:
    """Operator key, certificate signing request and certificate for the FAH servers."""


@cert.command("create-key")
@click.option(
    "--key", envvar="FAHFLOW_KEY", type=_FILE, required=True, help="Where to write the key."
)
@click.option("--bits", type=int, default=2048, show_default=True, help="RSA key size.")
@click.option("--force", is_flag=True, help="Replace an existing key (its certificate dies).")
def create_key(key: Path, bits: int, force: bool) -> None:
    """Create an RSA private key, readable by its owner only (mode 0600)."""
    path = certs.create_key(key, bits, force=force)
    click.echo(f"wrote {bits}-bit RSA key {path} (mode 0600)")


@cert.command("create-csr")
@click.option("--key", envvar="FAHFLOW_KEY", type=_FILE, required=True, help="Private key (PEM).")
@click.option("--email", required=True, help="Operator email; becomes the CSR's CN.")
@click.option("--out", type=_FILE, required=True, help="Where to write the CSR (PEM).")
def create_csr(key: Path, email: str, out: Path) -> None:
    """Create a certificate signing request (CN = operator email) for the FAH team."""
    path = certs.create_csr(key, email, out)
    click.echo(f"wrote CSR for {email} to {path}")


@cert.command("show")
@_CERT
@click.option("--key", envvar="FAHFLOW_KEY", type=_FILE, help="Also check it matches this key.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def show(cert: Path, key: Path | None, as_json: bool) -> None:
    """Show a certificate's subject, issuer and validity; exit 1 if expired or mismatched."""
    info = certs.certificate_info(cert)
    if as_json:
        click.echo(json.dumps(info.model_dump(mode="json"), indent=2))
    else:
        table = Table(title=str(cert), show_header=False)
        left = info.not_after - datetime.now(UTC)
        rows = {
            "subject": info.subject,
            "email": info.email or "",
            "issuer": info.issuer,
            "serial": f"{info.serial:x}",
            "valid from": f"{info.not_before:%F %T} UTC",
            "valid until": f"{info.not_after:%F %T} UTC",
            "left": "EXPIRED"
            if info.expired
            else f"{left.days} d {left.seconds // 3600} h ({info.fraction_left:.0%} of lifetime)",
        }
        for name, value in rows.items():
            table.add_row(name, value)
        Console().print(table)
    if key is not None:
        certs.check_pair(cert, key)
        click.echo(f"certificate matches key {key}", err=True)
    elif info.expired:
        raise CertificateError(f"certificate {cert} expired at {info.not_after:%F %T} UTC")


@cert.command("renew")
@_CERT
@click.option("--key", envvar="FAHFLOW_KEY", type=_FILE, required=True, help="Private key (PEM).")
@click.option(
    "--as-url", envvar="FAHFLOW_AS_URL", required=True, help="Assignment server URL (https)."
)
@click.option(
    "--ca", envvar="FAHFLOW_CA", type=_FILE, help="CA bundle for the AS (default: system)."
)
@click.option(
    "--min-fraction-left",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=certs.DEFAULT_MIN_FRACTION_LEFT,
    show_default=True,
    help="Renew when less than this share of the lifetime remains.",
)
@click.option("--force", is_flag=True, help="Renew now, however long the certificate lasts.")
def renew(
    cert: Path, key: Path, as_url: str, ca: Path | None, min_fraction_left: float, force: bool
) -> None:
    """Renew the certificate through the assignment server when it is due.

    The new certificate replaces the old one atomically; the old one is kept as CERT.bak.
    """
    with AssignmentServerClient(
        as_url, cert=(cert, key), verify=ca or True, timeout=DEFAULT_TIMEOUT
    ) as client:
        renewed = certs.renew_if_needed(cert, key, client, min_fraction_left, force=force)
    info = certs.certificate_info(cert)
    verb = "renewed" if renewed else "not due"
    click.echo(
        f"{verb}: {cert} valid until {info.not_after:%F %T} UTC "
        f"({info.fraction_left:.0%} of lifetime left)"
    )


COMMANDS: list[click.Command] = [cert]
