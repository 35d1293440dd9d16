"""The archive's Parquet layout: telemetry rows to a compact, lossless Arrow table and back.

One row per message, sorted by machine and time; the readings are a struct with one field per sensor.
A sensor whose every value is a decimal with at most 9 places is stored as DECIMAL(18, k) in INT64 with
delta encoding (exact, and read as a decimal by DuckDB, Spark or pandas); others as float64 with
BYTE_STREAM_SPLIT. Timestamps are delta-encoded microseconds; ids, firmware and extra are run-length or
dictionary encoded. Readings sent as JSON null are listed per row in `null_keys`, so that a null and an
absent reading stay distinct.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fleet import parquet_bounds

FORMAT_VERSION = "1"
_MAX_PLACES = 9
_DECIMAL_LIMIT = 10.0**18
TS = pa.timestamp("us", tz="UTC")


def _places(values: np.ndarray) -> int | None:
    """The fewest decimal places that store these finite floats exactly as integers, or None."""
    if not len(values):
        return 0
    if np.any((values == 0) & np.signbit(values)):
        return None  # -0.0 would come back as 0.0
    for k in range(_MAX_PLACES + 1):
        with np.errstate(over="ignore"):
            scaled = np.round(values * 10.0**k)
        if np.all(np.abs(scaled) < min(_DECIMAL_LIMIT, 2.0**53)) and np.array_equal(scaled / 10.0**k, values):
            return k
    return None


def _sensor_array(values: np.ndarray, present: np.ndarray) -> pa.Array:
    """One sensor's column: DECIMAL(18, k) over int64 when exact, else float64."""
    k = _places(values[present])
    mask = pa.py_buffer(np.packbits(present, bitorder="little"))
    if k is None:
        return pa.Array.from_buffers(
            pa.float64(), len(values), [mask, pa.py_buffer(np.where(present, values, 0.0))]
        )
    ints = np.where(present, np.round(values * 10.0**k), 0).astype(np.int64)
    return pa.Array.from_buffers(pa.decimal64(18, k), len(values), [mask, pa.py_buffer(ints)])


def encode(frame: pd.DataFrame) -> pa.Table:
    """Telemetry rows (as `history.read_rows` gives them) as the archive's Arrow table, sorted."""
    frame = frame.sort_values(["machine_id", "ts", "seq"], kind="stable").reset_index(drop=True)
    readings = frame["readings"].tolist()
    fields, arrays = [], []
    for name, (values, _) in sensors_of_dicts(readings).items():
        array = _sensor_array(values, ~np.isnan(values))
        fields.append(pa.field(name, array.type))
        arrays.append(array)
    nulls = [sorted(k for k, v in r.items() if v is None) for r in readings]
    null_keys = [json.dumps(keys) if keys else None for keys in nulls]
    struct = (
        pa.StructArray.from_arrays(arrays, fields=fields)
        if fields
        else pa.array([{}] * len(frame), pa.struct([]))
    )
    columns = {
        "customer_id": pa.array(frame["customer_id"].to_numpy(np.int32)),
        "machine_id": pa.array(frame["machine_id"].to_numpy(np.int32)),
        "seq": pa.array(frame["seq"].to_numpy(np.int64)),
        "ts": pa.array(frame["ts"].to_numpy("datetime64[us]"), TS),
        "received_at": pa.array(frame["received_at"].to_numpy("datetime64[us]"), TS),
        "fw": pa.array([f if isinstance(f, str) else None for f in frame["fw"]], pa.string()),
        "extra": pa.array(
            [json.dumps(e, sort_keys=True) if isinstance(e, dict) else None for e in frame["extra"]],
            pa.string(),
        ),
        "null_keys": pa.array(null_keys, pa.string()),
        "readings": struct,
    }
    table = pa.table(columns)
    return table.replace_schema_metadata({"servicecast.archive": FORMAT_VERSION})


# Every column but the readings, as `encode` makes them; the readings are a struct of numbers.
_COLUMNS = {
    "customer_id": pa.int32(),
    "machine_id": pa.int32(),
    "seq": pa.int64(),
    "ts": TS,
    "received_at": TS,
    "fw": pa.string(),
    "extra": pa.string(),
    "null_keys": pa.string(),
}


def check(schema: pa.Schema) -> None:
    """pa.ArrowTypeError naming the first column that differs from the layout `encode` writes: a file another
    tool wrote, or a wrong backup, in a registered file's place."""
    found = dict(zip(schema.names, schema.types, strict=True))
    for name, expected in {**_COLUMNS, "readings": None}.items():
        if name not in found:
            raise pa.ArrowTypeError(f"not an archive file: it has no column {name!r}")
        if expected is not None and found[name] != expected:
            raise pa.ArrowTypeError(f"not an archive file: column {name!r} is {found[name]}, not {expected}")
    readings = found["readings"]
    if not pa.types.is_struct(readings):
        raise pa.ArrowTypeError(f"not an archive file: column 'readings' is {readings}, not a struct")
    for field in readings:
        if not (pa.types.is_floating(field.type) or pa.types.is_decimal(field.type)):
            raise pa.ArrowTypeError(f"not an archive file: sensor readings.{field.name} is {field.type}")


