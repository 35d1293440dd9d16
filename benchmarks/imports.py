"""Import memory and speed: peak RSS and rows/s of `servicecast telemetry import`, `history import` and
`machines import`.

    python -m benchmarks.imports --rows 2000000 --json                         # this checkout's code
    python -m benchmarks.imports --code old=/tmp/old --code new=. --json       # each checkout, same files

Each case runs the CLI in a child process under `/usr/bin/time -v` (its peak RSS) on a fresh SQLite file
where tenant acme's machines are registered: a large valid telemetry CSV, the same rows as Parquet in row
groups, error codes (`events`), history rows, and hostile files (one 100 MB line; one 100 MB quoted field
over many lines; every row rejected, `bad_file` with `--reject-file`; `bomb`, a Parquet file of a few KB
holding a 300 MiB text; history rows all rejected, `history_bad` with `--reject-file` as every history
case, `history_refused` without: the file refused; machine rows all rejected but the first, `machines_bad`
with `--reject-file`, `machines_refused` without; `machines`, every machine row good).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

MACHINES = 20
START = datetime(2020, 1, 1, tzinfo=UTC)
BIG = 100 * 2**20  # characters of the hostile line or field
BOMB = 300 * 2**20  # characters of the hostile Parquet value


def telemetry_csv(path: Path, rows: int, *, hostile: str | None = None) -> Path:
    """`rows` readings, one a minute per machine; `hostile`: 'line' or 'field' puts a 100 MB cell in row 2,
    'text' makes every temperature a text (every row rejected)."""
    with open(path, "w", newline="") as out:
        out.write("machine,ts,temperature_c,vibration_mm_s,pressure_bar\n")
        for i in range(rows):
            ts = START + timedelta(minutes=i // MACHINES)
            temperature = "n/a" if hostile == "text" else 60 + i % 7 * 0.5
            out.write(f"m{i % MACHINES},{ts:%Y-%m-%dT%H:%M:%SZ},{temperature},{2 + i % 5 * 0.1},3.5\n")
            if i == 0 and hostile == "line":
                out.write(f"m0,{ts:%Y-%m-%dT%H:%M:%SZ},{'9' * BIG},1,1\n")
            elif i == 0 and hostile == "field":
                out.write(f'm0,{ts:%Y-%m-%dT%H:%M:%SZ},"' + ("x" * 99 + "\n") * (BIG // 100) + '",1,1\n')
    return path


def telemetry_parquet(path: Path, rows: int, row_group: int, *, bomb: bool = False) -> Path:
    """The rows of `telemetry_csv` as Parquet, `row_group` rows a group; `bomb`: a column `note` (zstd)
    holding a 300 MiB text in row 2 (a few KB packed), empty elsewhere."""
    import pyarrow as pa
    from pyarrow import parquet

    n = range(rows)
    table = pa.table(
        {
            "machine": [f"m{i % MACHINES}" for i in n],
            "ts": [f"{START + timedelta(minutes=i // MACHINES):%Y-%m-%dT%H:%M:%SZ}" for i in n],
            "temperature_c": [60 + i % 7 * 0.5 for i in n],
            "vibration_mm_s": [2 + i % 5 * 0.1 for i in n],
            "pressure_bar": [3.5] * rows,
        }
    )
    if bomb:
        table = table.append_column("note", pa.array([None, "x" * BOMB, *[None] * (rows - 2)], pa.string()))
    parquet.write_table(table, path, row_group_size=row_group, compression="zstd" if bomb else "snappy")
    return path


def events_csv(path: Path, rows: int) -> Path:
    """`rows` error codes, two at each minute of a machine (seq derived from the time and the code)."""
    with open(path, "w", newline="") as out:
        out.write("machine,ts,code\n")
        for i in range(rows):
            ts = START + timedelta(minutes=i // (2 * MACHINES))
            out.write(f"m{i // 2 % MACHINES},{ts:%Y-%m-%dT%H:%M:%SZ},E{i % 2}\n")
    return path


def history_csv(path: Path, rows: int, *, hostile: str | None = None) -> Path:
    """`rows` maintenance visits, one an hour per machine; `hostile`: 'line' puts a 100 MB component in row 2,
    'bad' makes every row bad (by turns a time that is none and a machine not registered)."""
    with open(path, "w", newline="") as out:
        out.write("machine,ts,kind,component\n")
        for i in range(rows):
            ts = START + timedelta(hours=i // MACHINES)
            machine, when = f"m{i % MACHINES}", f"{ts:%Y-%m-%dT%H:%M:%SZ}"
            if hostile == "bad":
                machine, when = ("m0", "never") if i % 2 == 0 else (f"x{i % MACHINES}", when)
            out.write(f"{machine},{when},maintenance,pump\n")
            if i == 0 and hostile == "line":
                out.write(f"m0,{ts:%Y-%m-%dT%H:%M:%SZ},maintenance,{'p' * BIG}\n")
    return path


def run(code: Path, folder: Path, *args: str) -> dict:
    """`servicecast ARGS` of checkout `code` on a fresh database: seconds, peak RSS (MB), exit, output."""
    database = folder / f"{os.getpid()}-{len(list(folder.glob('*.db')))}.db"
    env = os.environ | {"SERVICECAST_DATABASE_URL": f"sqlite:///{database}"}
    machines = folder / "machines.csv"
    machines.write_text("machine\n" + "".join(f"m{i}\n" for i in range(MACHINES)))
    cli = [sys.executable, "-m", "servicecast"]
    subprocess.run(
        [*cli, "machines", "import", str(machines), "--tenant", "acme"], cwd=code, env=env, check=True
    )
    done = subprocess.run(
        ["/usr/bin/time", "-v", *cli, *args, "--tenant", "acme"],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
    )
    database.unlink()
    seconds = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    h, m, s = seconds.groups()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    summary = [line for line in done.stdout.splitlines() if "rows" in line or "row:" in line]
    said = re.split(r"Command exited with|\tCommand being timed", done.stderr)[0].strip().splitlines()[-1:]
    return {
        "seconds": round(int(h or 0) * 3600 + int(m) * 60 + float(s), 1),
        "peak_rss_mb": round(rss / 1024),
        "exit": done.returncode,
        "said": (summary or said or [""])[0][:160],
    }


def machines_csv(path: Path, rows: int) -> Path:
    """Machine m0 (registered already), then `rows` bad rows: by turns a commissioning date that is none and
    machine m0 again."""
    with open(path, "w", newline="") as out:
        out.write("machine,installed\nm0,2020-01-01\n")
        for i in range(rows):
            out.write(f"m{i},never\n" if i % 2 == 0 else "m0,2021-01-01\n")
    return path


def good_machines_csv(path: Path, rows: int) -> Path:
    """`rows` machines (m0 … registered already among them), each with a commissioning date, type, site and
    serial: what `machines import` holds until it registers them."""
    with open(path, "w", newline="") as out:
        out.write("machine,installed,machine_type,site,serial\n")
        for i in range(rows):
            out.write(f"m{i},2020-01-{i % 28 + 1:02},model{i % 4},site{i % 50},SN{i:09}\n")
    return path


def main() -> None:
    """Build the files once, run every case with each checkout's code, print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--history-rows", type=int, default=200_000)
    parser.add_argument("--events-rows", type=int, default=200_000)
    parser.add_argument("--bad-rows", type=int, default=200_000, help="rows of the file every row of is bad")
    parser.add_argument("--machine-rows", type=int, default=200_000, help="rows of the file of good machines")
    parser.add_argument("--row-group", type=int, default=100_000)
    parser.add_argument(
        "--code", action="append", help="NAME=CHECKOUT to run (e.g. a `git worktree` of an older commit)"
    )
    parser.add_argument("--cases", default="csv,parquet,line,field,bad,history,history_line")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    here = f"new={Path(__file__).resolve().parents[1]}"
    codes = {name: Path(path).resolve() for name, _, path in (c.partition("=") for c in args.code or [here])}
    with tempfile.TemporaryDirectory(prefix="imports-") as tmp:
        folder = Path(tmp)
        makers = {
            "csv": lambda: (telemetry_csv(folder / "t.csv", args.rows), args.rows, "telemetry"),
            "parquet": lambda: (
                telemetry_parquet(folder / "t.parquet", args.rows, args.row_group),
                args.rows,
                "telemetry",
            ),
            "bomb": lambda: (
                telemetry_parquet(folder / "b.parquet", 1000, 100, bomb=True),
                1000,
                "telemetry",
            ),
            "line": lambda: (telemetry_csv(folder / "line.csv", 1000, hostile="line"), 1001, "telemetry"),
            "field": lambda: (telemetry_csv(folder / "field.csv", 1000, hostile="field"), 1001, "telemetry"),
            "bad": lambda: (
                telemetry_csv(folder / "bad.csv", args.bad_rows, hostile="text"),
                args.bad_rows,
                "telemetry",
            ),
            "bad_file": lambda: (
                telemetry_csv(folder / "bad.csv", args.bad_rows, hostile="text"),
                args.bad_rows,
                "telemetry",
            ),
            "events": lambda: (events_csv(folder / "e.csv", args.events_rows), args.events_rows, "telemetry"),
            "history": lambda: (
                history_csv(folder / "h.csv", args.history_rows),
                args.history_rows,
                "history",
            ),
            "history_line": lambda: (
                history_csv(folder / "hl.csv", 1000, hostile="line"),
                1001,
                "history",
            ),
        }
        makers |= dict.fromkeys(  # the same file, with a reject file and without
            ("history_bad", "history_refused"),
            lambda: (history_csv(folder / "hb.csv", args.bad_rows, hostile="bad"), args.bad_rows, "history"),
        )
        makers |= dict.fromkeys(  # the same file, with a reject file and without
            ("machines_bad", "machines_refused"),
            lambda: (machines_csv(folder / "mb.csv", args.bad_rows), args.bad_rows + 1, "machines"),
        )
        makers["machines"] = lambda: (
            good_machines_csv(folder / "m.csv", args.machine_rows),
            args.machine_rows,
            "machines",
        )
        results = []
        for case in args.cases.split(","):
            path, rows, command = makers[case]()
            with_file = (
                command == "history" and case != "history_refused" or case in ("bad_file", "machines_bad")
            )
            extra = ["--reject-file", str(folder / "rejects.csv")] if with_file else []
            extra += ["--kind", "events"] if case == "events" else []
            for name, code in codes.items():
                figures = run(code, folder, command, "import", str(path), *extra)
                figures |= {
                    "case": case,
                    "code": name,
                    "rows": rows,
                    "mb": round(path.stat().st_size / 2**20),
                }
                figures["rows_per_s"] = round(rows / figures["seconds"]) if figures["seconds"] else None
                results.append(figures)
                print(json.dumps(figures) if args.json else figures, flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
