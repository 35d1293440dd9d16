"""`servicecast score` on a database put back from before an erasure refuses before it imports the scoring
loop's pandas and scikit-learn: a refusal costs the check alone (benchmarks/refused_start.py)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.lifecycle.test_erasure_restore_start import REPO, UNDONE, environment, put_back


def _imported(importtime: str) -> set[str]:
    """The modules a `python -X importtime` run imported, from its stderr."""
    return {
        line.rsplit("|", 1)[1].strip() for line in importtime.splitlines() if line.startswith("import time:")
    }


def test_a_refused_score_has_not_imported_pandas_or_sklearn(sqlite_engine, tmp_path):
    with put_back(sqlite_engine, None, tmp_path, archived=False) as (restored, url):
        refused = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "servicecast", "score", "--once", "--shard", "0/2"],
            env=environment(restored, url),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert refused.returncode == 1, refused.stderr[-2000:]
    said = "\n".join(line for line in refused.stderr.splitlines() if not line.startswith("import time:"))
    assert "`servicecast score` did not start" in said and re.search(UNDONE, said), said
    assert {"pandas", "sklearn", "models.scoring"} & _imported(refused.stderr) == set()
