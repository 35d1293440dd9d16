"""The `watermarks` rows: how far a background stage has read, one row per stage, taken in turn."""

from __future__ import annotations

from sqlalchemy.orm import Session

from fleet import dialect
from fleet.tables import Watermark


def locked(sess: Session, name: str) -> Watermark:
    """The watermark row `name`, locked until the transaction ends; inserted first (value 0) if missing.

    Not "lock it, or add one": two transactions that both found no row would both add it, and the second's
    commit would fail on the key. The INSERT skips a stored row instead: on PostgreSQL a second one waits for
    the first's uncommitted row, then does nothing, and its FOR UPDATE waits for the first's commit and reads
    what it committed. On SQLite the write lock already makes them take turns.
    """
    mark = sess.get(Watermark, name, with_for_update=True)
    if mark is None:  # once per database and name: a stored row costs the lock's read only
        table = Watermark.__table__
        sess.execute(dialect.insert(sess.connection(), table).values(name=name).on_conflict_do_nothing())
        mark = sess.get_one(Watermark, name, with_for_update=True)
    return mark
