"""Chart means are rounded as Python's round(v, 4) rounds them, also where numpy's rounding differs."""

from __future__ import annotations

import math

import numpy as np

from fleet.windows import round4


def test_round4_is_pythons_round_for_every_value():
    rng = np.random.default_rng(1)
    values = np.concatenate(
        [
            rng.normal(0, 1, 50_000),
            rng.normal(0, 1e3, 50_000),
            rng.uniform(-1, 1, 50_000) * 10.0 ** rng.integers(-12, 20, 50_000),
            np.round(rng.normal(0, 100, 50_000), 5),  # five decimals: many halves at the fourth
            np.arange(-50_000, 50_000) / 32,  # exact halves of the fourth decimal (1/32 = 0.03125)
            [0.00005, 0.00015, 2.675e-4, 1.0005, -0.0, 5e-324, 1e-300, 2.0**50 / 1e4, 2.0**53, 1.7e308],
        ]
    )
    got = round4(values)
    expected = [round(v, 4) for v in values.tolist()]
    assert got == expected
    assert [math.copysign(1, v) for v in got] == [math.copysign(1, v) for v in expected]  # -0.0 stays


def test_round4_gives_none_for_nan_and_infinities():
    assert round4(np.array([np.nan, np.inf, -np.inf, 1.23456])) == [None, None, None, 1.2346]
