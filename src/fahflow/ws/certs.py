"""Operator certificates for the FAH work and assignment servers.

The AS issues a certificate for about a month to a key the operator keeps. The life cycle is:
:func:`create_key` (once, mode 0600) → :func:`create_csr` (CN = operator email) → the FAH team
issues the first certificate → :func:`renew_if_needed` from every batch, which asks the AS for a new
certificate once less than ``min_fraction_left`` of the current one's lifetime remains.

Renewal keeps the key (a key and a certificate are two files, and two files cannot be replaced in
one atomic step: reusing the key means the pair on disk always matches). The new certificate is
checked against the key before it replaces the old one atomically; the old one stays beside it as
``<name>.bak``. An expired certificate cannot be renewed (renewal authenticates with it), so that is
a clear error telling the operator to ask for a new one.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pydantic import BaseModel, ConfigDict

from fahflow.atomic import write_bytes
from fahflow.errors import CertificateError, ConfigError

if TYPE_CHECKING:
    from fahflow.ws.assignment_server import AssignmentServerClient

logger = logging.getLogger(__name__)

KEY_PERMS = 0o600
MIN_KEY_BITS = 2048
DEFAULT_MIN_FRACTION_LEFT = 0.3
_EMAIL = re.compile(r"^[^@\s/\\]+@[^@\s/\\]+\.[^@\s/\\]+$")

PathLike = str | os.PathLike[str]


class CertInfo(BaseModel):
    """What an operator needs to know about a certificate."""

    model_config = ConfigDict(frozen=True)

    path: Path
    subject: str
    issuer: str
    email: str | None
    serial: int
    not_before: datetime
    not_after: datetime
    fraction_left: float
    """Share of the lifetime still ahead, in [0, 1]: 0 when expired, 1 before ``not_before``."""

    @property
    def expired(self) -> bool:
        return self.fraction_left <= 0.0


def _read(path: PathLike, what: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} file {path}: {exc.strerror}") from None


def load_certificate(path: PathLike) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(_read(path, "certificate"))
    except ValueError as exc:
        raise ConfigError(f"{path} is not a PEM certificate: {exc}") from None


_WARNED_KEYS: set[tuple[str, int]] = set()


def warn_if_key_exposed(path: PathLike) -> bool:
    """Warn when a private key can be read by group or others; returns whether it can.

    The key is the operator's identity on every FAH server: anyone who can read it can act as the
    operator until the certificate expires. A warning, not a refusal, so that a batch already in
    production does not stop over it; each path and mode is warned about once per process.
    """
    target = Path(path).expanduser()
    try:
        mode = target.stat().st_mode & 0o777
    except OSError:
        return False  # a missing key is reported where it is read
    if not mode & 0o077:
        return False
    if (str(target), mode) not in _WARNED_KEYS:
        _WARNED_KEYS.add((str(target), mode))
        logger.warning(
            "private key %s is readable by group or others (mode %03o): run chmod 600 %s",
            target, mode, target,
        )  # fmt: skip
    return True


def expired_message(cert_path: PathLike, not_after: datetime) -> str:
    """What to tell an operator whose certificate has expired (the AS cannot renew it)."""
    return (
        f"operator certificate {cert_path} expired at {not_after:%Y-%m-%d %H:%M} UTC: it can "
        "no longer be renewed through the AS (fahflow cert renew authenticates with it): create "
        "a CSR (fahflow cert create-csr) and ask the FAH team for a new certificate; with "
        "ws.as_url set, batches renew it before it expires"
    )


def load_key(path: PathLike) -> rsa.RSAPrivateKey:
    warn_if_key_exposed(path)
    try:
        key = serialization.load_pem_private_key(_read(path, "private key"), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{path} holds a {type(key).__name__}, expected an RSA private key")
    return key


def _check_email(email: str) -> str:
    if not isinstance(email, str) or not _EMAIL.match(email):
        raise ConfigError(f"email must look like name@example.org, got {email!r}")
    return email


def create_key(path: PathLike, bits: int = 2048, *, force: bool = False) -> Path:
    """Write a new RSA private key (PEM, unencrypted, mode 0600) and return its path.

    Refuses to overwrite an existing key unless ``force``: the certificate issued for the old key
    would stop working.
    """
    target = Path(path).expanduser()
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < MIN_KEY_BITS:
        raise ConfigError(f"key size must be an integer >= {MIN_KEY_BITS} bits, got {bits!r}")
    if target.exists() and not force:
        raise ConfigError(f"key file already exists: {target} (use force to replace it)")
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_bytes(target, pem, perms=KEY_PERMS)
    logger.info("wrote %d-bit RSA key %s (mode 0600)", bits, target)
    return target


def csr_pem(key_path: PathLike, email: str) -> bytes:
    """A PEM certificate signing request for ``key_path`` with CN = ``email``."""
    key = load_key(key_path)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _check_email(email))])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def create_csr(key_path: PathLike, email: str, out_path: PathLike) -> Path:
    """Write a CSR (CN = operator email) for the key, to send to the FAH team or the AS."""
    return write_bytes(Path(out_path).expanduser(), csr_pem(key_path, email))


def _email_of(cert: x509.Certificate) -> str | None:
    for oid in (NameOID.EMAIL_ADDRESS, NameOID.COMMON_NAME):
        values = cert.subject.get_attributes_for_oid(oid)
        if values and "@" in str(values[0].value):
            return str(values[0].value)
    return None


def certificate_info(cert_path: PathLike, *, now: datetime | None = None) -> CertInfo:
    """Subject, issuer, validity and the fraction of lifetime left of a PEM certificate."""
    cert = load_certificate(cert_path)
    now = now or datetime.now(UTC)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    life = (end - start).total_seconds()
    left = (end - now).total_seconds()
    fraction = 0.0 if life <= 0 else min(1.0, max(0.0, left / life))
    return CertInfo(
        path=Path(cert_path),
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        email=_email_of(cert),
        serial=cert.serial_number,
        not_before=start,
        not_after=end,
        fraction_left=fraction,
    )


def _same_key(cert: x509.Certificate, key: rsa.RSAPrivateKey) -> bool:
    return cert.public_key().public_numbers() == key.public_key().public_numbers()


def check_pair(cert_path: PathLike, key_path: PathLike, *, now: datetime | None = None) -> CertInfo:
    """Raise :class:`CertificateError` unless the certificate matches the key and is valid now."""
    cert, key = load_certificate(cert_path), load_key(key_path)
    if not _same_key(cert, key):
        raise CertificateError(
            f"certificate {cert_path} does not match private key {key_path}: "
            "the certificate was issued for another key"
        )
    info = certificate_info(cert_path, now=now)
    now = now or datetime.now(UTC)
    if info.not_after <= now:
        raise CertificateError(expired_message(cert_path, info.not_after))
    if info.not_before > now:
        raise CertificateError(
            f"certificate {cert_path} is not valid before {info.not_before:%Y-%m-%d %H:%M} UTC"
        )
    return info


def renew_if_needed(
    cert_path: PathLike,
    key_path: PathLike,
    as_client: AssignmentServerClient,
    min_fraction_left: float = DEFAULT_MIN_FRACTION_LEFT,
    force: bool = False,
) -> bool:
    """Renew the certificate through the AS when less than ``min_fraction_left`` of its lifetime
    remains (or when ``force``). Returns whether it was renewed.

    The new certificate must match the key and be valid; then the old one is copied to
    ``<cert>.bak`` and the new one replaces it atomically. ``as_client`` drops its pooled
    connections; other clients notice the changed file on their next call.
    """
    if isinstance(min_fraction_left, bool) or not 0.0 < float(min_fraction_left) < 1.0:
        raise ConfigError(f"min_fraction_left must be between 0 and 1, got {min_fraction_left!r}")
    info = check_pair(cert_path, key_path)
    if not force and info.fraction_left >= min_fraction_left:
        logger.info(
            "certificate %s has %.0f%% of its lifetime left; no renewal",
            cert_path, 100 * info.fraction_left,
        )  # fmt: skip
        return False
    if info.email is None:
        raise CertificateError(f"certificate {cert_path} names no email to put in the CSR")
    new_pem = as_client.renew_certificate(csr_pem(key_path, info.email))
    try:
        new_cert = x509.load_pem_x509_certificate(new_pem)
    except ValueError as exc:
        raise CertificateError(f"the AS answered an unreadable certificate: {exc}") from None
    if not _same_key(new_cert, load_key(key_path)):
        raise CertificateError("the AS issued a certificate that does not match our key")
    if new_cert.not_valid_after_utc <= datetime.now(UTC):
        raise CertificateError("the AS issued a certificate that has already expired")
    target = Path(cert_path).expanduser()
    backup = target.with_name(target.name + ".bak")
    write_bytes(backup, target.read_bytes(), perms=target.stat().st_mode & 0o777)
    write_bytes(target, new_pem, perms=target.stat().st_mode & 0o777)
    as_client.reset()
    logger.warning(
        "renewed certificate %s: valid until %s (old one kept as %s)",
        target, f"{new_cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC", backup,
    )  # fmt: skip
    return True
