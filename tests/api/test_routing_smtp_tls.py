"""E-mail over TLS (smtps:// and smtp://…?starttls=1) to a real SMTP server whose certificate names its host:
the certificate is checked against the host of SERVICECAST_SMTP_URL and the mail is delivered."""

from __future__ import annotations

import ssl
import subprocess

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select

from api import routing
from fleet.db import session
from fleet.tables import OutboxMessage
from tests.api.routing_support import SmtpSink, approved_offers, settings_for


@pytest.fixture
def certificate(tmp_path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A self-signed certificate for localhost, trusted by the router through SSL_CERT_FILE."""
    key, cert = tmp_path / "mx.key", tmp_path / "mx.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", str(key)]
        + ["-out", str(cert), "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return str(cert), str(key)


@pytest.mark.parametrize("scheme", ["smtps", "starttls"])
def test_mail_over_tls_is_delivered_with_the_certificate_checked_against_the_host(
    sqlite_engine: Engine, certificate: tuple[str, str], scheme: str
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    sink = SmtpSink()
    if scheme == "smtps":
        sink.controller = Controller(sink, hostname="127.0.0.1", port=sink.port, ssl_context=context)
        url = f"smtps://localhost:{sink.port}"
    else:
        sink.controller = Controller(
            sink, hostname="127.0.0.1", port=sink.port, tls_context=context, require_starttls=True
        )
        url = f"smtp://localhost:{sink.port}?starttls=1"
    sink.controller.start()
    try:
        settings = settings_for(smtp_url=url, mail_to="crm-inbox@oem.example")
        approved_offers(sqlite_engine, settings)
        report = routing.deliver_due(engine=sqlite_engine, settings=settings)
    finally:
        sink.controller.stop()

    with session(sqlite_engine) as sess:
        [row] = sess.scalars(select(OutboxMessage)).all()
    assert (report.delivered, row.status, row.last_error) == (1, "delivered", None), row.last_error
    assert len(sink.messages) == 1
