"""A long rollup refresh (`rollups refresh`, and `retention run` before it archives) says how far it got on
stderr, a short one nothing; stdout, which scripts read, holds the command's result as before."""

from __future__ import annotations

import io
import re

from sqlalchemy import func, select

from fleet import progress
from fleet.tables import RollupDirty
from tests.fleet.test_cli import run_cli
from tests.lifecycle import support

LINE = re.compile(r"rollup refresh: ([\d,]+) of ([\d,]+) machine-hours? \(\d+%\)")


def _small_fleet(engine) -> int:
    """Three machines of 80 hours each (three refresh batches of 100); returns the hours marked."""
    ids = support.register(engine, "acme", ["p1", "p2", "p3"])
    for n, pair in enumerate(ids.values()):
        support.write(engine, support.rows(pair, seqs=range(480), step_s=600.0, seed=n))
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(RollupDirty))


def _progress(stderr: str) -> list[tuple[int, int]]:
    """The progress lines of `stderr` as (done, total); a line that is not one is refused."""
    lines = [line for line in stderr.splitlines() if line.startswith("rollup refresh")]
    assert lines and all(LINE.fullmatch(line) for line in lines), stderr
    return [tuple(int(n.replace(",", "")) for n in LINE.fullmatch(line).groups()) for line in lines]


def _env(database_url: str, tmp_path, every_s: str = "0") -> dict[str, str]:
    """A run whose refresh reports after every batch (`every_s` 0): the small fleet's is as long as needed."""
    return {
        "SERVICECAST_DATABASE_URL": database_url,
        "SERVICECAST_ARCHIVE_URL": str(tmp_path / "archive"),
        "SERVICECAST_PROGRESS_EVERY_S": every_s,
    }


def test_rollups_refresh_reports_batches_done_of_the_total_on_stderr(engine, database_url, tmp_path):
    """Before: the refresh printed nothing until it ended."""
    marked = _small_fleet(engine)
    assert marked > 200
    done = run_cli("rollups", "refresh", **_env(database_url, tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"refreshed {marked} machine-hours\n"
    assert _progress(done.stderr) == [(100, marked), (200, marked), (marked, marked)]


def test_a_short_refresh_prints_nothing_on_stderr(engine, database_url, tmp_path):
    marked = _small_fleet(engine)
    done = run_cli("rollups", "refresh", **_env(database_url, tmp_path, every_s="3600"))
    assert (done.returncode, done.stdout, done.stderr) == (0, f"refreshed {marked} machine-hours\n", "")


def test_retention_run_reports_the_refresh_before_the_archive_on_stderr_only(engine, database_url, tmp_path):
    marked = _small_fleet(engine)
    done = run_cli("retention", "run", **_env(database_url, tmp_path))
    assert done.returncode == 0, done.stderr
    assert _progress(done.stderr)[-1] == (marked, marked)
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"telemetry_hot: did archive {3 * 480} rows older than ")
    assert all(re.fullmatch(r"\w+: did [\w ]+ \d+ [\w -]+ older than [\d-]+ [\d:]+(; .*)?", s) for s in lines)


def _lines(times: list[float], done: list[int], total: int) -> list[str]:
    """What a report of every 5 s writes when told `done` at `times` (the first is its start)."""
    clock, out = iter(times), io.StringIO()
    report = progress.Progress(
        "rollup refresh", "machine-hour", every_s=5.0, out=out, clock=lambda: next(clock)
    )
    for n in done:
        report(n, total)
    return out.getvalue().splitlines()


def test_progress_writes_once_the_step_is_long_then_every_few_seconds_and_the_last():
    assert _lines([0.0, 1.0, 5.0, 6.0, 9.9, 10.0, 11.0, 12.0], [100, 200, 300, 400, 500, 600, 600], 600) == [
        "rollup refresh: 200 of 600 machine-hours (33%)",
        "rollup refresh: 500 of 600 machine-hours (83%)",
        "rollup refresh: 600 of 600 machine-hours (100%)",
    ]
    assert _lines([0.0, 1.0, 2.0, 4.9], [100, 200, 300], 300) == []  # done before 5 s: nothing
