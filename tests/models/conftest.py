"""Fixtures for the model tests: the real C-MAPSS FD001 training file, and small slices of it."""

from __future__ import annotations

import pandas as pd
import pytest

from models import cmapss
from tests import services
from tests.data import FD001


@pytest.fixture(scope="session")
def fd001() -> pd.DataFrame:
    """All 100 run-to-failure engines of FD001."""
    if not FD001.exists():
        services.unavailable(f"the C-MAPSS file {FD001}")
    return cmapss.read_cmapss(FD001)


@pytest.fixture(scope="session")
def small(fd001: pd.DataFrame) -> pd.DataFrame:
    """Twelve engines: enough to fit, quick to fit."""
    return fd001[fd001["unit"] <= 12].reset_index(drop=True)
