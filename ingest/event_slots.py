"""Seqs for events that a file gives without one: their millisecond, and a slot that their content decides."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from fleet import display, events_store, registration
from ingest.pipeline import same_event
from ingest.schemas import Event, Rejection

# Events of one machine at one millisecond that a derived seq has room for: seq = ms * SLOTS + slot.
SLOTS = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def first_slot(ts: datetime) -> int:
    """The seq of the first slot at `ts`'s millisecond."""
    return int((ts - _EPOCH).total_seconds() * 1000) * SLOTS


def place(engine: Engine, events: dict[int, Event]) -> dict[int, Event | Rejection]:
    """Each event (by index, its seq `first_slot`) at the slot of its millisecond that holds the same event,
    stored or earlier in `events`, else at the first free one; a Rejection once all are taken.

    So a file imported again stores nothing twice, whatever its order and whatever it has gained since, and
    a row given twice is one event. Slots are looked at one round at a time: most events take the first.
    An unregistered machine's events only take slots apart (the pipeline quarantines them, for a replay)."""
    placed: dict[int, Event | Rejection] = {}
    taken: dict[tuple[str, str, int], Event | dict] = {}  # (tenant, machine, seq) placed so far in `events`
    pending, slot = list(events), 0
    with engine.connect() as conn:
        ids = registration.lookup_machines(conn, {(e.tenant, e.machine) for e in events.values()})
        while pending:
            keys = [(events[i].tenant, events[i].machine) for i in pending]
            triples = [
                (*ids[k], events[i].seq + slot) for i, k in zip(pending, keys, strict=True) if k in ids
            ]
            stored = events_store.stored_events(conn, triples) if triples else {}
            later = []
            for i, key in zip(pending, keys, strict=True):
                event, seq = events[i], events[i].seq + slot
                other = taken.get((*key, seq)) or (stored.get((ids[key][1], seq)) if key in ids else None)
                if other is None or same_event(_content(other), _content(event)):
                    taken.setdefault((*key, seq), event)
                    placed[i] = event if slot == 0 else _moved(event, seq)
                elif slot + 1 < SLOTS:
                    later.append(i)
                else:
                    placed[i] = _full(event)
            pending, slot = later, slot + 1
    return placed


def _moved(event: Event, seq: int) -> Event:
    """The event at another seq (`dataclasses.replace` cost more than the rest of the placement)."""
    e = event
    return Event(e.tenant, e.machine, seq, e.ts, e.code, e.severity, e.text, e.extra)


def _content(event: Event | dict) -> dict:
    """What `same_event` compares, of an event of the batch or a stored one."""
    if type(event) is dict:
        return event
    return {k: getattr(event, k) for k in ("ts", "code", "severity", "text", "extra")}


def _full(event: Event) -> Rejection:
    return Rejection(
        "bad_value",
        f"{SLOTS} other events of machine {event.machine} at {display.to_the_second(event.ts)} are stored "
        f"or earlier in the file: a seq derived from the time has room for {SLOTS} at one millisecond; give "
        "the file a seq column",
    )
