"""Operator keys, CSRs and certificates (``fahflow.ws.certs``), renewal against a real mTLS AS.

The PKI and the scriptable server come from ``test_ws_client`` (a real HTTPS server that requires
client certificates); renewal through the simulator's AS is in ``test_ws_client`` too.
"""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from test_ws_client import EMAIL, MiniServer, Pki, Reply

from fahflow.errors import CertificateError, ConfigError, WorkServerError
from fahflow.ws import certs
from fahflow.ws.client import AssignmentServerClient


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def server(pki: Pki):
    with MiniServer(pki) as srv:
        yield srv


def test_create_key_is_private_and_never_overwritten_by_accident(tmp_path):
    path = certs.create_key(tmp_path / "keys" / "operator.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = certs.load_key(path)
    assert key.key_size == 2048
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"already exists: .*operator\.key"):
        certs.create_key(path)
    assert path.read_bytes() == before
    certs.create_key(path, 3072, force=True)
    assert certs.load_key(path).key_size == 3072
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["operator.key"]


@pytest.mark.parametrize("bits", [1024, "2048", True])
def test_create_key_refuses_weak_or_odd_sizes(tmp_path, bits):
    with pytest.raises(ConfigError, match="key size"):
        certs.create_key(tmp_path / "k.key", bits)
    assert not (tmp_path / "k.key").exists()


def test_create_csr_names_the_operator(tmp_path):
    key = certs.create_key(tmp_path / "op.key")
    out = certs.create_csr(key, EMAIL, tmp_path / "op.csr")
    csr = x509.load_pem_x509_csr(out.read_bytes())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == EMAIL
    assert csr.public_key().public_numbers() == certs.load_key(key).public_key().public_numbers()


@pytest.mark.parametrize("email", ["operator", "a@b", "x y@example.org", ""])
def test_create_csr_refuses_a_bad_email(tmp_path, email):
    key = certs.create_key(tmp_path / "op.key")
    with pytest.raises(ConfigError, match="email"):
        certs.create_csr(key, email, tmp_path / "op.csr")


def test_missing_or_malformed_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"certificate file not found: .*nope\.pem"):
        certs.certificate_info(tmp_path / "nope.pem")
    (tmp_path / "junk.pem").write_text("hello")
    with pytest.raises(ConfigError, match=r"junk\.pem is not a PEM certificate"):
        certs.certificate_info(tmp_path / "junk.pem")
    with pytest.raises(ConfigError, match=r"junk\.pem is not an unencrypted PEM private key"):
        certs.load_key(tmp_path / "junk.pem")
    ec_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "ec.key").write_bytes(ec_key)
    with pytest.raises(ConfigError, match="expected an RSA private key"):
        certs.load_key(tmp_path / "ec.key")


def test_certificate_info_reports_subject_and_fraction_left(pki):
    start = datetime(2026, 11, 1, tzinfo=UTC)
    cert, _ = pki.client("info", days=30, not_before=start)
    info = certs.certificate_info(cert, now=start + timedelta(days=21))
    assert info.subject == f"CN={EMAIL}" and info.email == EMAIL
    assert info.issuer == "CN=fahflow test CA"
    assert (info.not_before, info.not_after) == (start, start + timedelta(days=30))
    assert info.fraction_left == pytest.approx(0.3)
    assert certs.certificate_info(cert, now=start - timedelta(days=1)).fraction_left == 1.0
    late = certs.certificate_info(cert, now=start + timedelta(days=31))
    assert late.fraction_left == 0.0 and late.expired


def test_check_pair_catches_mismatch_expiry_and_future_certificates(pki, tmp_path):
    cert, key = pki.client("pair")
    other_key = certs.create_key(tmp_path / "other.key")
    assert certs.check_pair(cert, key).email == EMAIL
    with pytest.raises(CertificateError, match="does not match private key"):
        certs.check_pair(cert, other_key)
    expired, expired_key = pki.client("old", days=1, not_before=datetime.now(UTC) - timedelta(3))
    with pytest.raises(CertificateError, match=r"expired at .* ask the FAH team"):
        certs.check_pair(expired, expired_key)
    future, future_key = pki.client("new", not_before=datetime.now(UTC) + timedelta(days=2))
    with pytest.raises(CertificateError, match="not valid before"):
        certs.check_pair(future, future_key)


