"""What servicecast did on its own (an alert the policy opened) is named one way on every page: in an
alert's history and on the audit page, and the audit page's "Who" filter takes that name."""

from __future__ import annotations

import re

from sqlalchemy import select

from api import policy
from fleet import display, registration
from fleet.db import session
from fleet.tables import Alert, DataUseGrant, utcnow
from tests.api.support import World, add_prediction
from tests.console.client import ConsoleClient, sign_in, visible


def test_an_alert_the_policy_opened_reads_as_opened_by_servicecast(
    client: ConsoleClient, world: World
) -> None:
    machine = world.machines["acme"][2]
    add_prediction(world.engine, machine, risk=0.92, mode="seal_leak", hours_ahead=20)
    policy.run_once(engine=world.engine, settings=world.settings, now=utcnow())
    with session(world.engine) as sess:
        alert_id = sess.scalars(select(Alert.id).where(Alert.machine_id == machine)).one()
    sign_in(client, world, "admin")

    history = visible(client.get(f"/alerts/{alert_id}").text)
    assert re.search(r"UTC · \w+ by servicecast \(automatic\)", history), history
    audit = client.get("/admin/audit", params={"actor": "servicecast (automatic)", "subject": "alert"}).text
    rows = re.findall(r"<tr><td>.*?</td><td>(.*?)</td>", audit)
    assert rows and set(rows) == {"servicecast (automatic)"}, audit
    assert "system" not in history + visible(audit)


def test_a_customer_servicecast_registered_on_its_own_reads_as_added_by_servicecast(
    client: ConsoleClient, world: World
) -> None:
    """Registration without a named actor (the simulators') stores `display.SYSTEM_ACTOR`, the name rows
    written before it had one carry too: the audit page names servicecast for both."""
    ids = registration.register_machines(
        engine=world.engine, machines=[{"tenant": "initech", "machine": "m1"}]
    )
    ((customer_id, _),) = ids.values()
    with session(world.engine) as sess:
        granted_by = sess.scalars(
            select(DataUseGrant.granted_by).where(DataUseGrant.customer_id == customer_id)
        )
        assert set(granted_by) == {display.SYSTEM_ACTOR}
    sign_in(client, world, "admin")

    audit = client.get("/admin/audit", params={"subject": "customer", "subject_id": str(customer_id)}).text
    assert re.findall(r"<tr><td>.*?</td><td>(.*?)</td>", audit) == ["servicecast (automatic)"], audit
