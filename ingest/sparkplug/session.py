"""One host's view of each edge node: births, aliases, seq and bdSeq, and what each message becomes."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.schemas import Rejection
from ingest.sparkplug.decode import Metric, Topic, as_signed, is_signed
from ingest.sparkplug.mapping import Mapping
from ingest.sparkplug.rows import TEXT_KEPT, Values, translate


@dataclass(slots=True)
class Translation:
    """What one Sparkplug message becomes: telemetry values and event messages (topic, body as JSON would
    give it), or a rejection; maybe a rebirth request."""

    messages: list[Values | tuple[str, dict]] = field(default_factory=list)
    rejection: Rejection | None = None
    rebirth: bool = False
    ignored_death: tuple[str, str] | None = None  # (cause, detail) of an NDEATH that ended no session


def _bd_seq(metrics: list[Metric]) -> int | None:
    for name, _, _, _, value, _ in metrics:
        if name == "bdSeq" and type(value) is int:
            return value
    return None


def _alias_clash(metrics: list[Metric]) -> str | None:
    """Which alias a birth gives to two metrics, or None: data by that alias could be either."""
    named: dict[int, str] = {}
    for name, alias, _, _, _, _ in metrics:
        if alias is None or name is None:
            continue
        other = named.setdefault(alias, name)
        if other != name:
            return f"alias {alias} names both {other[:TEXT_KEPT]!r} and {name[:TEXT_KEPT]!r}"
    return None


def _where(topic: Topic) -> str:
    return "/".join(p for p in (topic.group, topic.edge_node, topic.device) if p)


def _unmapped(topic: Topic) -> Rejection:
    return Rejection("sparkplug_unmapped", f"the Sparkplug map names no machine for {_where(topic)}")


def _control(name: str) -> bool:
    """Metrics every node sends about itself, which need no machine: bdSeq, controls, properties."""
    return name == "bdSeq" or name.startswith(("Node Control/", "Device Control/", "Properties/"))


def own(state: dict | None) -> dict | None:
    """A copy of a node state that `Sessions.handle` may change without touching the original."""
    if state is None:
        return None
    copy = {**state, "aliases": dict(state["aliases"]), "devices": dict(state.get("devices", {}))}
    copy["signed"] = dict(state.get("signed", {}))
    copy["device_metrics"] = dict(state.get("device_metrics", {}))  # a DBIRTH replaces a device's entry whole
    return copy


class Sessions:
    """Applies messages to node states (plain JSON-able dicts, so that they can be stored as they are)."""

    def __init__(self, mapping: Mapping, *, rebirth_interval_ms: int) -> None:
        self.mapping = mapping
        self.rebirth_interval_ms = rebirth_interval_ms

    def handle(
        self,
        state: dict | None,
        topic: Topic,
        text: str,
        ts: int | None,
        seq: int | None,
        metrics: list,
        *,
        latest_ms: int,
        now_ms: int,
    ) -> tuple[dict | None, Translation]:
        """The node's new state and what the message becomes; `state` may be changed in place, so the caller
        hands in its own copy (`own`) once per batch. A time after `latest_ms` (the contract refuses it) is
        not kept as the node's last; `now_ms` is the host's clock, for the rebirth requests' interval."""
        kind = topic.kind
        if kind in ("NCMD", "DCMD", "STATE"):
            return state, Translation()
        if kind == "NDEATH":
            return self._death(state, topic, metrics)
        if ts is None or seq is None or not 0 <= seq <= 255:
            why = f"{kind} without a timestamp or with seq {seq} outside 0-255"
            return state, Translation(rejection=Rejection("sparkplug_bad_payload", why))
        if kind == "NBIRTH":
            known = ts if ts <= latest_ms else 0
            asked = (state or {}).get("rebirth_ms")  # a new birth does not restart the requests' interval
            bd_seq = _bd_seq(metrics)
            state = {"bd_seq": bd_seq, "online": bd_seq is not None, "seq": seq, "ts": known, "aliases": {}}
            state["rebirth_pending"] = state["rebirth_sent"] = False
            if asked is not None:
                state["rebirth_ms"] = asked
            state["devices"] = {}  # device → online; every device is reborn after its node
            if bd_seq is None:  # no NDEATH could name its session: unborn, so its data asks for a rebirth
                why = (
                    f"NBIRTH of {_where(topic)} without a bdSeq metric, which Sparkplug B requires: the node "
                    "stays unborn (its data quarantined) until a birth with one"
                )
                return state, Translation(rejection=Rejection("sparkplug_birth_without_bdseq", why))
        elif state is None or not state.get("online"):
            state = dict(state or {"online": False, "seq": 0, "ts": 0, "aliases": {}, "bd_seq": None})
            rebirth = self._ask(state, now_ms)
            why = f"{kind} from {topic.group}/{topic.edge_node} before its NBIRTH (or after its NDEATH)"
            return state, Translation(rejection=Rejection("sparkplug_no_birth", why), rebirth=rebirth)
        else:
            state.setdefault("devices", {})
        redelivered = rebirth = False
        if kind != "NBIRTH":
            redelivered, rebirth = self._check_seq(state, seq, ts, latest_ms, now_ms)
        if (
            topic.device is not None
            and self.mapping.target(topic.group, topic.edge_node, topic.device) is None
        ):
            # In the node's seq, kept nowhere: each made-up device id would grow the node's state for good.
            return state, Translation(
                rejection=None if kind == "DDEATH" else _unmapped(topic), rebirth=rebirth
            )
        if kind == "DDATA" and not state["devices"].get(topic.device) and not redelivered:
            rebirth = self._ask(state, now_ms) or rebirth
            why = f"DDATA from {_where(topic)} before its DBIRTH (or after its DDEATH)"
            return state, Translation(rejection=Rejection("sparkplug_no_birth", why), rebirth=rebirth)
        aliases, signed = state["aliases"], state.setdefault("signed", {})
        if topic.device is not None:
            # A device's metric names are its own, and its DBIRTH declares them anew. (A state saved before
            # they were kept per device has the device's aliases in the node's.)
            declared = state.setdefault("device_metrics", {})
            if kind == "DBIRTH":
                declared[topic.device] = {"aliases": {}, "signed": {}}
            mine = declared.get(topic.device)
            if mine is not None:
                aliases, signed = mine["aliases"], mine["signed"]
        if kind in ("NBIRTH", "DBIRTH"):
            clash = _alias_clash(metrics)
            if clash is not None:
                # Unborn until a birth without the clash. Not asked for one: the same birth would come back.
                state["rebirth_pending"] = state["rebirth_sent"] = True
                if topic.device is None:
                    state["online"] = False
                else:
                    state["devices"][topic.device] = False
                why = f"{kind} of {_where(topic)}: {clash}; its data is quarantined until a birth without it"
                return state, Translation(rejection=Rejection("sparkplug_bad_payload", why), rebirth=rebirth)
            self._declare(aliases, signed, metrics)
        named = []
        for m in metrics:
            name = m[0] if m[0] is not None else aliases.get(str(m[1]))
            if name is None:
                rebirth = self._ask(state, now_ms) or rebirth
                why = f"{kind} metric alias {m[1]} was not in the birth of {topic.group}/{topic.edge_node}"
                rejection = Rejection("sparkplug_unknown_alias", why)
                return state, Translation(rejection=rejection, rebirth=rebirth)
            if not m[5] and name in signed and type(m[4]) is int:
                # Data need not repeat its datatype: a signed integer is read as its birth declared it.
                m = (*m[:4], as_signed(m[4], signed[name]), signed[name])
            named.append((name, m))
        if kind in ("DBIRTH", "DDEATH"):
            state["devices"][topic.device] = kind == "DBIRTH"
        if kind == "DDEATH":
            return state, Translation(rebirth=rebirth)
        target = self.mapping.target(topic.group, topic.edge_node, topic.device)
        if target is None and all(_control(name) for name, _ in named):
            return state, Translation(rebirth=rebirth)
        if target is None:
            return state, Translation(rejection=_unmapped(topic), rebirth=rebirth)
        out = translate(target, text, ts, seq, named)
        if type(out) is Rejection:
            return state, Translation(rejection=out, rebirth=rebirth)
        return state, Translation(out, rebirth=rebirth)

    @staticmethod
    def _declare(aliases: dict, signed: dict, metrics: list[Metric]) -> None:
        """Remember a birth's aliases (alias → name) and its signed integer metrics (name → datatype)."""
        for name, alias, _, _, _, datatype in metrics:
            if name is None:
                continue
            if alias is not None:
                aliases[str(alias)] = name
            if is_signed(datatype):
                signed[name] = datatype

    def _ask(self, state: dict, now_ms: int) -> bool:
        """Mark the node as waiting for a rebirth; True when the request goes out now: none has since its
        birth, and none within the interval (a fault that each rebirth brings back would ask in a loop)."""
        sent = state.get("rebirth_sent", state.get("rebirth_pending", False))  # a state saved before the key
        state["rebirth_pending"] = True
        last = state.get("rebirth_ms")
        if sent or (last is not None and abs(now_ms - last) < self.rebirth_interval_ms):
            state["rebirth_sent"] = sent
            return False
        state["rebirth_sent"], state["rebirth_ms"] = True, now_ms
        return True

    def _check_seq(self, state: dict, seq: int, ts: int, latest_ms: int, now_ms: int) -> tuple[bool, bool]:
        """Advance the node's seq: (redelivered, rebirth), the latter when a gap calls for a rebirth request
        (one per gap)."""
        # A clock gone wrong once must not make every later message look redelivered (no gap seen again).
        known = ts if ts <= latest_ms else state["ts"]
        if seq == (state["seq"] + 1) % 256:
            # The seq orders a session, not the clock: the next message's time is the node's, also when its
            # clock stepped back (kept at the old high mark, every message after it looked redelivered).
            state["seq"], state["ts"] = seq, known
            return False, False
        if ts <= state["ts"]:
            # An earlier message again: the broker redelivers what a killed host had not acknowledged (a
            # batch may hold more than 256 of one node: the seq alone cannot tell). Its key is made from the
            # message, so storing it again is a duplicate; the state stays.
            return True, False
        state["seq"], state["ts"] = seq, known
        return False, self._ask(state, now_ms)

    @staticmethod
    def _death(state: dict | None, topic: Topic, metrics: list[Metric]) -> tuple[dict | None, Translation]:
        """An NDEATH ends the session only when its bdSeq is the current birth's; any other changes nothing,
        and says why (`never_born`, `stale_bd_seq`); one without a bdSeq names no birth: quarantined."""
        bd_seq, born = _bd_seq(metrics), (state or {}).get("bd_seq")
        if bd_seq is None:  # a birth without one is refused: no session is ended by it
            why = f"NDEATH of {_where(topic)} without a bdSeq: it names no birth to end; the session stays"
            return state, Translation(rejection=Rejection("sparkplug_bad_payload", why))
        if state is not None and bd_seq == born:
            # The same death again (a redelivery) finds the session ended already.
            return ({**state, "online": False} if state.get("online") else state), Translation()
        said = f"NDEATH of {_where(topic)} with bdSeq {bd_seq}"
        if born is None:  # no state, one that data before any birth left, or a refused birth's
            return state, Translation(ignored_death=("never_born", f"{said}: no birth with a bdSeq seen"))
        return state, Translation(ignored_death=("stale_bd_seq", f"{said}, not its birth's {born}: stale"))
