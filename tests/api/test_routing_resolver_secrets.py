"""A name's resolver that fails says why in text of its own (`delivery.addresses` keeps it as the reason):
whatever it quotes of the destination's secrets (a webhook URL's token, the SMTP password) is masked in the
outbox row and the router's report, as the HTTP client's and the SMTP server's errors are."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from api import routing
from fleet.db import session
from fleet.tables import OutboxMessage
from tests.api.routing_support import SECRET, approved_offers, settings_for

TOKEN, PASSWORD = "tok-SECRET-41", "pw-SECRET-42"
DESTINATIONS = {
    "webhook": {"webhook_url": f"http://crm.fail.test:8080/crm/hook?token={TOKEN}", "webhook_secret": SECRET},
    "email": {"smtp_url": f"smtp://router:{PASSWORD}@mail.fail.test:2525", "mail_to": "crm@oem.example"},
}


@pytest.mark.parametrize("destination", DESTINATIONS)
def test_a_resolver_s_reason_is_kept_without_the_destination_s_secrets(
    engine: Engine, destination: str
) -> None:
    values = DESTINATIONS[destination]
    url = values.get("webhook_url") or values["smtp_url"]

    def resolve(host: str) -> list[str]:
        raise OSError(f"no address for {host} (looked up for {url})")

    settings = settings_for(**values)
    approved_offers(engine, settings)

    report = routing.deliver_due(engine=engine, settings=settings, resolve=resolve)

    with session(engine) as sess:
        row = sess.scalars(select(OutboxMessage).where(OutboxMessage.destination == destination)).one()
    host = "crm.fail.test" if destination == "webhook" else "mail.fail.test"
    assert (row.status, report.retried) == ("pending", 1)
    assert row.last_error.startswith(f"cannot resolve {host}: no address for {host} (looked up for "), row
    for said in (row.last_error, *report.errors):
        assert TOKEN not in said and PASSWORD not in said and "***" in said, said