def check_inflation(metadata: pq.FileMetaData) -> None:
    """pa.ArrowInvalid for a file whose footer shows a decompression bomb (`parquet_bounds.bomb`): refused
    before a page is read."""
    if why := parquet_bounds.bomb(metadata):
        raise pa.ArrowInvalid(f"not an archive file: {why} (a zip bomb)")


def write_options(table: pa.Table) -> dict:
    """`pyarrow.parquet.write_table` options for an `encode`d table."""
    encoding = {c: "DELTA_BINARY_PACKED" for c in ("seq", "ts", "received_at")}
    for field in table.schema.field("readings").type:
        kind = "BYTE_STREAM_SPLIT" if pa.types.is_floating(field.type) else "DELTA_BINARY_PACKED"
        encoding[f"readings.{field.name}"] = kind
    return dict(
        compression="zstd",
        compression_level=9,
        use_dictionary=["customer_id", "machine_id", "fw", "extra", "null_keys"],
        column_encoding=encoding,
        store_decimal_as_integer=True,
        row_group_size=100_000,  # small enough for a machine and time filter to skip groups
        # A CRC per page: without it a flipped byte in a zstd page mostly decodes to other values, silently
        # (117 of 120 flips tried). Reads verify it (`archive.VERIFY`); pages of older files have none and
        # read unverified. pyarrow 26 raises OSError on a mismatch (840 damaged reads, no abort).
        write_page_checksum=True,
    )


def _floats(array: pa.Array) -> np.ndarray:
    """A sensor column as float64 (NaN where absent); decimals divided exactly as they were multiplied."""
    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    if pa.types.is_decimal(array.type):
        k = array.type.scale
        if array.type.bit_width != 64:
            array = array.cast(pa.decimal64(18, k))
        ints = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + len(array)]
        values = ints / 10.0**k
    else:
        values = array.to_numpy(zero_copy_only=False).astype(np.float64)
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    return np.where(valid, values, np.nan)


def sensors_of_dicts(readings: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Readings as dicts (as `history.read_hot` gives them) in the columns of `sensors`, sorted by name."""
    n = len(readings)
    # One flat pass over every (row, key, value), then scattered into one row of a matrix per sensor.
    codes, names = pd.factorize(np.array([k for r in readings for k in r], dtype=object), sort=True)
    rows = np.repeat(np.arange(n), np.fromiter(map(len, readings), np.int64, n))
    values = np.full((len(names), n), np.nan)
    values[codes, rows] = np.array([v for r in readings for v in r.values()], dtype=np.float64)  # None: NaN
    sent = np.zeros((len(names), n), bool)
    sent[codes, rows] = True
    return {name: (values[j], sent[j]) for j, name in enumerate(names)}


def sensors(table: pa.Table) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per sensor: float64 values (NaN unless a number was sent) and whether its key was sent (null too)."""
    readings_col = table.column("readings").combine_chunks()
    out = {}
    for i, field in enumerate(readings_col.type):
        values = _floats(readings_col.field(i))
        out[field.name] = (values, ~np.isnan(values))
    null_keys = table.column("null_keys")
    rows = np.flatnonzero(null_keys.is_valid().to_numpy(zero_copy_only=False))
    n = table.num_rows
    for i, keys in zip(rows.tolist(), null_keys.take(rows).to_pylist(), strict=True):
        for name in json.loads(keys):
            out.setdefault(name, (np.full(n, np.nan), np.zeros(n, bool)))[1][i] = True
    return out


def fields(table: pa.Table) -> pd.DataFrame:
    """An archive table's rows with every field but the readings (see `sensors`), as `decode` gives them."""
    return pd.DataFrame(
        {
            "customer_id": table.column("customer_id").to_numpy().astype(np.int64),
            "machine_id": table.column("machine_id").to_numpy().astype(np.int64),
            "seq": table.column("seq").to_numpy().astype(np.int64),
            "ts": pd.to_datetime(table.column("ts").to_numpy(), utc=True),
            "fw": table.column("fw").to_pylist(),
            "extra": [None if e is None else json.loads(e) for e in table.column("extra").to_pylist()],
            "received_at": pd.to_datetime(table.column("received_at").to_numpy(), utc=True),
        }
    )


def decode(table: pa.Table) -> pd.DataFrame:
    """An archive table back as telemetry rows: the frame `encode` took, sorted by machine and time."""
    rows: list[dict] = [{} for _ in range(table.num_rows)]
    for name, (values, sent) in sensors(table).items():
        present = ~np.isnan(values)
        where = np.flatnonzero(present)
        for i, value in zip(where.tolist(), values[where].tolist(), strict=True):
            rows[i][name] = value
        for i in np.flatnonzero(sent & ~present).tolist():
            rows[i][name] = None
    frame = fields(table)
    frame.insert(frame.columns.get_loc("ts") + 1, "readings", rows)  # the order `encode` took
    return frame
