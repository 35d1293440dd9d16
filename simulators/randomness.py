"""Seeded random streams keyed by purpose, machine and day, so output never depends on chunking."""

from __future__ import annotations

import numpy as np

# One stream per purpose: changing the fault rate never moves a failure, and so on.
FLEET, PROFILE, TIMELINE, FAULTS, BAD_PAYLOADS, NOISE = range(6)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def stream(seed: int, *key: int) -> np.random.Generator:
    """An independent generator for (seed, key...)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def hash_uniform(keys: np.ndarray) -> np.ndarray:
    """Counter-based uniforms in [0, 1): splitmix64 of uint64 keys, same key → same number."""
    z = keys.astype(np.uint64) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def noise_block(seed: int, machine: int, s0: int, s1: int, channels: int, steps_per_day: int) -> np.ndarray:
    """Standard-normal noise (channels, s1 - s0) for one machine; drawn per whole day so chunks agree."""
    d0, d1 = s0 // steps_per_day, (s1 - 1) // steps_per_day + 1
    days = [stream(seed, NOISE, machine, d).standard_normal((channels, steps_per_day)) for d in range(d0, d1)]
    block = days[0] if len(days) == 1 else np.concatenate(days, axis=1)
    offset = s0 - d0 * steps_per_day
    return block[:, offset : offset + (s1 - s0)]
