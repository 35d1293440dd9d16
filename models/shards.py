"""Which scorer scores a machine: `Shard(i, n)` owns the machines whose id hashes to bucket i of n.

Apart from the scoring loop so that `servicecast score` checks its `--shard` without importing pandas.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, ColumnElement, cast

_MIX, _SPACE = 2_654_435_761, 2**32  # Fibonacci hashing (Knuth): consecutive ids spread evenly over shards


def _bucket(machine_id, count: int):  # noqa: ANN001, ANN202 - an int, or an SQL BIGINT expression
    """The machine's shard: one integer formula for Python and SQL; consecutive ids take turns."""
    return (machine_id * _MIX) % _SPACE * count // _SPACE


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`: the machines whose id hashes to bucket `index` of `count`."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"shard count must be at least 1, got {self.count}")
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard index must be in 0..{self.count - 1} of {self.count}, not {self.index}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`i/n` as a shard, e.g. `0/3`; a ValueError that says what is wrong otherwise."""
        index, sep, count = text.partition("/")
        if not (sep and index.strip().isdigit() and count.strip().isdigit()):
            raise ValueError(f"shard must be written i/n with whole numbers, e.g. 0/3; got {text!r}")
        return cls(int(index), int(count))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, machine_id: int) -> bool:
        """Whether this shard scores the machine (the same rule as `where`)."""
        return _bucket(machine_id, self.count) == self.index

    def where(self, machine_id: ColumnElement) -> ColumnElement[bool]:
        """SQL: the machine id column belongs to this shard."""
        return _bucket(cast(machine_id, BigInteger), self.count) == self.index


ALL = Shard()
