"""Store jobs of the command line beside other writers on SQLite: a commit elsewhere between read and write.

Each job reads, then writes in one transaction; without SQLite's write lock from BEGIN (`for_writing`) its
first write fails at once with "database is locked" when another connection committed meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from fleet import credentials, history_import, machine_types, registry
from fleet.csv_import import ColumnMap
from fleet.tables import Label, MachineCredential, MachineTypeVersion, SparkplugCredential
from simulators import ground_truth
from tests.fleet.test_machine_types import SMALL
from tests.lifecycle import support
from tests.write_lock import commit_elsewhere_before_first_write

NODE = credentials.edge_node_username("acme", "line-1")


def _count(engine: Engine, column, *where) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.scalar(select(func.count(column)).where(*where)) or 0


Job = Callable[[], int]  # runs the job, then counts what it stored


def _history(engine: Engine, tmp_path) -> Job:  # noqa: ANN001
    support.register(engine, "acme", ["p1"])
    path = tmp_path / "history.csv"
    path.write_text("tenant,machine,ts,kind,component\nacme,p1,2026-01-03T06:00:00Z,failure,pump\n")

    def run() -> int:
        history_import.import_history(engine=engine, path=path, mapping=ColumnMap())
        return _count(engine, Label.id)

    return run


def _grant(engine: Engine, tmp_path) -> Job:  # noqa: ANN001
    support.register(engine, "acme", ["p1"])

    def run() -> int:
        registry.grant(engine=engine, tenant="acme", purpose="offers", by="cli:test")
        return len(registry.active_purposes(engine=engine, tenant="acme"))  # service and offers

    return run


def _revoke(engine: Engine, tmp_path) -> Job:  # noqa: ANN001
    support.register(engine, "acme", ["p1"])
    registry.grant(engine=engine, tenant="acme", purpose="offers", by="cli:test")

    def run() -> int:
        registry.revoke(engine=engine, tenant="acme", purpose="offers", by="cli:test")
        return len(registry.active_purposes(engine=engine, tenant="acme"))  # service only

    return run


def _issue(engine: Engine, tmp_path) -> Job:  # noqa: ANN001
    support.register(engine, "acme", ["p1"])

    def run() -> int:
        credentials.issue(engine=engine, tenant="acme", machine="p1")
        return _count(engine, MachineCredential.id, MachineCredential.revoked_at.is_(None))

    return run


def _revoke_credential(engine: Engine, tmp_path) -> Job:  # noqa: ANN001
    support.register(engine, "acme", ["p1"])
    credentials.issue(engine=engine, tenant="acme", machine="p1")

    def run() -> int:
        credentials.revoke(engine=engine, tenant="acme", machine="p1")
        return _count(engine, MachineCredential.id, MachineCredential.revoked_at.is_not(None))

    return run


def _issue_node(engine: Engine, tmp_path) -> Job:  # noqa: ANN001
    def run() -> int:
        credentials.issue_sparkplug(engine=engine, username=NODE)
        return _count(engine, SparkplugCredential.id, SparkplugCredential.revoked_at.is_(None))

    return run


def _revoke_node(engine: Engine, tmp_path) -> Job:  # noqa: ANN001
    credentials.issue_sparkplug(engine=engine, username=NODE)

    def run() -> int:
        credentials.revoke_sparkplug(engine=engine, username=NODE)
        return _count(engine, SparkplugCredential.id, SparkplugCredential.revoked_at.is_not(None))

    return run


def _ground_truth(engine: Engine, tmp_path) -> Job:  # noqa: ANN001
    ids = {("acme", "p1"): support.register(engine, "acme", ["p1"])["p1"]}
    failure = {"tenant": "acme", "machine": "p1", "machine_type": "pump", "ts": support.START, "mode": "wear"}
    failures = pd.DataFrame([failure | {"has_precursor": True, "onset": None, "repaired": None}])

    def run() -> int:
        ground_truth.write_events(engine, kind="test", seed=1, config={}, ids=ids, failures=failures)
        return _count(engine, Label.id)

    return run


def _types(engine: Engine, tmp_path) -> Job:  # noqa: ANN001
    path = tmp_path / "press.yaml"
    path.write_text(SMALL, encoding="utf-8")

    def run() -> int:
        machine_types.apply_file(engine=engine, path=path)
        return _count(engine, MachineTypeVersion.id)

    return run


JOBS: dict[str, tuple[Callable[[Engine, object], Job], int]] = {
    "history_import.import_history": (_history, 1),
    "registry.grant": (_grant, 2),
    "registry.revoke": (_revoke, 1),
    "credentials.issue": (_issue, 1),
    "credentials.revoke": (_revoke_credential, 1),
    "credentials.issue_sparkplug": (_issue_node, 1),
    "credentials.revoke_sparkplug": (_revoke_node, 1),
    "machine_types.apply_file": (_types, 1),
    "ground_truth.write_events": (_ground_truth, 1),
}


@pytest.mark.parametrize("job", list(JOBS))
def test_a_commit_elsewhere_between_the_jobs_read_and_write_does_not_fail_it(
    job: str, sqlite_engine: Engine, tmp_path
) -> None:
    prepare, expected = JOBS[job]
    run = prepare(sqlite_engine, tmp_path)
    with commit_elsewhere_before_first_write(sqlite_engine) as happened:
        stored = run()
    assert happened == ["waited"]
    assert stored == expected