def _aging(pki: Pki, name: str, days_used: float) -> tuple[Path, Path]:
    return pki.client(name, days=30, not_before=datetime.now(UTC) - timedelta(days=days_used))


def _as(server: MiniServer, cert: tuple[Path, Path]) -> AssignmentServerClient:
    return AssignmentServerClient(server.url, cert=cert, verify=server.pki.ca_path, retries=0)


def test_renewal_waits_until_the_threshold(server, pki):
    cert, key = _aging(pki, "young", days_used=10)  # 67% left
    with _as(server, (cert, key)) as as_:
        assert certs.renew_if_needed(cert, key, as_, min_fraction_left=0.5) is False
        assert server.seen == []
        assert certs.renew_if_needed(cert, key, as_, min_fraction_left=0.7) is True
    assert [(s.method, s.path) for s in server.seen] == [("POST", "/api/auth/csr")]
    assert cert.with_name("young.pem.bak").exists()


def test_renewal_replaces_atomically_and_keeps_a_backup(server, pki):
    cert, key = _aging(pki, "due", days_used=25)
    old_pem = cert.read_bytes()
    mode = stat.S_IMODE(cert.stat().st_mode)
    with _as(server, (cert, key)) as as_:
        assert certs.renew_if_needed(cert, key, as_) is True
    assert cert.with_name("due.pem.bak").read_bytes() == old_pem
    info = certs.check_pair(cert, key)
    assert info.fraction_left > 0.99 and info.email == EMAIL
    assert stat.S_IMODE(cert.stat().st_mode) == mode
    leftovers = [p.name for p in cert.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    csr = x509.load_pem_x509_csr(json.loads(server.seen[0].body)["csr"].encode())
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == EMAIL


def test_expired_certificate_is_not_sent_for_renewal(server, pki):
    cert, key = pki.client("dead", days=1, not_before=datetime.now(UTC) - timedelta(days=2))
    with (
        _as(server, (cert, key)) as as_,
        pytest.raises(CertificateError, match=r"dead\.pem expired"),
    ):
        certs.renew_if_needed(cert, key, as_, force=True)
    assert server.seen == []


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        (b"<html>maintenance</html>", WorkServerError, "no PEM certificate"),
        (b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----", CertificateError,
         "unreadable"),
        ("other-key", CertificateError, "does not match our key"),
    ],
)  # fmt: skip
def test_a_bad_answer_from_the_as_leaves_the_certificate_alone(server, pki, answer, error, match):
    cert, key = _aging(pki, "keep", days_used=28)
    if answer == "other-key":
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        answer = pki.issue(other.public_key(), EMAIL)
    before = cert.read_bytes()
    server.script.append(Reply(body=answer))
    with _as(server, (cert, key)) as as_, pytest.raises(error, match=match):
        certs.renew_if_needed(cert, key, as_)
    assert cert.read_bytes() == before
    assert not cert.with_name("keep.pem.bak").exists()


def test_renewal_refused_by_the_as_is_a_typed_error(server, pki):
    cert, key = _aging(pki, "refused", days_used=28)
    server.script.append(Reply(403, b'{"error": "CSR is for someone else"}'))
    with _as(server, (cert, key)) as as_, pytest.raises(CertificateError, match="someone else"):
        certs.renew_if_needed(cert, key, as_)


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5, True])
def test_min_fraction_left_must_be_a_fraction(server, pki, fraction):
    cert, key = pki.client("frac")
    with _as(server, (cert, key)) as as_, pytest.raises(ConfigError, match="min_fraction_left"):
        certs.renew_if_needed(cert, key, as_, min_fraction_left=fraction)
