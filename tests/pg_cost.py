"""What a pytest run costs the test PostgreSQL server: the databases it created and the checkpoints meanwhile.

    python -m tests.pg_cost [pytest arguments]

runs pytest with this module as a plugin (each process counts its CREATE DATABASEs) and then reads the
server's log (`log_checkpoints` on; PG_LOG names it) from where it stood at the start. Other clients of the
server (another run) show up in the checkpoints too: the load average is printed beside them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PG_LOG = Path(os.environ.get("PG_LOG", "/var/log/postgresql/postgresql-15-main.log"))
_COUNTS = "SC_PG_COST_DIR"
_COMPLETE = re.compile(r"checkpoint complete: .*sync=([\d.]+) s, total=([\d.]+) s; sync files=(\d+)")


def pytest_configure(config) -> None:
    """Count this process's CREATE DATABASEs into a file of the folder the runner named."""
    folder = os.environ.get(_COUNTS)
    if not folder:
        return
    from tests import services

    create = services.PostgresDatabase.create
    counter = Path(folder) / f"{os.getpid()}.count"

    def counted(self, template=None):
        made = create(self, template)
        with counter.open("a") as out:
            out.write(".")
        return made

    services.PostgresDatabase.create = counted


def checkpoints(text: str) -> dict[str, float]:
    """The checkpoints the log `text` shows: how many, forced ones, files synced, seconds syncing, longest."""
    done = [tuple(map(float, m.groups())) for m in _COMPLETE.finditer(text)]
    return {
        "checkpoints": len(done),
        "forced": text.count("checkpoint starting: immediate force wait"),
        "sync_files": sum(d[2] for d in done),
        "sync_s": round(sum(d[0] for d in done), 1),
        "longest_total_s": max((d[1] for d in done), default=0.0),
    }


def main(args: list[str]) -> int:
    start = PG_LOG.stat().st_size
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="sc-pg-cost-") as folder:
        began = time.monotonic()
        rc = subprocess.call(
            [sys.executable, "-m", "pytest", "-p", "tests.pg_cost", *args],
            env={**os.environ, _COUNTS: folder},
        )
        wall = time.monotonic() - began
        created = sum(path.stat().st_size for path in Path(folder).glob("*.count"))
    with PG_LOG.open() as log:
        log.seek(start)
        seen = checkpoints(log.read())
    figures = {"rc": rc, "wall_s": round(wall, 1), "databases": created, **seen}
    figures["load_1m"] = f"{load:.1f}→{os.getloadavg()[0]:.1f}"
    print(
        "pg_cost", " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
    )
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
