"""Server-drawn SVG charts: gaps, sparse series, limit and forecast, and an accessible description."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import pytest

from api.app import create_app
from api.console import charts
from fleet import telemetry
from fleet.db import session
from fleet.tables import Machine
from tests.api.support import build_world
from tests.console.client import ConsoleClient, sign_in

START = datetime(2026, 11, 1, tzinfo=UTC)


def _points(values: list[float | None]) -> list[tuple[datetime, float | None]]:
    return [(START + timedelta(hours=i), v) for i, v in enumerate(values)]


def test_missing_values_break_the_line_instead_of_joining_across_the_gap() -> None:
    values = [float(i) for i in range(100)]
    values[40:45] = [None] * 5
    svg = charts.render(
        charts.Chart("vibration", [charts.Line("v", _points(values))], START, START + timedelta(hours=99))
    )
    path = re.search(r'<path class="series" d="([^"]+)"', svg).group(1)
    assert path.count("M") == 2 and path.count("L") == 93
    assert "<circle" not in svg  # a dense series is a line only
    assert "100 points from 2026-11-01 00:00 to 2026-11-05 03:00 UTC" in svg


def test_a_sparse_series_is_drawn_as_dots() -> None:
    line = charts.Line("risk", _points([0.2, 0.9]), "series risk")
    svg = charts.render(
        charts.Chart("risk", [line], START, START + timedelta(days=1), y_range=(0, 1), limit=0.5)
    )
    assert svg.count('<circle class="dot series risk"') == 2
    assert svg.count('class="limit"') == 1


def test_the_forecast_runs_from_the_last_level_to_the_limit_and_widens_the_time_axis() -> None:
    end = START + timedelta(days=2)
    eta = end + timedelta(days=3)
    forecast = charts.Forecast(
        start=end, value=2.5, eta=eta, low=eta - timedelta(hours=12), high=eta + timedelta(days=1)
    )
    chart = charts.Chart(
        "vibration", [charts.Line("v", _points([2.0] * 48))], START, end, limit=3.5, forecast=forecast
    )
    svg = charts.render(chart)
    x2, y2 = re.search(
        r'<line class="forecast" x1="[^"]+" y1="[^"]+" x2="([^"]+)" y2="([^"]+)"', svg
    ).groups()
    limit_y = re.search(r'<line class="limit" x1="[^"]+" x2="[^"]+" y1="([^"]+)"', svg).group(1)
    assert y2 == limit_y  # the projection ends on the limit line
    right_edge = charts.WIDTH - charts.RIGHT
    assert float(x2) < right_edge  # the axis runs to the end of the band, past the ETA
    assert '<polygon class="band"' in svg and "expected to reach it 2026-11-06 00:00 UTC" in svg


BIG = 1.7976931348623157e308  # the largest finite float


def _numbers(svg: str) -> list[float]:
    """Every coordinate and size in the SVG's attributes and paths."""
    attributes = re.findall(r' (?:x|y|x1|x2|y1|y2|cx|cy|width|height)="([^"]+)"', svg)
    paths = re.findall(r'd="([^"]+)"', svg) + re.findall(r'points="([^"]+)"', svg)
    words = [w for p in paths for w in re.split(r"[ ,ML]+", p) if w]
    return [float(v) for v in attributes + words]


def _assert_drawable(svg: str) -> None:
    numbers = _numbers(svg)
    assert numbers and all(math.isfinite(v) for v in numbers)
    assert "nan" not in svg.lower() and "inf" not in svg.lower()


@pytest.mark.parametrize(
    "values",
    [
        [BIG, -BIG, 0.0, 5.0],
        [BIG] * 3,
        [-BIG, None, -BIG],
        [1.7e308, 1.6e308],
        [5e-324, 0.0],
        [1e300, -1e-300],
    ],
)
def test_any_finite_values_are_drawn_inside_the_plot(values: list[float | None]) -> None:
    chart = charts.Chart("vibration", [charts.Line("v", _points(values))], START, START + timedelta(days=1))
    svg = charts.render(chart)
    _assert_drawable(svg)
    path = re.search(r'<path class="series" d="([^"]+)"', svg)
    ys = [float(v) for v in re.findall(r"[ML][\d.-]+ ([\d.-]+)", path.group(1))] if path else []
    ys += [float(v) for v in re.findall(r'<circle class="dot series" cx="[^"]+" cy="([^"]+)"', svg)]
    assert ys and all(charts.TOP <= y <= charts.HEIGHT - charts.BOTTOM for y in ys)


def test_an_extreme_limit_and_forecast_are_drawn_and_an_infinite_one_is_left_out() -> None:
    end = START + timedelta(days=2)
    eta = end + timedelta(days=1)
    forecast = charts.Forecast(start=end, value=-BIG, eta=eta, low=eta, high=eta + timedelta(hours=6))
    line = charts.Line("v", _points([1.0, BIG, -BIG]))
    _assert_drawable(charts.render(charts.Chart("v", [line], START, end, limit=BIG, forecast=forecast)))
    infinite = charts.Chart("v", [line], START, end, limit=math.inf, forecast=forecast)
    svg = charts.render(infinite)
    _assert_drawable(svg)
    assert 'class="limit"' not in svg and 'class="forecast"' not in svg


def test_a_machine_page_with_the_largest_finite_readings_is_drawn(world_url: str) -> None:
    # One reading of ±1.7e308 made the machine page answer 500 (OverflowError in the chart's ticks).
    world = build_world(world_url)
    machine = world.machines["acme"][0]
    now = datetime.now(UTC).replace(microsecond=0)
    with session(world.engine) as sess:
        customer = sess.get(Machine, machine).customer_id
    rows = [
        {
            "customer_id": customer,
            "machine_id": machine,
            "seq": i + 1,
            "ts": now - timedelta(hours=10 - i),
            "readings": {"vibration_rms_mm_s": value},
            "received_at": now,
        }
        for i, value in enumerate([1.0, BIG, -BIG, 2.0, BIG])
    ]
    with world.engine.begin() as conn:
        telemetry.insert_telemetry(conn, rows)
    with ConsoleClient(create_app(world.settings)) as client:
        sign_in(client, world, "tech")
        page = client.get(f"/machines/{machine}")
    assert page.status_code == 200
    svgs = re.findall(r"<svg.*?</svg>", page.text, re.S)
    assert any("vibration" in svg for svg in svgs)
    for svg in svgs:
        _assert_drawable(svg)


def test_a_limit_already_crossed_is_dated_from_the_start_of_the_stretch_above_it() -> None:
    from datetime import UTC, datetime, timedelta

    from api.console.pages import _above_since

    t0 = datetime(2026, 11, 20, tzinfo=UTC)
    points = [(t0 + timedelta(hours=h), v) for h, v in enumerate([1.0, 5.0, 2.0, 5.5, None, 6.0, 7.0])]
    assert _above_since(points, 5.0) == t0 + timedelta(hours=3)
    assert _above_since(points[:3], 5.0) is None


def test_the_key_sensor_is_the_one_carrying_most_of_the_risk() -> None:
    from api.console.pages import _risk_carrier
    from fleet.tables import Prediction

    latest = Prediction(
        eta_sensor="bearing_temp_c",
        contributions=[
            {"sensor": "bearing_temp_c", "contribution": 0.12},
            {"sensor": "vibration_rms_mm_s", "contribution": 0.83},
            {"sensor": "flow_m3_h", "delta": -0.9},
        ],
    )
    assert _risk_carrier(latest) == "vibration_rms_mm_s"
    assert _risk_carrier(Prediction(contributions=[])) is None and _risk_carrier(None) is None
