"""An export's ZIP, reported complete, is on disk: its bytes fsynced, linked to a name, its folder fsynced."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.data import REPO
from tests.lifecycle import support

_NAMED = re.compile(r'^\d+\s+(?:rename|link)\w*\(.*"(?P<old>[^"]+)".*"(?P<new>[^"]+)"(?:, \w+)?\)\s+= 0$')


def _calls(log: str) -> list[tuple[str, str]]:
    """('fsync', path) and ('named', a link's or rename's new path) in the order the process made them."""
    calls = []
    for line in log.splitlines():
        if found := support.FSYNC.match(line):
            calls.append(("fsync", found["path"]))
        elif found := _NAMED.match(line):
            calls.append(("named", found["new"]))
    return calls


def test_the_zip_an_export_reports_is_fsynced_with_its_name(engine, database_url, tmp_path):
    support.two_pumps(engine)
    target, log = tmp_path / "out", tmp_path / "strace.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICECAST_")}
    env |= {"SERVICECAST_DATABASE_URL": database_url, "SERVICECAST_ARCHIVE_URL": str(tmp_path / "archive")}
    trace = support.tracer(log, "fsync,fdatasync,rename,renameat,renameat2,link,linkat")
    export = [sys.executable, "-m", "servicecast", "customers", "export", "acme", str(target)]
    done = subprocess.run([*trace, *export], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    [zip_path] = [line for line in done.stdout.splitlines() if line.endswith(".zip")]
    calls = _calls(log.read_text())
    named = calls.index(("named", zip_path))
    partial = [path for call, path in calls[:named] if call == "fsync" and path.endswith(".partial")]
    assert len(partial) == 1, calls  # the bytes, under the hidden name, before the ZIP's name is given
    after = calls[named + 1 :]
    assert [f for f in (str(target), str(tmp_path)) if ("fsync", f) not in after] == [], calls
