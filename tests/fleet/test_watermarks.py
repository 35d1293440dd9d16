"""A watermark row's first creation by two transactions at once (a worker and a manual command)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from fleet import watermarks
from fleet.db import for_writing, session
from fleet.tables import Watermark
from tests import overlap

NAME = "test.stage"
AT = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)


@pytest.fixture
def patient(database_url: str) -> Iterator[Engine]:
    """A migrated empty database whose SQLite connections wait out the first's hold."""
    with overlap.waiting_engine(database_url) as engine:
        yield engine


def _advance(engine: Engine) -> int:
    """One run of a stage: the value it found, which it then moves on by 7."""
    with session(for_writing(engine)) as sess:
        mark = watermarks.locked(sess, NAME)
        found = mark.value
        mark.value, mark.updated_at = found + 7, AT
        return found


def test_the_second_waits_for_the_first_creation_and_reads_its_value(patient: Engine) -> None:
    """The first creates the row and holds it uncommitted; the second, started on the empty table, waits for
    the first's commit, then reads what it committed. With the old "lock it, or add one" the second added a
    row too, and its commit failed on the key (IntegrityError, PostgreSQL)."""
    found = overlap.two_at_once(
        patient,
        lambda: _advance(patient),
        held_after=lambda statement: statement.startswith("INSERT INTO watermarks"),
        waits_after=lambda statement: statement == "BEGIN IMMEDIATE",
    )
    assert found == [0, 7]
    with session(patient) as sess:
        assert sess.execute(select(Watermark.name, Watermark.value)).all() == [(NAME, 14)]


def test_a_stored_row_is_locked_as_it_is(patient: Engine) -> None:
    with session(patient) as sess:
        sess.add(Watermark(name=NAME, value=41, updated_at=AT))
    with session(for_writing(patient)) as sess:
        mark = watermarks.locked(sess, NAME)
        assert (mark.value, mark.updated_at) == (41, AT)
