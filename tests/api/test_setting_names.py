"""Messages about the router's and erasure announcements' settings name the variables the settings read."""

from __future__ import annotations

import pytest

from api import delivery, egress, erasure_events, notifications, offers, routing
from fleet.db import session
from fleet.settings import Settings, env_name
from fleet.tables import utcnow
from tests.api.routing_support import SECRET, settings_for
from tests.api.support import build_world


def test_a_settings_field_is_named_by_the_variable_the_settings_read(monkeypatch) -> None:
    monkeypatch.setenv(env_name("mail_to"), "ops@example.com")
    monkeypatch.setenv(env_name("route_timeout_s"), "7.5")

    assert (env_name("mail_to"), env_name("route_timeout_s")) == (
        "SERVICECAST_MAIL_TO",
        "SERVICECAST_ROUTE_TIMEOUT_S",
    )
    assert (Settings().mail_to, Settings().route_timeout_s) == ("ops@example.com", 7.5)
    with pytest.raises(KeyError, match="webhook_uri"):
        env_name("webhook_uri")  # a typo in a message's setting fails at import, not in front of an operator


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        (
            {},
            "nothing to route to: set SERVICECAST_WEBHOOK_URL (with SERVICECAST_WEBHOOK_SECRET) "
            "or SERVICECAST_SMTP_URL and SERVICECAST_MAIL_TO",
        ),
        (
            {"webhook_url": "ftp://crm.example/events", "webhook_secret": SECRET},
            "invalid setting SERVICECAST_WEBHOOK_URL: must be an http:// or https:// URL",
        ),
        (
            {"webhook_url": "https://crm.example/events"},
            "SERVICECAST_WEBHOOK_SECRET is required with SERVICECAST_WEBHOOK_URL (webhooks are signed)",
        ),
        ({"smtp_url": "smtp://mail.example:25"}, "SERVICECAST_MAIL_TO is required with SERVICECAST_SMTP_URL"),
        (
            {"smtp_url": "http://mail.example", "mail_to": "crm@example.com"},
            "invalid setting SERVICECAST_SMTP_URL: scheme must be smtp:// or smtps://, got http://",
        ),
    ],
)
def test_the_routers_setting_problems_name_the_variables(values: dict, problem: str) -> None:
    assert delivery.config_problem(settings_for(**values)) == problem


@pytest.mark.parametrize(
    ("destination", "values", "error"),
    [
        (
            "webhook",
            {"smtp_url": "smtp://mail.example:25"},
            "no SERVICECAST_WEBHOOK_URL/SERVICECAST_WEBHOOK_SECRET configured",
        ),
        (
            "email",
            {"webhook_url": "https://crm.example/events"},
            "no SERVICECAST_SMTP_URL/SERVICECAST_MAIL_TO configured",
        ),
    ],
)
def test_a_row_for_a_crm_destination_this_router_lacks_names_its_settings(
    destination: str, values: dict, error: str
) -> None:
    claim = routing.Claim(id=1, attempt=1, destination=destination, event_id="e", offer_id=None, payload={})

    with pytest.raises(delivery.DeliveryError) as raised:
        routing._send(claim, settings=settings_for(**values), client=None, resolve=None)
    assert str(raised.value) == error


def test_the_settings_named_for_erasure_announcements_and_webhook_egress() -> None:
    assert erasure_events.SETTING == {
        "webhook": "SERVICECAST_WEBHOOK_URL",
        "email": "SERVICECAST_SMTP_URL and SERVICECAST_MAIL_TO",
    }
    assert egress.SETTING == "SERVICECAST_WEBHOOK_ALLOW_NETWORKS"


def test_the_settings_named_for_unsent_e_mail_and_switched_off_offers(world_url: str) -> None:
    assert notifications.NO_SMTP == (
        "E-mail is not configured (SERVICECAST_SMTP_URL is unset): nothing is sent by e-mail until the admin "
        "sets it."
    )
    world = build_world(world_url, offers_per_account_per_week=0)
    with session(world.engine) as sess:
        why = offers.contact_limit(sess, world.customers["acme"], settings=world.settings, now=utcnow())
    assert why == (
        "contact limit: 0 contacts (offers sent or about to be, field visits) with this account in 7 days, "
        "at most 0; offers are switched off (SERVICECAST_OFFERS_PER_ACCOUNT_PER_WEEK=0)"
    )
