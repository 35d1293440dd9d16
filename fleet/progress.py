"""Progress of a long step on stderr: a run that takes minutes (a rollup refresh after a backfill) says it is
working and how far it got, a short one (from cron every few minutes) says nothing, and stdout, which scripts
read, is left as it was."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

# Told how much of a step is done: (done, total), after each batch.
Report = Callable[[int, int], None]


class Progress:
    """A `Report` that writes `step: done of total nouns (percent)` lines once the step has run `every_s`
    seconds, then at most one every `every_s`, and the one where done first reaches total if it wrote any."""

    def __init__(
        self,
        step: str,
        noun: str,
        *,
        every_s: float,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.step, self.noun, self.every_s = step, noun, every_s
        self.out, self.clock = out, clock
        self._last = clock()  # the start, until a line is written
        self._written = self._reached = False

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        reached = done >= total and not self._reached
        self._reached |= done >= total
        if not (now - self._last >= self.every_s or (reached and self._written)):
            return
        self._last, self._written = now, True
        share = f" ({done / total:.0%})" if total else ""
        line = f"{self.step}: {done:,} of {total:,} {self.noun}{'' if total == 1 else 's'}{share}"
        print(line, file=self.out or sys.stderr, flush=True)
