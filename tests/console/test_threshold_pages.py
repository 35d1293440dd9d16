"""Over HTTP: the risk chart and the admin page show the alert threshold the policy applies."""

from __future__ import annotations

import html
import pickle
import re

from sqlalchemy import select

from api import policy
from api.app import create_app
from fleet.db import session
from fleet.tables import Alert, Machine, ModelVersion
from tests.api.support import NOW, add_prediction, build_world
from tests.console.client import ConsoleClient, sign_in

TRAINED = 0.8  # the version's stored operating threshold, above the policy's fallback of 0.5


def risk_chart(page: str) -> tuple[str, str]:
    """The risk chart's threshold label and its accessible description."""
    svg = re.search(r'<svg[^>]*aria-label="Failure risk of[^"]*".*?</svg>', page, re.S)
    label = re.search(r'<text class="limit-label"[^>]*>([^<]*)</text>', svg.group(0)).group(1)
    description = re.search(r"<desc[^>]*>([^<]*)</desc>", svg.group(0)).group(1)
    return html.unescape(label), html.unescape(description)


def risk_axis(page: str) -> list[str]:
    """The numbers on the risk chart's value axis, bottom to top (the texts aligned with its first one)."""
    svg = re.search(r'<svg[^>]*aria-label="Failure risk of[^"]*".*?</svg>', page, re.S).group(0)
    ticks = re.findall(r'<text class="tick" x="([^"]*)"[^>]*>([^<]*)</text>', svg)
    return [html.unescape(text) for x, text in ticks if x == ticks[0][0]]


def test_the_risk_chart_and_the_admin_page_show_the_versions_trained_threshold(world_url: str) -> None:
    world = build_world(world_url)
    scored, unscored = world.machines["acme"][2], world.machines["globex"][2]
    with ConsoleClient(create_app(world.settings)) as client:
        sign_in(client, world, "tech")
        # No model version stored yet (cold start): the policy's fallback.
        page = client.get(f"/machines/{unscored}").text
        label, description = risk_chart(page)
        assert label == "alert threshold 50 %" and description.endswith("; alert threshold 50 %")
        assert risk_axis(page) == ["0 %", "25 %", "50 %", "75 %", "100 %"]  # as risks read everywhere
    with session(world.engine) as sess:
        machine_type = sess.get(Machine, scored).machine_type
        sess.add(
            ModelVersion(
                version="test-1",  # the version add_prediction's rows name
                machine_type=machine_type,
                kind="fleet",
                params={},
                metrics={},
                artifact=pickle.dumps(None),
                active=True,
                threshold=TRAINED,
            )
        )
    add_prediction(world.engine, scored, risk=0.75)
    policy.run_once(engine=world.engine, settings=world.settings, now=NOW)
    with session(world.engine) as sess:  # the policy applied the trained threshold: 0.75 opened nothing
        assert sess.scalars(select(Alert).where(Alert.machine_id == scored)).all() == []
    with ConsoleClient(create_app(world.settings)) as client:
        sign_in(client, world, "tech")
        for machine_id in (scored, unscored):  # scored by test-1; the active test-1 scores it next
            label, description = risk_chart(client.get(f"/machines/{machine_id}").text)
            assert label == "alert threshold 80 %", machine_id
            assert description.endswith("; alert threshold 80 %"), machine_id
        sign_in(client, world, "am-acme")
        accounts = client.get("/accounts").text
        sign_in(client, world, "admin")
        admin = client.get("/admin").text
    # acme's latest risks 0.9, 0.75 and 0.75: one machine at or above the trained threshold
    row = re.search(r'<tr>\s*<th scope="row"><a href="/accounts/\d+">.*?</tr>', accounts, re.S).group(0)
    assert [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)][1:3] == [
        "3",
        "1",
    ]
    row = re.search(r"<tr>(?:(?!</tr>).)*test-1.*?</tr>", admin, re.S).group(0)
    assert "alert threshold 80 %" in row
