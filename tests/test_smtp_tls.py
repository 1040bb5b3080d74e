"""Alert email over STARTTLS to a real SMTP server (aiosmtpd) that requires TLS before a login: the server's
certificate and host name are verified, and a login is never sent in plain text."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from servers import free_port

from resources.alerts import AlertSettingError, EmailAlerts
from teem_assets.settings import Settings

USER, PASSWORD = "alerts", "smtp-canary-#1"


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _certificates(folder: Path, host_names: list[str]) -> tuple[Path, Path, Path]:
    """A certificate authority and a server certificate it signed for `host_names`: (CA, cert, key) PEM files."""
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(_name("teem test CA")).issuer_name(_name("teem test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    names = [x509.IPAddress(ipaddress.ip_address(n)) if n[0].isdigit() else x509.DNSName(n) for n in host_names]
    server = (
        x509.CertificateBuilder().subject_name(_name(host_names[0])).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(envelope.content)
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        self.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=auth_data.login.decode() == USER and auth_data.password.decode() == PASSWORD)


def _server(tmp_path: Path, host_names: list[str]) -> Iterator[tuple[_Inbox, int, Path]]:
    ca, cert, key = _certificates(tmp_path, host_names)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox, port = _Inbox(), free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
        authenticator=inbox.authenticate, auth_require_tls=True,
    )  # fmt: skip
    controller.start()
    try:
        yield inbox, port, ca
    finally:
        controller.stop()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[_Inbox, int, Path]]:
    yield from _server(tmp_path, ["127.0.0.1", "localhost"])


@pytest.fixture
def wrong_name_server(tmp_path: Path) -> Iterator[tuple[_Inbox, int, Path]]:
    yield from _server(tmp_path, ["mail.elsewhere.example"])


def _alerts(port: int, ca: Path | None, starttls: bool = True) -> EmailAlerts:
    return EmailAlerts(
        host="127.0.0.1", port=port, user=USER, password=PASSWORD, recipients=["data-team@example.com"],
        starttls=starttls, ca_file=str(ca) if ca else None,
    )  # fmt: skip


def test_starttls_with_a_trusted_certificate_logs_in_and_delivers(tls_server) -> None:
    inbox, port, ca = tls_server
    _alerts(port, ca).send("teem: a run failed", "body")
    assert inbox.logins == [(USER, PASSWORD)]
    assert len(inbox.messages) == 1 and b"Subject: teem: a run failed" in inbox.messages[0]


def test_a_certificate_nobody_trusts_is_refused_before_the_login(tls_server) -> None:
    inbox, port, _ = tls_server
    with pytest.raises(ssl.SSLCertVerificationError, match=r"self-signed certificate|unable to get local issuer"):
        _alerts(port, None).send("teem: a run failed", "body")
    assert inbox.logins == [] and inbox.messages == []


def test_a_certificate_for_another_host_is_refused_before_the_login(wrong_name_server) -> None:
    inbox, port, ca = wrong_name_server
    with pytest.raises(ssl.SSLCertVerificationError, match=r"IP address mismatch|Hostname mismatch"):
        _alerts(port, ca).send("teem: a run failed", "body")
    assert inbox.logins == [] and inbox.messages == []


def test_a_login_without_tls_is_refused(tls_server) -> None:
    inbox, port, ca = tls_server
    with pytest.raises(AlertSettingError, match="without TLS"):
        _alerts(port, ca, starttls=False).send("teem: a run failed", "body")
    with pytest.raises(AlertSettingError, match="TEEM_SMTP_USER is set with TEEM_SMTP_STARTTLS=false"):
        EmailAlerts.from_settings(Settings(smtp_host="127.0.0.1", smtp_user=USER, smtp_starttls=False))
    assert inbox.logins == [] and inbox.messages == []
