"""`train_type` once per distinct input: a review test's SQLite and PostgreSQL cases fit the same models."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from typing import Any

import pandas as pd


def digest(value: Any) -> str:
    """A value's content as text: a frame by its columns, dtypes, index and every cell."""
    if isinstance(value, pd.DataFrame):
        cells = pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes()
        shape = repr((list(value.columns), [str(t) for t in value.dtypes])).encode()
        return "frame:" + hashlib.sha256(shape + cells).hexdigest()
    return repr(value)


class TrainingMemo:
    """`train` (models.training.train_type) fitted once per content of its arguments, each call given a copy.

    Training is deterministic, so a second fit on the same rows, labels, findings and parameters makes the
    same model: the review tests' database cases (and reviews that start alike) differ in what they store,
    not in what they train on. Anything that differs, a finding the database read back included, trains.
    """

    def __init__(self, train: Callable[..., tuple[Any, dict]]) -> None:
        self._train = train
        self._done: dict[str, tuple[Any, dict]] = {}
        self.fits = 0

    def __call__(self, *args: Any, **options: Any) -> tuple[Any, dict]:
        parts = [digest(a) for a in args] + [f"{k}={digest(v)}" for k, v in sorted(options.items())]
        key = hashlib.sha256("\n".join(parts).encode()).hexdigest()
        if key not in self._done:
            self._done[key] = copy.deepcopy(self._train(*args, **options))
            self.fits += 1
        return copy.deepcopy(self._done[key])
