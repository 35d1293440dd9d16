"""The read path: cached alert pages stay current, key lookups collapse, the pool survives a burst."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, select, update

from api import auth, telemetry_view
from api.app import API_PREFIX, create_app
from api.deps import _authenticate_once
from api.page_cache import VersionedPages, approximate_bytes
from fleet import changes
from fleet.db import session
from fleet.tables import AccountAssignment, Alert, Customer, User
from tests.api.support import build_world, served


@pytest.fixture
def world(database_url):
    return build_world(database_url)


def statuses(client, headers) -> dict[int, str]:
    """Alert id → status of the whole active queue as the caller sees it."""
    response = client.get(f"{API_PREFIX}/alerts?limit=1000&status=active", headers=headers)
    assert response.status_code == 200
    return {alert["id"]: alert["status"] for alert in response.json()}


def test_every_write_to_alerts_raises_the_change_counter(world):
    def version() -> int:
        with world.engine.connect() as conn:
            return changes.version(conn, "alerts")

    before = version()
    alert_id = world.alerts["acme"][0]
    with session(world.engine) as sess:
        sess.execute(update(Alert).where(Alert.id == alert_id).values(count=Alert.count + 1))
    after_update = version()
    with session(world.engine) as sess:
        sess.delete(sess.get(Alert, alert_id))
    assert before < after_update < version()


@pytest.fixture
def pg_world(postgres_url):
    """The world on a fresh PostgreSQL database only (dropped in the background, as `postgres_url` does)."""
    return build_world(postgres_url)


@pytest.mark.postgres
def test_on_postgresql_an_uncommitted_alert_write_holds_up_no_other(pg_world):
    # The counter is raised at commit: raised at the write, its row lock would make every other alert
    # write wait for the first transaction to end (the policy's batches run up to 1,000 predictions).
    first, second = pg_world.alerts["acme"][0], pg_world.alerts["globex"][0]
    with pg_world.engine.connect() as conn:
        before = changes.version(conn, "alerts")
    bump = update(Alert).values(count=Alert.count + 1)
    with pg_world.engine.connect() as slow, pg_world.engine.connect() as quick:
        slow.execute(bump.where(Alert.id == first))
        quick.exec_driver_sql("SET lock_timeout = '2s'")
        quick.execute(bump.where(Alert.id == second))
        quick.commit()
        slow.commit()
    with pg_world.engine.connect() as conn:
        assert changes.version(conn, "alerts") == before + 2


def cache_hits() -> float:
    """Alert pages served from the cache so far in this process."""
    labels = {"page": "alerts", "result": "hit"}
    return REGISTRY.get_sample_value("servicecast_api_page_cache_total", labels) or 0


def test_a_cached_page_follows_writes_from_the_api_and_from_other_processes(world):
    tech, alert_id = world.headers("tech"), world.alerts["acme"][0]
    with world.client() as client:
        assert statuses(client, tech)[alert_id] == "open"
        hits = cache_hits()
        assert statuses(client, tech)[alert_id] == "open"
        assert cache_hits() == hits + 1, "the second read is served from the cache"
        assert client.post(f"{API_PREFIX}/alerts/{alert_id}/ack", headers=tech).status_code == 200
        assert statuses(client, tech)[alert_id] == "acknowledged"
        # A write by another process (the policy, a second worker) goes through no code of this one.
        with session(world.engine) as sess:
            sess.execute(update(Alert).where(Alert.id == alert_id).values(status="resolved"))
        assert alert_id not in statuses(client, tech)


def test_cached_pages_are_kept_per_caller_scope(world):
    acme, globex = set(world.alerts["acme"]), set(world.alerts["globex"])
    with world.client() as client:
        assert set(statuses(client, world.headers("admin"))) == acme | globex
        assert set(statuses(client, world.headers("cust-acme"))) == acme
        assert set(statuses(client, world.headers("cust-globex"))) == globex
        assert set(statuses(client, world.headers("am-acme"))) == acme


def test_versioned_pages_serve_no_older_version_and_forget_the_least_recent():
    body = {name: name.encode() * 1000 for name in "abcd"}
    pages = VersionedPages("test", max_bytes=2 * (1000 + approximate_bytes("a")) + 10)  # two bodies
    pages.put("a", 1, body["a"])
    assert pages.get("a", 1) == body["a"]
    assert pages.get("a", 2) is None, "a page read at another version is not current"
    pages.put("b", 1, body["b"])
    pages.get("a", 1)
    pages.put("c", 1, body["c"])
    assert (pages.get("a", 1), pages.get("b", 1), pages.get("c", 1)) == (body["a"], None, body["c"])
    assert pages.bytes <= pages.max_bytes
    pages.put("d", None, body["d"])
    assert pages.get("d", None) is None, "no counter, no caching"
    pages.put("e", 1, b"e" * pages.max_bytes)
    assert pages.get("e", 1) is None and pages.get("a", 1) == body["a"], (
        "a body beyond the budget is not kept"
    )


def test_requests_missing_one_page_together_read_it_once():
    pages = VersionedPages("test", max_bytes=2**20)
    started, release, builds = threading.Event(), threading.Event(), []

    def build() -> bytes:
        builds.append(1)
        started.set()
        release.wait(10)
        return b"page at version 1"

    answers: list[bytes | None] = []
    threads = [threading.Thread(target=lambda: answers.append(pages.get_or_build("k", 1, build)))]
    threads[0].start()
    assert started.wait(10)
    # These miss while the first read is under way: they wait for it instead of reading the page again.
    threads += [
        threading.Thread(target=lambda: answers.append(pages.get_or_build("k", 1, build))) for _ in range(7)
    ]
    for thread in threads[1:]:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(10)
    assert answers == [b"page at version 1"] * 8 and len(builds) == 1
    assert pages.get_or_build("k", 2, lambda: b"page at version 2") == b"page at version 2"
    assert pages.get_or_build("n", 1, lambda: None) is None, "a page that cannot be built is nobody's"
    assert pages.get_or_build("n", 1, lambda: b"built") == b"built"


def test_a_page_read_at_a_later_version_serves_requests_that_saw_an_earlier_one():
    # Counters only rise, and a page is read after its counter: one kept at 5 holds every write up to 5.
    pages = VersionedPages("test", max_bytes=2**20)
    pages.put("k", 5, b"at 5")
    assert pages.get("k", 4) == b"at 5", "a request that read counter 4 is served a page at least as new"
    assert pages.get("k", 6) is None
    # A request that read 4 before a write, delayed past another's read at 5, must not put back older data.
    pages.put("k", 4, b"at 4")
    assert pages.get("k", 5) == b"at 5"
    assert pages.get_or_build("k", 3, lambda: b"at 3") == b"at 5"


def test_requests_that_saw_an_earlier_version_wait_for_a_later_read_under_way():
    pages = VersionedPages("test", max_bytes=2**20)
    started, release, builds = threading.Event(), threading.Event(), []

    def build(version: int):  # noqa: ANN202
        def read() -> bytes:
            builds.append(version)
            if version == 5:
                started.set()
                release.wait(10)
            return f"at {version}".encode()

        return read

    answers: dict[int, bytes | None] = {}

    def ask(version: int) -> threading.Thread:
        thread = threading.Thread(
            target=lambda: answers.update({version: pages.get_or_build("k", version, build(version))})
        )
        thread.start()
        return thread

    threads = [ask(5)]
    assert started.wait(10)
    threads.append(ask(4))  # waits for the read at 5 (or, if it starts late, finds 6) instead of reading
    newer = ask(6)  # the read at 5 may miss the write that made 6: this one reads again
    newer.join(10)
    release.set()
    for thread in threads:
        thread.join(10)
    assert answers[4] in (b"at 5", b"at 6") and (answers[5], answers[6]) == (b"at 5", b"at 6")
    assert sorted(builds) == [5, 6], "nobody read the page at 4 with a read at 5 under way"
    assert pages.get("k", 6) == b"at 6", "the read at 5, finished last, did not replace the newer page"


def test_the_alert_page_cache_stays_within_its_byte_budget(world_url):
    # 256 pages of up to 1,000 alerts each were kept whatever their size: hundreds of MB per worker.
    budget = 200_000
    world = build_world(world_url, api_page_cache_bytes=budget)
    machine, customer = world.machines["acme"][0], world.customers["acme"]
    with session(world.engine) as sess:
        sess.add_all(
            Alert(
                customer_id=customer,
                machine_id=machine,
                failure_mode=f"mode-{i}",
                severity="high",
                queue_rank=2,
                status="open",
                risk=0.8,
                lead_rank=float(i),
                evidence={"explanation": "x" * 1000},
            )
            for i in range(300)
        )
    tech = world.headers("tech")
    with world.client() as client:
        for offset in range(30):
            response = client.get(f"{API_PREFIX}/alerts?limit=100&offset={offset}", headers=tech)
            assert response.status_code == 200 and len(response.content) > 100_000
        pages = client.app.state.alert_pages
        assert sum(len(entry[1]) for entry in pages._bodies.values()) <= budget
        hits = cache_hits()
        client.get(f"{API_PREFIX}/alerts?limit=100&offset=29", headers=tech)
        assert cache_hits() == hits + 1, "the latest page is still served from the cache"


def test_concurrent_misses_of_one_key_look_it_up_once(world):
    lookups = []

    def count_key_lookups(_conn, _cursor, statement, *_args) -> None:
        if "api_keys" in statement:
            lookups.append(statement)

    event.listen(world.engine, "before_cursor_execute", count_key_lookups)
    auth.principals.clear()

    async def burst():
        return await asyncio.gather(
            *(_authenticate_once(world.engine, world.tokens["tech"]) for _ in range(30))
        )

    principals = asyncio.run(burst())
    assert {p.name for p in principals} == {"tech"}
    assert len(lookups) == 1


def test_a_burst_larger_than_the_pool_with_cold_keys_is_served(world):
    # More requests at once than the read pool holds (40 + 10), every key unknown to the cache: a
    # connection taken before the key lookup's await would starve the lookups and time out the pool.
    auth.principals.clear()
    app = create_app(world.settings)

    async def burst():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                paths = [f"{API_PREFIX}/alerts", f"{API_PREFIX}/machines/{world.machines['acme'][0]}"]
                requests = [
                    client.get(paths[i % 2], headers=world.headers(who))
                    for i in range(80)
                    for who in (["admin", "tech", "cust-acme"][i % 3],)
                ]
                return await asyncio.gather(*requests)

    # In a thread of its own: a starved pool blocks the event loop itself, which no asyncio timeout ends.
    responses: list[httpx.Response] = []
    runner = threading.Thread(target=lambda: responses.extend(asyncio.run(burst())), daemon=True)
    runner.start()
    runner.join(timeout=60)
    assert not runner.is_alive(), "the burst did not finish: the read pool is starved"
    assert [r.status_code for r in responses] == [200] * 80


@contextmanager
def telemetry_locked(engine, *others) -> Iterator[None]:
    """Reads of the telemetry table wait on a real lock, held until the block ends."""
    if engine.dialect.name == "sqlite":
        # In WAL mode only an exclusive locking mode keeps readers out (they wait their busy timeout),
        # and it can be taken only while no other connection is open.
        for other in others:
            other.dispose()
        holder = sqlite3.connect(engine.url.database, isolation_level=None, check_same_thread=False)
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("DELETE FROM telemetry WHERE machine_id < 0")
        release = holder.close
    else:
        holder = engine.connect()
        holder.exec_driver_sql("LOCK TABLE telemetry IN ACCESS EXCLUSIVE MODE")
        release = holder.close  # rolls back, which ends the lock
    try:
        yield
    finally:
        release()


def test_a_slow_telemetry_read_does_not_stall_other_requests_of_the_worker(world):
    machine = world.machines["acme"][0]
    app = create_app(world.settings)
    headers = world.headers("tech")
    with served(app) as base, httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        path = f"{API_PREFIX}/machines/{machine}/telemetry"
        assert client.get(path).status_code == 200  # the key is cached: the next read waits only on the lock
        slow: list[httpx.Response] = []
        with telemetry_locked(world.engine, app.state.reader, app.state.engine):
            reader = threading.Thread(target=lambda: slow.append(client.get(path)))
            reader.start()
            time.sleep(0.3)  # let the read reach the lock
            # The lock is released only after /healthz answers: a read blocking the event loop would
            # keep /healthz from answering at all, and this request would time out.
            assert client.get("/healthz", timeout=10).status_code == 200
            still_waiting = reader.is_alive() and not slow
        reader.join(timeout=30)
    assert still_waiting, "/healthz answered only after the telemetry read had finished"
    assert slow and slow[0].status_code == 200, "the telemetry read got its answer once the lock was gone"


def test_the_key_cache_stays_within_its_byte_budget(sqlite_engine):
    # An account manager's principal holds every assigned customer's id; the cache counted only keys.
    with session(sqlite_engine) as sess:
        customers = [Customer(tenant=f"c{i:04d}", name=f"Customer {i}") for i in range(2000)]
        sess.add_all(customers)
    auth.create_user(engine=sqlite_engine, name="am", role="account_manager")
    with session(sqlite_engine) as sess:
        user_id = sess.scalar(select(User.id).where(User.name == "am"))
        sess.add_all(AccountAssignment(user_id=user_id, customer_id=c.id) for c in customers)
    tokens = [auth.issue_key(engine=sqlite_engine, name="am") for _ in range(20)]
    cache = auth.PrincipalCache()
    cache.max_bytes = 500_000
    for token in tokens:
        assert len(cache.authenticate(sqlite_engine, token).customers) == 2000
    held = sum(len(entry.principal.customers) for entry in cache._entries.values())
    assert 0 < held * 32 <= cache.max_bytes, f"{held} customer ids held"
    assert cache.get(tokens[-1]) is not None, "the latest key is kept"


def test_telemetry_reads_in_flight_per_worker_are_limited(world, monkeypatch):
    # Each long read holds the GIL for its Python part; several at once kept the event loop waiting
    # (loop lag p95 19 ms with 3 reads of 5,000 points in flight, 7 ms with 1).
    app = create_app(world.settings.model_copy(update={"api_telemetry_concurrency": 1}))
    path = f"{API_PREFIX}/machines/{world.machines['acme'][0]}/telemetry"
    running, most, lock = [0], [0], threading.Lock()
    window = telemetry_view.window_json

    def slow_window(*args, **kwargs):  # the real read, made to last 0.3 s so that reads would overlap
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.3)
            return window(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(telemetry_view, "window_json", slow_window)
    headers = world.headers("tech")
    answers: list[int] = []
    with served(app) as base, httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        readers = [
            threading.Thread(target=lambda: answers.append(client.get(path).status_code)) for _ in range(4)
        ]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(timeout=30)
    assert answers == [200] * 4
    assert most[0] == 1, f"{most[0]} telemetry reads ran at once"
