"""The rules of a type's `simulation:` block (read by the simulator only, never stored), checked by the types
file's `Checker` so a typo there has its line and field like the rest of the file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleet.type_checks import Checker, Path_

KEYS = {"prefix", "serial_code", "regimes", "sudden_mode", "sensors", "modes"}
SENSOR_KEYS = {"noise_sd", "decimals", "scale"}
MODE_KEYS = {"rate_per_day", "threshold", "effects"}
EFFECT_KINDS = ("mul", "add")
MAX_DECIMALS = 15  # a float64 holds about 15 significant digits


def check(c: Checker, path: Path_, sim: Any, item: dict) -> None:
    """Every problem of one type's simulation block; `item` is the type, whose sensors and modes it names."""
    if not c.mapping(path, sim, KEYS, required=tuple(sorted(KEYS))):
        return
    sensors = {s["name"] for s in _listed(item.get("sensors")) if isinstance(s.get("name"), str)}
    for i, sensor in enumerate(item.get("sensors") if isinstance(item.get("sensors"), list) else []):
        if isinstance(sensor, dict) and "range" not in sensor:
            c.bad(path[:-1] + ("sensors", i, "range"), "is required to simulate it (readings stay inside it)")
    modes = {m["name"] for m in _listed(item.get("failure_modes")) if isinstance(m.get("name"), str)}
    c.unique(path + ("prefix",), sim.get("prefix"), set())
    c.text(path + ("serial_code",), sim.get("serial_code"))
    regimes = sim.get("regimes")
    if "regimes" in sim and (not isinstance(regimes, list) or not regimes):
        c.bad(path + ("regimes",), "must be a list of one or more texts")
    for i, regime in enumerate(regimes if isinstance(regimes, list) else []):
        c.text(path + ("regimes", i), regime)
    sudden = sim.get("sudden_mode")
    if "sudden_mode" in sim and (not isinstance(sudden, str) or sudden not in modes):
        c.bad(path + ("sudden_mode",), f"{sudden!r} is not one of this type's failure modes")
    if _named(c, path + ("sensors",), sim.get("sensors"), sensors, "sensors", required=True):
        for name, values in sim["sensors"].items():
            if name in sensors and c.mapping(
                path + ("sensors", name), values, SENSOR_KEYS, required=_all(SENSOR_KEYS)
            ):
                _sensor(c, path + ("sensors", name), values)
    if _named(c, path + ("modes",), sim.get("modes"), modes, "failure modes", required=False):
        for name, values in sim["modes"].items():
            if name in modes and c.mapping(
                path + ("modes", name), values, MODE_KEYS, required=_all(MODE_KEYS)
            ):
                _mode(c, path + ("modes", name), values, sensors)


def _listed(values: Any) -> list[dict]:
    return [v for v in values if isinstance(v, dict)] if isinstance(values, list) else []


def _all(keys: set[str]) -> tuple[str, ...]:
    return tuple(sorted(keys))


def _named(c: Checker, path: Path_, values: Any, names: set, what: str, *, required: bool) -> bool:
    """A mapping keyed by this type's sensors or failure modes: each key known, each one given if required."""
    if values is None:
        return False  # `mapping` said it is required
    if not isinstance(values, dict):
        c.bad(path, f"must be a mapping of this type's {what}")
        return False
    for key in values:
        if key not in names:
            c.bad(path + (key,), f"{key!r} is not one of this type's {what}")
    for name in sorted(n for n in names if n not in values) if required else ():
        c.bad(path + (name,), "is required (noise_sd, decimals, scale)")
    return True


def _sensor(c: Checker, path: Path_, s: dict) -> None:
    if "noise_sd" in s:
        _at_least(c, path + ("noise_sd",), s["noise_sd"], 0.0, "0 or more (a standard deviation)")
    decimals = s.get("decimals", 0)
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= MAX_DECIMALS:
        c.bad(path + ("decimals",), f"{decimals!r} must be a whole number from 0 to {MAX_DECIMALS}")
    if "scale" in s:
        _above(c, path + ("scale",), s["scale"], "the sensor's typical magnitude")


def _mode(c: Checker, path: Path_, m: dict, sensors: set) -> None:
    for key, what in (
        ("rate_per_day", "wear grows as exp(rate·days) - 1"),
        ("threshold", "the wear to fail"),
    ):
        if key in m:
            _above(c, path + (key,), m[key], what)
    effects = m.get("effects", [])
    if not isinstance(effects, list):
        c.bad(path + ("effects",), "must be a list of [sensor, mul | add, size]")
        return
    for i, effect in enumerate(effects):
        at = path + ("effects", i)
        if not isinstance(effect, list) or len(effect) != 3:
            c.bad(at, "must be [sensor, mul | add, size]")
            continue
        sensor, kind, size = effect
        if not isinstance(sensor, str) or sensor not in sensors:
            c.bad(at + (0,), f"{sensor!r} is not one of this type's sensors")
        if kind not in EFFECT_KINDS:
            c.bad(at + (1,), f"{kind!r} must be one of {', '.join(EFFECT_KINDS)}")
        elif kind == "mul":
            _at_least(c, at + (2,), size, -1.0, "-1 or more (mul -1 takes the reading to 0 at full wear)")
        else:
            c.number(at + (2,), size)


def _at_least(c: Checker, path: Path_, value: Any, low: float, what: str) -> None:
    if c.number(path, value) and value < low:
        c.bad(path, f"{value} must be {what}")


def _above(c: Checker, path: Path_, value: Any, what: str) -> None:
    if c.number(path, value) and value <= 0:
        c.bad(path, f"{value} must be above 0 ({what})")
