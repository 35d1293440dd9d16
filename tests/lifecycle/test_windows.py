"""Chart windows: long ones from hour rollups, fresh after late rows, and archived rows included."""

from __future__ import annotations

from datetime import timedelta

from fleet import archive, panels, retention, rollups
from fleet.settings import Settings
from tests.lifecycle import support


def _window(engine, machine_id, start, end, points, url):
    with engine.connect() as conn:
        return panels.read_window(
            conn, machine_id=machine_id, start=start, end=end, max_points=points, archive_url=url
        )


def test_long_window_from_rollups_matches_the_raw_means_and_sees_late_and_archived_rows(engine, tmp_path):
    ids = support.register(engine, "acme", ["p1"])
    machine = ids["p1"][1]
    support.write(engine, support.rows(ids["p1"], seqs=range(0, 6000, 2), step_s=60.0))
    url = str(tmp_path / "archive")
    rollups.refresh(engine, archive_url=url)
    # Bucket width 6 h, aligned with hours: rollup means equal the raw SQL means.
    start = support.START + timedelta(hours=1)
    end = start + timedelta(days=8)
    via_sql = _window(engine, machine, start, end, 32, None)
    via_rollups = _window(engine, machine, start, end, 32, url)
    assert via_sql.downsampled and via_rollups.downsampled
    assert via_rollups.rows == via_sql.rows == 3000 - 30
    assert [p[0] for p in via_rollups.points] == [p[0] for p in via_sql.points]
    for (_, a), (_, b) in zip(via_rollups.points, via_sql.points, strict=True):
        for k in a.keys() | b.keys():  # a sensor only ever null has no rollup: no key rather than None
            x, y = a.get(k), b.get(k)
            assert (x is None and y is None) or abs(x - y) < 1e-3, k

    # Edges inside an hour are read raw.
    edges = (start + timedelta(minutes=37), end - timedelta(days=4, minutes=11))
    assert _window(engine, machine, *edges, 32, url).rows == _window(engine, machine, *edges, 32, None).rows

    # Late rows, not refreshed yet: their hours are read raw, so the chart already counts them.
    support.write(engine, support.rows(ids["p1"], seqs=range(1, 600, 2), step_s=60.0))
    assert (
        _window(engine, machine, start, end, 32, url).rows
        == _window(engine, machine, start, end, 32, None).rows
    )

    # Archived: the same chart, though the hot table no longer holds those rows.
    rollups.refresh(engine, archive_url=url)
    expected = _window(engine, machine, start, end, 32, url)
    archive.run(engine, url=url, before=support.START + timedelta(days=3))
    assert _window(engine, machine, start, end, 32, url) == expected
    assert _window(engine, machine, start, end, 32, None).rows < expected.rows
    short = (support.START + timedelta(days=1), support.START + timedelta(days=1, hours=2))
    raw = _window(engine, machine, *short, 500, url)
    assert not raw.downsampled and raw.rows > 0


def test_a_chart_over_hours_whose_rollups_retention_deleted_reads_their_archived_rows(engine, tmp_path):
    """Imported history older than SERVICECAST_RETAIN_ROLLUP_HOUR_DAYS: the archive keeps it, charts too."""
    ids = support.register(engine, "acme", ["p1"])
    machine = ids["p1"][1]
    first = support.START - timedelta(days=1200)  # about three years before the fake clock's now
    support.write(engine, support.rows(ids["p1"], seqs=range(3 * 24 * 60), start=first, step_s=60.0))
    url = str(tmp_path / "archive")
    start, end = first + timedelta(hours=5, minutes=30), first + timedelta(days=2, hours=5, minutes=30)
    expected = _window(engine, machine, start, end, 24, None)  # every row still hot, read by SQL
    settings = Settings(archive_url=url, hot_days=14, retain_rollup_hour_days=730)
    rollups.refresh(engine, archive_url=url)  # without horizons: the rollups an older version made
    plan = retention.run(engine, settings=settings, now=support.START)
    assert {s.data_class: s.count for s in plan.steps}["rollup_hour"] > 0
    got = _window(engine, machine, start, end, 24, url)
    assert (got.rows, len(got.points)) == (expected.rows, len(expected.points)) == (2880, 24)
    assert got == expected
