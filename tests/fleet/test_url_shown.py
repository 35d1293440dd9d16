"""URLs that carry their secret (incoming webhooks, tokens in the query, passwords) as a person or a log sees
them: scheme and host kept, the secret parts masked, in `servicecast check-config` and in any text."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fleet.redaction import redact_text, redact_url
from servicecast.cli import app

runner = CliRunner()
SLACK = "https://hooks.slack.com/services/T0SECRETA/B0SECRETB/XXXXslackSECRETxxxx"
TEAMS = "https://oem.webhook.office.com/webhookb2/1111aaaa@2222bbbb/IncomingWebhook/3333cccc/4444dddd"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (SLACK, "https://hooks.slack.com/services/***"),
        # The @ stands in the path: a reading up to the last @ took the host for a user name and kept it all.
        (TEAMS, "https://oem.webhook.office.com/webhookb2/***"),
        (
            "https://crm.example.com/in?token=tok-SECRET-1&sig=sig-SECRET-2",
            "https://crm.example.com/***?token=***&sig=***",
        ),
        ("https://webhook.site/6f2a0c4e-secret-uuid", "https://webhook.site/***"),
        (
            "https://crm:s3cr3t@crm.example.com:8443/hook#frag-SECRET",
            "https://crm:***@crm.example.com:8443/***#***",
        ),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
        # An unencoded / ended the authority inside the password: an HTTP client reads it as the port.
        ("https://crm:s3cr3t/x@crm.example/hook", "https://crm:***/***"),
        ("http://[::1]:8080/hooks/abc", "http://[::1]:8080/hooks/***"),
        (
            "postgresql+psycopg://app:hun/ter2@db.example/servicecast?sslmode=require&password=pw-SECRET",
            "postgresql+psycopg://app:***@db.example/servicecast?sslmode=require&password=***",
        ),
        (
            "smtps://mailer:m41l-SECRET@smtp.example:465?starttls=1",
            "smtps://mailer:***@smtp.example:465?starttls=1",
        ),
        ("s3://AKIAKEYID:aws-SECRET-key@bucket/archive", "s3://AKIAKEYID:***@bucket/archive"),
        ("sqlite:////srv/servicecast/var/servicecast.db", "sqlite:////srv/servicecast/var/servicecast.db"),
        ("var/archive", "var/archive"),
    ],
)
def test_a_url_is_shown_with_its_scheme_and_host_and_without_its_secret(url, shown):
    assert redact_url(url) == shown


def test_a_text_quoting_a_url_loses_the_secret_parts_even_percent_decoded():
    said = (
        "HTTP 404: <pre>Cannot POST /services/T0SECRETA/B0SECRETB/XXXXslackSECRETxxxx</pre> "
        "invalid token XXXXslackSECRETxxxx; Invalid port: 's3cr3t'; tok SECRET 1"
    )
    clean = redact_text(
        said, SLACK, "https://crm:s3cr3t/x@crm.example/hook", "https://x.example/?t=tok%20SECRET%201"
    )
    for secret in ("T0SECRETA", "B0SECRETB", "slackSECRET", "s3cr3t", "tok SECRET 1"):
        assert secret not in clean, clean
    assert clean.startswith("HTTP 404: <pre>Cannot POST /services/***</pre>")


@pytest.mark.parametrize(
    ("url", "secrets", "shown"),
    [
        (
            SLACK,
            ("T0SECRETA", "B0SECRETB", "slackSECRET"),
            "SERVICECAST_WEBHOOK_URL=https://hooks.slack.com/services/***",
        ),
        (
            "https://crm.example.com/servicecast/in?token=tok-SECRET-1",
            ("tok-SECRET-1",),
            "SERVICECAST_WEBHOOK_URL=https://crm.example.com/servicecast/***?token=***",
        ),
    ],
)
def test_check_config_shows_a_webhook_url_without_the_secret_it_carries(url, secrets, shown, monkeypatch):
    monkeypatch.setenv("SERVICECAST_WEBHOOK_URL", url)
    result = runner.invoke(app, ["check-config"])
    assert result.exit_code == 0, result.output
    assert shown in result.output.splitlines()
    for secret in secrets:
        assert secret not in result.output


def test_check_config_shows_an_archive_url_without_its_storage_key(monkeypatch):
    # ftp://: a scheme whose fsspec package is always there (s3:// needs s3fs, which the settings check)
    monkeypatch.setenv("SERVICECAST_ARCHIVE_URL", "ftp://archiver:SECRET-pass@files.example/archive")
    result = runner.invoke(app, ["check-config"])
    assert result.exit_code == 0, result.output
    assert "SERVICECAST_ARCHIVE_URL=ftp://archiver:***@files.example/archive" in result.output.splitlines()
    assert "SECRET-pass" not in result.output
