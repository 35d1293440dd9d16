"""Shared fixtures: settings, databases (SQLite and PostgreSQL), a real Mosquitto, a log guard."""

from __future__ import annotations

import gc
import logging
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine

from fleet.settings import get_settings
from tests import bytecode, services, world_copies


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test reads settings anew and starts without the developer's SERVICECAST_* variables."""
    import os

    for name in list(os.environ):
        if name.startswith("SERVICECAST_") and name != "SERVICECAST_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


class _ErrorCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in ("fleet", "ingest", "models", "api", "simulators", "servicecast"):
            self.records.append(record)


@pytest.fixture(autouse=True)
def fail_on_logged_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test whose run logged an error from our code, unless it says it expects one."""
    collector = _ErrorCollector()
    logging.getLogger().addHandler(collector)
    yield
    logging.getLogger().removeHandler(collector)
    if collector.records and "expect_logged_errors" not in request.keywords:
        messages = "; ".join(f"{r.name}: {r.getMessage()}" for r in collector.records[:5])
        pytest.fail(f"unexpected errors logged: {messages}")


@pytest.fixture(scope="session")
def migrated_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.MigratedTemplates]:
    """Databases migrated once per session, copied for each test that asks for a migrated one."""
    templates = services.MigratedTemplates(tmp_path_factory.mktemp("templates"))
    yield templates
    world_copies.close()
    templates.drop()


@pytest.fixture(scope="session")
def postgres_drops() -> Iterator[services.BackgroundDrops]:
    """Drops test databases while the next tests run; the session ends once every drop succeeded."""
    drops = services.BackgroundDrops()
    yield drops
    drops.finish()


DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A SQLAlchemy URL of a fresh database: a SQLite file, or a PostgreSQL database of the test's own.

    Empty, unless the test uses `engine`, `world` or `world_url` (which migrate it first thing): then it is a
    copy of one migrated to the head. A PostgreSQL one for a world alone is made by `build_world`, as a copy
    of its world.
    """
    names = request.fixturenames
    migrated = any(name in names for name in ("engine", "world", "world_url"))
    world = ("world" in names or "world_url" in names) and "engine" not in names
    with _database(request, tmp_path, migrated=migrated, world=world) as url:
        yield url


@pytest.fixture
def world_url(database_url: str) -> str:
    """`database_url` for a test that calls `build_world` itself (settings of its own) before anything else:
    prepared as for `world`, not an empty database its app would migrate (~0.3 CPU-s on SQLite, more on
    PostgreSQL)."""
    return database_url


@pytest.fixture(scope="module", params=DATABASES)
def module_database_url(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[str]:
    """`database_url` for a world `build_world` makes once a module, for the module's tests that never
    change it (a new world and app cost ~0.15 CPU-s a test)."""
    with _database(request, tmp_path_factory.mktemp("module"), migrated=True, world=True) as url:
        yield url


@contextmanager
def _database(request: pytest.FixtureRequest, folder, *, migrated: bool, world: bool) -> Iterator[str]:
    templates = request.getfixturevalue("migrated_templates") if migrated else None
    if request.param == "sqlite":
        path = folder / "servicecast.db"
        if templates:
            templates.copy_sqlite(path)
        yield f"sqlite:///{path}"
        return
    if not services.postgres_available():
        services.unavailable(f"PostgreSQL at {services.POSTGRES_ADMIN_URL}")
    drops = request.getfixturevalue("postgres_drops")
    db = services.PostgresDatabase()
    template = templates.postgres() if templates else None
    if world:
        world_copies.defer(db, template)  # build_world makes it, as a copy of a world built before if it can
    else:
        db.create(template=template)
    request.node.postgres = db
    try:
        yield db.url
    finally:
        world_copies.discard(db.url)
        drops.drop(db)


@pytest.fixture
def postgres_url(postgres_drops: services.BackgroundDrops) -> Iterator[str]:
    """The URL of an empty PostgreSQL database of the test's own, for behaviour only PostgreSQL has."""
    if not services.postgres_available():
        services.unavailable(f"PostgreSQL at {services.POSTGRES_ADMIN_URL}")
    db = services.PostgresDatabase().create()
    try:
        yield db.url
    finally:
        postgres_drops.drop(db)


@pytest.fixture
def postgres(request: pytest.FixtureRequest, database_url: str) -> services.PostgresDatabase | None:
    """The PostgreSQL database behind `database_url`, or None on SQLite."""
    return getattr(request.node, "postgres", None)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a migrated empty database."""
    with services.migrated_engine(database_url) as eng:
        yield eng


@pytest.fixture
def sqlite_engine(tmp_path, migrated_templates: services.MigratedTemplates) -> Iterator[Engine]:
    """A migrated SQLite database, for tests that are about logic rather than the backend."""
    migrated_templates.copy_sqlite(tmp_path / "logic.db")
    with services.migrated_engine(f"sqlite:///{tmp_path / 'logic.db'}") as eng:
        yield eng


@pytest.fixture
def mosquitto(tmp_path) -> Iterator[services.Mosquitto]:
    """A real Mosquitto on a free port with persistence on and queue limits raised."""
    if not services.mosquitto_available():
        services.unavailable("the mosquitto binary")
    workdir = tmp_path / "mosquitto"
    workdir.mkdir()
    broker = services.Mosquitto(workdir).start()
    yield broker
    broker.stop()


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Iterator[object]:
    """Collect without the cyclic garbage collector's automatic passes, then collect once.

    Importing every test module and what it imports grows a worker's heap to ~0.4 M objects: each growth
    by a quarter set off a full collection, ~3 CPU-s of a worker's ~13 collecting, with nothing to free.
    Not gc.freeze(): it makes the tests' full collections come sooner (a smaller long-lived heap); in a full
    run one then freed test_restore's leftover asyncua tasks inside the next test, which counts logged errors
    (the OPC UA test server now stops its tasks; the freeze's gain was not shown, so it stays off).
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(0)  # not gc.disable(): a test module may turn it off for its own run
    try:
        return (yield)
    finally:
        gc.collect()
        gc.set_threshold(*thresholds)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the modules with `slow` tests first, then the larger ones."""
    # pytest-xdist deals modules out in this order (`make test` turns off its own reordering, by test count
    # only): a long module dealt out last runs alone on one worker after the others have finished.
    slow, size = Counter(), Counter()
    for item in items:
        size[item.path] += 1
        slow[item.path] += item.get_closest_marker("slow") is not None
    items.sort(key=lambda item: (-slow[item.path], -size[item.path]))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish() -> None:
    """Collect the garbage once the session's fixtures are gone, before an xdist worker says it has finished.

    pytest collects twice more after that (unconfigure, cleanup): full passes over a worker's heap of ~1 M
    objects, seconds each on a loaded machine, ran past the 5 s execnet gives a worker to end once the
    controller asks, so it interrupted them (the KeyboardInterrupt warning at the suite's end) while the
    controller waited. Frozen, what is left is not traversed again.
    """
    gc.collect()
    gc.freeze()


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker for tests that log errors on purpose; let the CLIs the tests start see Ctrl-C;
    compile the project's modules for the processes the tests start, and the test modules for the workers."""
    config.addinivalue_line("markers", "expect_logged_errors: the test provokes errors that get logged")
    bytecode.compile_packages()
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        bytecode.write_rewritten(config)  # the xdist controller, before it starts its workers
    # A shell starts a background job (`… &`, a CI runner's) with SIGINT ignored, and every process it
    # starts inherits that: a CLI the tests send SIGINT to would run to its end. Children get the default.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
