"""The simulator's certificate authority, standing in for the FAH assignment server's CA.

On first start the CA key and certificate, a server certificate for 127.0.0.1 and a volunteer
certificate are written under ``ROOT/ca/`` (keys 0600). Operators get certificates from a CSR,
either through :meth:`CertificateAuthority.issue` (the AS web UI) or ``POST /api/auth/csr``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fahflow.atomic import write_bytes
from fahflow.errors import ConfigError

VOLUNTEER_CN = "volunteer@sim.fahflow"
"""Common name of the simulated volunteers' certificate: only it may use ``/sim/`` endpoints."""


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fahflow simulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


@dataclass(frozen=True)
class CertificateAuthority:
    """CA material on disk; ``load_or_create`` makes it on the first start in ``directory``."""

    directory: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def server_cert_path(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key_path(self) -> Path:
        return self.directory / "server.key"

    @property
    def volunteer_cert_path(self) -> Path:
        return self.directory / "volunteer.pem"

    @property
    def volunteer_key_path(self) -> Path:
        return self.directory / "volunteer.key"

    @classmethod
    def load_or_create(cls, directory: Path) -> CertificateAuthority:
        directory.mkdir(parents=True, exist_ok=True)
        key_path, cert_path = directory / "ca.key", directory / "ca.pem"
        if key_path.exists() and cert_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            ca = cls(directory, key, x509.load_pem_x509_certificate(cert_path.read_bytes()))
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            now = datetime.now(UTC)
            cert = (
                x509.CertificateBuilder()
                .subject_name(_name("fahflow simulator CA"))
                .issuer_name(_name("fahflow simulator CA"))
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=True,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=True,
                        crl_sign=True,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .add_extension(
                    x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
                )
                .sign(key, hashes.SHA256())
            )
            write_bytes(key_path, _key_pem(key), perms=0o600)
            write_bytes(cert_path, cert.public_bytes(serialization.Encoding.PEM))
            ca = cls(directory, key, cert)
        ca._ensure_leaf(ca.server_key_path, ca.server_cert_path, "127.0.0.1", server=True)
        ca._ensure_leaf(ca.volunteer_key_path, ca.volunteer_cert_path, VOLUNTEER_CN, server=False)
        return ca

    def _ensure_leaf(self, key_path: Path, cert_path: Path, cn: str, *, server: bool) -> None:
        if key_path.exists() and cert_path.exists():
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if cert.not_valid_after_utc > datetime.now(UTC) + timedelta(days=1):
                return
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._sign(key.public_key(), _name(cn), timedelta(days=365), server=server)
        write_bytes(key_path, _key_pem(key), perms=0o600)
        write_bytes(cert_path, cert.public_bytes(serialization.Encoding.PEM))

    def _sign(
        self, public_key, subject: x509.Name, lifetime: timedelta, *, server: bool
    ) -> x509.Certificate:
        now = datetime.now(UTC)
        start = min(now, now + lifetime) - timedelta(minutes=5)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(now + lifetime)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        else:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
        return builder.sign(self.key, hashes.SHA256())

    def issue(self, csr_pem: bytes, lifetime: timedelta) -> bytes:
        """Sign a CSR: the certificate carries the CSR's subject and public key (so it matches the
        requester's private key). A negative ``lifetime`` gives an already expired certificate."""
        csr = load_csr(csr_pem)
        cert = self._sign(csr.public_key(), csr.subject, lifetime, server=False)
        return cert.public_bytes(serialization.Encoding.PEM)


def load_csr(csr_pem: bytes) -> x509.CertificateSigningRequest:
    """Parse and check a PEM CSR; a bad one is a :class:`ConfigError` naming what is wrong."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise ConfigError(f"CSR is not a PEM certificate signing request: {exc}") from None
    try:
        if not csr.is_signature_valid:
            raise ConfigError("CSR signature does not verify")
    except InvalidSignature:
        raise ConfigError("CSR signature does not verify") from None
    if not csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        raise ConfigError("CSR has no common name (CN = operator email)")
    return csr


def common_name(subject: x509.Name) -> str:
    attrs = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""
