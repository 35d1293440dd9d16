"""An erasure ledger entry that could not be written whole leaves no file behind: a full disk (or a crash) in
the middle of an erasure must not leave an empty entry that every later check reads as a damaged ledger."""

from __future__ import annotations

import subprocess
import sys

from fleet import archive_location, erasure_ledger
from tests.data import REPO

# A child whose files may not grow past 0 bytes (RLIMIT_FSIZE): each write fails (EFBIG) as on a full disk.
CHILD = """
import resource, signal, sys
from fleet import archive_location, erasure_ledger
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
where = archive_location.location(sys.argv[1])
entry = erasure_ledger.Entry(7, "2026-01-01T00:00:00+00:00", "ab" * 32, "customer-7f3a", "2026-12-06T21:00")
resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
try:
    erasure_ledger._put(where, "store=s1", entry, archive=where)
except OSError as exc:
    print("refused:", exc.strerror)
"""


def test_an_entry_refused_by_a_full_disk_leaves_no_file_that_reads_as_a_damaged_ledger(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "archive")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.startswith("refused: File too large"), done.stdout + done.stderr
    where = archive_location.location(str(tmp_path / "archive"))
    held = erasure_ledger._held(where, "store=s1")
    assert held == {}, [(name, (tmp_path / path).stat().st_size) for name, path in held.items()]
