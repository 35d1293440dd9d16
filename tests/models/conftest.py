"""Fixtures for the model tests: the real C-MAPSS FD001 training file, and small slices of it."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from models import cmapss
from tests import services
from tests.data import FD001
from tests.models.training_memo import TrainingMemo

# Variables the OpenMP and BLAS pools of a child process (a CLI the test runs) read when they start.
_POOL_SIZES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@pytest.fixture(scope="module", autouse=True)
def one_thread_pools() -> Iterator[None]:
    """Each model test fits with one OpenMP and BLAS thread, in the process and in its children.

    The test workers already fill the cores; beside them a pool's threads spin while they wait for work,
    which counts as CPU: a histogram boosting fit of the Azure slice took three times the CPU with two.
    The fitted models are the same with one thread as with more.
    """
    mp = pytest.MonkeyPatch()
    for name in _POOL_SIZES:
        mp.setenv(name, "1")
    with threadpool_limits(limits=1):
        yield
    mp.undo()


@pytest.fixture(scope="module")
def trainings_once() -> Iterator[TrainingMemo]:
    """The module's trainings (models.training.train_type wherever it is called) fit each distinct input once.

    For modules that change nothing train_type reads besides its arguments (no patched constants).
    """
    from benchmarks import findings, repair_world
    from models import evaluate, training

    memo, mp = TrainingMemo(training.train_type), pytest.MonkeyPatch()
    for module in (training, evaluate, findings, repair_world):
        mp.setattr(module, "train_type", memo)
    yield memo
    mp.undo()


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
