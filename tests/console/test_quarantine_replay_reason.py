"""The quarantine replay button returns to the page of the reason it replayed, whatever the reason holds."""

from __future__ import annotations

import hashlib
import html
from datetime import UTC, datetime

from fleet import telemetry
from fleet.contract import QUARANTINE_REASONS as REASONS
from ingest import quarantine
from tests.api.support import World
from tests.console.client import ConsoleClient, flash, sign_in

# Reasons are fixed codes today; the page and its redirect must not depend on that.
ODD = "a&b=c #d/e f+g%41 é"


def test_a_replay_returns_to_its_reasons_page_with_the_reason_intact(
    client: ConsoleClient, world: World
) -> None:
    client.app.state.replay_quarantine = quarantine.replay
    payload = b'{"seq": 1, "ts": "2026-11-23T08:00:00.000Z", "readings": {"flow_m3_h": 1.0}}'
    rows = [
        {
            "topic": "fleet/acme/acme-pump-0/telemetry",
            "payload": payload[:20],
            "original_size": len(payload) + i,  # only a prefix kept: not replayable, stays held
            "reason": reason,
            "detail": f"held as {reason}",
            "digest": hashlib.sha256(reason.encode()).hexdigest(),
            "received_at": datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
        }
        for i, reason in enumerate((ODD, "a"))
    ]
    with world.engine.begin() as conn:
        assert telemetry.insert_quarantine(conn, rows) == 2
    sign_in(client, world, "admin")
    response = client.post("/admin/quarantine/replay", data={"reason": ODD})
    assert response.status_code == 200
    page = html.unescape(response.text)
    assert f'name="reason" value="{ODD}"' in page  # the replay form names the reason again
    assert f"held as {ODD}" in page and "held as a<" not in page  # its row alone is listed


def test_a_replay_counts_the_messages_it_cannot_replay_as_still_held(
    client: ConsoleClient, world: World
) -> None:
    client.app.state.replay_quarantine = quarantine.replay
    row = {
        "topic": "fleet/acme/acme-pump-0/telemetry",
        "payload": b'{"seq": 1, "ts"',
        "original_size": 2_000_000,  # only a prefix kept
        "reason": "too_large",
        "detail": "payload has 2000000 bytes",
        "digest": hashlib.sha256(b"too large").hexdigest(),
        "received_at": datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
    }
    with world.engine.begin() as conn:
        assert telemetry.insert_quarantine(conn, [row]) == 1
    sign_in(client, world, "admin")
    response = client.post("/admin/quarantine/replay", data={"reason": "too_large"})
    assert flash(response.text) == (
        "Replayed 1 messages: 0 stored, 0 already stored, 1 still held "
        "(1 kept only in part cannot be replayed)."
    )


def test_an_unknown_reason_answers_422_naming_the_known_ones_and_replays_nothing(
    client: ConsoleClient, world: World
) -> None:
    client.app.state.replay_quarantine = quarantine.replay
    sign_in(client, world, "admin")
    response = client.get("/admin/quarantine", params={"reason": "unknown_machin"})
    assert response.status_code == 422
    page = html.unescape(response.text)
    assert "'unknown_machin'" in page and all(reason in page for reason in REASONS)
    replayed = client.post("/admin/quarantine/replay", data={"reason": "unknown_machin"})
    assert "'unknown_machin'" in html.unescape(flash(replayed.text)) and "Replayed" not in replayed.text


def test_a_known_reason_without_rows_is_an_empty_list(client: ConsoleClient, world: World) -> None:
    sign_in(client, world, "admin")
    response = client.get("/admin/quarantine", params={"reason": "too_large"})
    assert response.status_code == 200 and "Nothing held back." in response.text
