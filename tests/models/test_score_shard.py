"""`servicecast score --shard i/n`: shards split the fleet without overlap, resume, keep ids in order."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
import typer
from sqlalchemy import Engine, Integer, cast, func, literal, select
from typer.testing import CliRunner

from fleet.settings import get_settings
from fleet.tables import Machine, Prediction, Telemetry, utcnow
from fleet.telemetry import insert_telemetry
from models import scoring, versions
from models.cli import register
from models.scoring import Shard
from simulators.backfill import backfill
from simulators.config import FleetConfig
from simulators.engine import simulate
from tests import services
from tests.models.fleet_support import PUMP, pump_model

PUMPS_ONLY = ((PUMP, 1.0),)


def _pumps(engine: Engine, machines: int, seed: int) -> Engine:
    """`machines` pumps with 8 days of hourly telemetry, and an active pump model."""
    backfill(
        simulate(FleetConfig(machines=machines, days=8, seed=seed, step_seconds=3600, type_mix=PUMPS_ONLY)),
        engine,
    )
    versions.register(engine, model=pump_model(), machine_type=PUMP)
    return engine


@pytest.fixture
def store(engine: Engine) -> Engine:
    """Twelve pumps with 8 days of hourly telemetry and an active pump model."""
    backfill(
        simulate(FleetConfig(machines=12, days=8, seed=6, step_seconds=3600, type_mix=PUMPS_ONLY)), engine
    )
    versions.register(engine, model=pump_model(), machine_type=PUMP)
    return engine


def _machines(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return conn.scalars(select(Machine.id).order_by(Machine.id)).all()


def _per_machine(engine: Engine) -> Counter:
    with engine.connect() as conn:
        rows = conn.execute(select(Prediction.machine_id, func.count()).group_by(Prediction.machine_id)).all()
    return Counter(dict(rows))


def _new_row_each(engine: Engine) -> None:
    """One more reading per machine, arrived now: every machine is due again."""
    _newest_ts = func.max(Telemetry.ts)
    with engine.begin() as conn:
        newest = conn.execute(
            select(
                Telemetry.machine_id, Telemetry.customer_id, func.max(Telemetry.seq), func.max(Telemetry.ts)
            ).group_by(Telemetry.machine_id, Telemetry.customer_id)
        ).all()
        insert_telemetry(
            conn,
            [
                {
                    "customer_id": cid,
                    "machine_id": mid,
                    "seq": seq + 1,
                    "ts": ts + pd.Timedelta(hours=1),
                    "readings": {"flow_m3h": 100.0},
                    "fw": None,
                    "extra": None,
                    "received_at": utcnow(),
                }
                for mid, cid, seq, ts in newest
            ],
        )


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_parse_accepts_i_of_n_and_explains_the_rest() -> None:
    assert Shard.parse("0/1") == Shard(0, 1) and Shard.parse("2/3") == Shard(2, 3)
    assert str(Shard.parse(" 1 / 4 ")) == "1/4"
    for bad, says in [
        ("3/3", "shard index must be in 0..2 of 3, not 3"),
        ("1/0", "shard count must be at least 1, got 0"),
        ("-1/2", "i/n with whole numbers"),
        ("1", "i/n with whole numbers"),
        ("a/b", "i/n with whole numbers"),
    ]:
        with pytest.raises(ValueError, match=says):
            Shard.parse(bad)


def test_cli_rejects_a_bad_shard_before_touching_the_store(tmp_path, monkeypatch) -> None:
    db = tmp_path / "untouched.db"
    monkeypatch.setenv("SERVICECAST_DATABASE_URL", f"sqlite:///{db}")
    for bad, says in [("3/3", "0..2 of 3"), ("0/0", "at least 1"), ("x", "i/n")]:
        result = CliRunner().invoke(_app(), ["score", "--once", "--shard", bad])
        assert result.exit_code == 2, result.output
        assert says in result.output
    assert not db.exists()


def test_assignment_is_balanced_and_the_same_in_sql_and_python(engine: Engine) -> None:
    first = select(cast(literal(1), Integer).label("v")).cte("ids", recursive=True)
    ids = first.union_all(select(first.c.v + 1).where(first.c.v < 300))
    for n in (1, 2, 3, 7):
        owners = Counter()
        with engine.connect() as conn:
            for i in range(n):
                in_sql = conn.scalars(select(ids.c.v).where(Shard(i, n).where(ids.c.v))).all()
                assert sorted(in_sql) == [m for m in range(1, 301) if Shard(i, n).owns(m)]
                owners.update(in_sql)
        assert owners == Counter(range(1, 301))  # every id on exactly one shard
        assert all(Counter(_owner(m, n) for m in range(1, 301))[i] >= 300 // n - 1 for i in range(n))


def _owner(machine_id: int, n: int) -> int:
    return next(i for i in range(n) if Shard(i, n).owns(machine_id))


def _run_shard(url: str, shard: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SERVICECAST_DATABASE_URL": url}
    cmd = [sys.executable, "-m", "servicecast", "score", "--once", "--shard", shard]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.slow
def test_two_then_three_shards_cover_every_machine_once_per_pass(store: Engine) -> None:
    machines = _machines(store)
    url = store.url.render_as_string(hide_password=False)
    with ThreadPoolExecutor(max_workers=2) as pool:  # two scorer processes at the same time
        done = list(pool.map(lambda s: _run_shard(url, s), ["0/2", "1/2"]))
    for i, proc in enumerate(done):
        assert proc.returncode == 0, proc.stderr
        mine = sum(Shard(i, 2).owns(m) for m in machines)
        assert f"shard {i}/2: scored {mine} machines" in proc.stdout
    assert _per_machine(store) == Counter(dict.fromkeys(machines, 1))

    _new_row_each(store)
    models = versions.load_active(store)
    with ThreadPoolExecutor(max_workers=3) as pool:  # re-split into three: the per-machine watermarks hold
        reports = list(
            pool.map(lambda i: scoring.score_once(engine=store, models=models, shard=Shard(i, 3)), range(3))
        )
    assert [r.machines for r in reports] == [sum(Shard(i, 3).owns(m) for m in machines) for i in range(3)]
    assert _per_machine(store) == Counter(dict.fromkeys(machines, 2))
    assert all(scoring.score_once(engine=store, shard=Shard(i, 3)).machines == 0 for i in range(3))


class _Crashes:
    """The real model, except that its `after`+1-th batch dies (a scorer killed in the middle of a pass)."""

    def __init__(self, model, after: int) -> None:  # noqa: ANN001
        self._model, self._left = model, after

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._model, name)

    def predict_frame(self, panel: pd.DataFrame) -> pd.DataFrame:
        if self._left == 0:
            raise RuntimeError("scorer died")
        self._left -= 1
        return self._model.predict_frame(panel)


def test_a_restarted_shard_resumes_where_it_stopped(store: Engine) -> None:
    machines = _machines(store)
    shard = Shard(1, 3)
    mine = [m for m in machines if shard.owns(m)]
    assert len(mine) >= 3
    version, model = versions.load_active(store)[PUMP]
    with pytest.raises(RuntimeError, match="scorer died"):
        scoring.score_once(
            engine=store, models={PUMP: (version, _Crashes(model, 2))}, batch_machines=1, shard=shard
        )
    assert sum(_per_machine(store).values()) == 2  # two batches committed before it died

    again = scoring.score_once(engine=store, shard=shard, batch_machines=1)  # the restart
    assert again.machines == len(mine) - 2
    assert _per_machine(store) == Counter(dict.fromkeys(mine, 1))  # each once; no other shard's machine
    assert scoring.score_once(engine=store, shard=shard).machines == 0


@pytest.fixture
def pg_store(request: pytest.FixtureRequest) -> Engine:
    """The store on PostgreSQL only: SQLite has one writer at a time, so it cannot interleave commits."""
    if not services.postgres_available():
        services.unavailable(f"PostgreSQL at {services.POSTGRES_ADMIN_URL}")
    from fleet import migrate
    from fleet.db import make_engine

    db = services.PostgresDatabase().create()
    engine = make_engine(db.url)
    migrate.upgrade(engine)
    request.addfinalizer(db.drop)
    request.addfinalizer(engine.dispose)
    backfill(
        simulate(FleetConfig(machines=4, days=8, seed=7, step_seconds=3600, type_mix=PUMPS_ONLY)), engine
    )
    versions.register(engine, model=pump_model(), machine_type=PUMP)
    return engine


@pytest.mark.postgres
def test_the_policy_sees_every_prediction_of_concurrent_shards(pg_store: Engine) -> None:
    """Shard A writes first and commits last: the policy, which reads by id, must still get A's rows.

    Fails without `dialect.serialize` in `write_batch`: B commits larger ids while A's are uncommitted, the
    policy's watermark passes A's ids, and A's predictions never raise an alert.
    """
    from api import policy

    settings = get_settings()
    scoring.score_once(engine=pg_store)
    assert policy.run_once(engine=pg_store, settings=settings).predictions == 4
    with pg_store.connect() as conn:
        done = [dict(r._mapping) for r in conn.execute(select(Prediction.__table__))]
    rows = [{k: v for k, v in r.items() if k != "id"} for r in done]
    batches = [
        pd.DataFrame({"machine_id": [r["machine_id"] for r in part], "max_received": utcnow()})
        for part in (rows[:2], rows[2:])
    ]

    a_written, release = threading.Event(), threading.Event()

    def shard_a() -> None:
        with pg_store.begin() as conn:
            scoring.write_batch(conn, rows[:2], batches[0])
            a_written.set()
            release.wait(120)

    def shard_b() -> None:
        with pg_store.begin() as conn:
            scoring.write_batch(conn, rows[2:], batches[1])

    with ThreadPoolExecutor(max_workers=2) as pool:
        a = pool.submit(shard_a)
        assert a_written.wait(120)
        b = pool.submit(shard_b)
        deadline = time.monotonic() + 120  # a hang guard, not a timing assertion
        waiting = services.waiting_on_advisory_lock
        while not b.done() and not waiting(pg_store) and time.monotonic() < deadline:
            time.sleep(0.05)
        first = policy.run_once(engine=pg_store, settings=settings).predictions
        release.set()
        a.result(), b.result()
    second = policy.run_once(engine=pg_store, settings=settings).predictions
    assert first + second == 4
