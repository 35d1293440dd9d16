"""Fixtures of the sales tests: a real SMTP server (aiosmtpd) that keeps what it is sent."""

from __future__ import annotations

import pytest

from tests.api.routing_support import SmtpSink


@pytest.fixture
def sink():
    """An SMTP server on a free port; `messages` holds each e-mail it took."""
    smtp = SmtpSink()
    smtp.controller.start()
    yield smtp
    smtp.controller.stop()
