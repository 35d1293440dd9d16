"""What erasure's scrub of audit lines costs, for one customer of many people and machines.

nice .venv/bin/python -m benchmarks.erasure_scrub [--lines 50000] [--people 20]

An erasure's gathered ids and names (in memory, no database) and audit-like lines (actor, data, before,
after, as `_pseudonymise_audit` scrubs them), half about the customer, a third naming one of its people;
prints the median of three passes over all lines, wall time and this process's CPU time, and a digest
of the scrubbed lines.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time

from fleet.erasure import Erased


def erased(people: int) -> Erased:
    """A customer of `people` users (each with an address) and twice as many machines."""
    return Erased(
        customer_id=1,
        tenant="acme",
        machine_ids=set(range(2 * people)),
        machine_codes={f"bp-{i:03d}" for i in range(2 * people)},
        machine_types={"booster_pump"},
        user_ids=set(range(people)),
        key_ids=set(range(people)),
        user_names={f"user-{i}" for i in range(people)},
        addresses={f"person.{i}@acme.example" for i in range(people)},
        alert_ids=set(range(100)),
        offer_ids=set(range(100)),
        pseudonym="erased-000000000000",
        described_by={"Acme Pumps GmbH", "Hall 2", "Berlin", *(f"SN-{i:06d}" for i in range(2 * people))},
    )


def lines(n: int, people: int) -> list[tuple[bool, dict]]:
    """`n` audit lines as (about the customer, its columns)."""
    made = []
    for i in range(n):
        who = f"Person.{i % people}@ACME.example" if i % 3 == 0 else "someone@other.example"
        data = {"reference": f"call of {who} about bp-{i % 40:03d}, order 2017/{i}", "machine_id": i % 50}
        after = {"status": "acknowledged", "note": f"checked on site, Hall {i % 4}", "by": f"user-{i % 30}"}
        made.append(
            (i % 2 == 0, {"actor": f"user:user-{i % 30}", "data": data, "before": None, "after": after})
        )
    return made


def median_s(who: Erased, audit: list[tuple[bool, dict]]) -> tuple[float, float, str]:
    """The median wall and CPU seconds of three passes scrubbing every line, and a digest of what they give
    (the same before and after a change that keeps what the scrub does)."""
    walls, cpus = [], []
    for _ in range(3):
        started, cpu = time.perf_counter(), time.process_time()
        scrubbed = [
            {column: who.scrub(v, about=about) for column, v in columns.items()} for about, columns in audit
        ]
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    digest = hashlib.sha256(repr(scrubbed).encode()).hexdigest()[:12]
    return statistics.median(walls), statistics.median(cpus), digest


def positive(text: str) -> int:
    """A count as given on the command line: a whole number, 1 or more."""
    if not (text.isascii() and text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=positive, default=50_000)
    parser.add_argument("--people", type=positive, default=20)
    args = parser.parse_args()
    wall, cpu, digest = median_s(erased(args.people), lines(args.lines, args.people))
    print(
        f"{args.lines} lines, {args.people} people {wall:.2f} s wall, {cpu:.2f} s CPU (median of 3); {digest}"
    )


if __name__ == "__main__":
    main()
