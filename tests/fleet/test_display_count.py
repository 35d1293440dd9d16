"""A count reads with its noun in the number it takes: `1 row`, `2 rows`, `0 rows`."""

from __future__ import annotations

from fleet import display


def test_a_count_takes_the_singular_for_one_only_and_an_irregular_plural_when_given():
    assert [display.count(n, "row") for n in (0, 1, 2)] == ["0 rows", "1 row", "2 rows"]
    assert display.count(1, "new machine") == "1 new machine"
    assert display.count(1_234, "message") == "1234 messages"
    assert display.count(3, "failure mode") == "3 failure modes"
    assert (
        display.count(1, "entry", "entries") == "1 entry"
        and display.count(2, "entry", "entries") == "2 entries"
    )
