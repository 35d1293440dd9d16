"""Where tests find the shared data sets: `shared/` beside the repository, as on CI."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FD001 = Path(
    os.environ.get("SERVICECAST_CMAPSS_FD001", REPO.parent / "shared" / "data" / "cmapss" / "train_FD001.txt")
)
