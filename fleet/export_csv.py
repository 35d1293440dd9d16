"""An Arrow table as the CSV text pandas' `to_csv(index=False)` writes, at Arrow's speed.

Values keep pandas' text: floats as numpy's `astype(str)` (`82.0`, `1e-05`), UTC times as
`2026-01-01 00:00:00+00:00` with as many fraction digits as the column's finest value needs; columns of
other kinds (booleans, dates, non-UTC times) are given pandas' text column by column. Quoting alone may
differ, which no CSV reader can tell: where a text value holds a comma, quote, CR or LF, Arrow quotes
every text value and the header (pandas only the ones that need it, and not a lone CR, which then split
the row for Python's csv module and spreadsheets).
"""

from __future__ import annotations

import csv
import functools
import io
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from fleet import spreadsheet_cells

_UNITS = (("s", 10**9), ("ms", 10**6), ("us", 10**3))
_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
_SPECIAL = r'[,"\r\n]'


def as_text(table: pa.Table) -> pa.Table:
    """The table with every text cell a spreadsheet would take for a formula behind a leading `'`; plain
    numbers (`-1`, `+41`) and other cells stay as they are."""
    for i, column in enumerate(table.columns):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        starts = pc.match_substring_regex(column, spreadsheet_cells.FORMULA_START)
        if not pc.any(starts).as_py():
            continue
        formula = pc.and_(starts, pc.invert(pc.match_substring_regex(column, spreadsheet_cells.PLAIN_NUMBER)))
        if pc.any(formula).as_py():
            quoted = pc.binary_join_element_wise(
                pa.scalar("'", column.type), column, pa.scalar("", column.type)
            )
            table = table.set_column(i, table.field(i), pc.if_else(formula, quoted, column))
    return table


def write(table: pa.Table) -> bytes:
    """CSV bytes of the table as pandas writes them, every text cell with a CR, LF, quote or comma quoted."""
    columns = [_text(column) for column in table.columns]
    texts = [c for c in columns if pa.types.is_string(c.type) or pa.types.is_large_string(c.type)]
    plain = not any(pc.any(pc.match_substring_regex(c, _SPECIAL)).as_py() for c in texts)
    plain_names = not any(re.search(_SPECIAL, name) for name in table.column_names)
    options = pa_csv.WriteOptions(
        quoting_style="none" if plain else "needed", quoting_header="none" if plain_names else "needed"
    )
    out = io.BytesIO()
    pa_csv.write_csv(pa.Table.from_arrays(columns, names=table.column_names), out, write_options=options)
    return out.getvalue()


def _text(column: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    """The column as Arrow may write it: its own numbers and text, or the text pandas gives its values."""
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column
    if pa.types.is_null(kind):
        return column
    if pa.types.is_float64(kind):
        return _floats(column)
    if pa.types.is_timestamp(kind) and kind.tz in ("UTC", "+00:00"):
        return _timestamps(column)
    return _pandas_text(column)


def _pandas_text(column: pa.ChunkedArray) -> pa.Array:
    """Each value as pandas' `to_csv` writes it (e.g. `True`, `2026-01-01`, times with their offset)."""
    written = column.to_pandas().to_frame().to_csv(index=False, header=False, quoting=csv.QUOTE_ALL)
    cells = csv.reader(io.StringIO(written, newline=""))
    return pa.array([row[0] or None for row in cells], pa.string())  # pandas writes a missing value empty


def _floats(column: pa.ChunkedArray) -> pa.Array:
    """Floats as numpy's text: Arrow's digits (both the shortest that round-trip), numpy's layout.

    Arrow writes `82` for 82.0 and uses exponents outside [1e-6, 1e10), numpy outside [1e-4, 1e16):
    in [1e-4, 1e10) and at zero the two differ only by numpy's `.0` on whole numbers; the rare values
    outside are formatted by numpy itself. NaN is written empty, as pandas writes it.
    """
    column = column.combine_chunks()
    column = pc.if_else(pc.is_nan(column), pa.scalar(None, pa.float64()), column)
    text = pc.cast(column, pa.string())
    size = pc.abs(column)
    shared = pc.or_(pc.and_(pc.greater_equal(size, 1e-4), pc.less(size, 1e10)), pc.equal(size, 0.0))
    whole = pc.and_(shared, pc.equal(column, pc.floor(column)))
    text = pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)
    odd = pc.fill_null(pc.and_(pc.is_valid(column), pc.invert(shared)), False)
    if pc.any(odd).as_py():
        at = np.flatnonzero(odd.to_numpy(zero_copy_only=False))
        values = column.take(pa.array(at)).to_numpy(zero_copy_only=False)
        text = pc.replace_with_mask(text, odd, pa.array(values.astype(str)))
    return text


def _timestamps(column: pa.ChunkedArray) -> pa.Array:
    """UTC times as pandas' text: the fraction as fine as the finest value needs.

    Built from parts (`strftime` costs ~1.5 us a value): each distinct day formatted once, the clock
    looked up among the day's 86,400 seconds, the fraction zero-padded.
    """
    ticks = column.cast(pa.int64()).drop_null()
    scale = _NS[column.type.unit]
    unit = column.type.unit
    for name, ns in _UNITS:
        if ns >= scale and pc.all(pc.equal(pc.remainder(ticks, ns // scale), 0)).as_py() is not False:
            unit = name
            break
    per_second = 10**9 // _NS[unit]
    exact = column.cast(pa.timestamp(unit, tz="UTC")).cast(pa.int64()).combine_chunks()
    seconds, fraction = np.divmod(exact.fill_null(0).to_numpy(), per_second)
    days, clock = np.divmod(seconds, 86400)
    distinct, day_of = np.unique(days, return_inverse=True)
    day_text = pc.strftime(pa.array(distinct * 86400, pa.timestamp("s")), format="%Y-%m-%d ", locale="C")
    parts = [day_text.take(pa.array(day_of.ravel())), _clock().take(pa.array(clock))]
    if per_second > 1:
        digits = pc.utf8_lpad(pc.cast(pa.array(fraction), pa.string()), len(str(per_second)) - 1, "0")
        parts.append(pc.binary_join_element_wise(".", digits, ""))
    text = pc.binary_join_element_wise(*parts, "+00:00", "")
    return pc.if_else(exact.is_valid(), text, pa.scalar(None, pa.string()))


@functools.cache
def _clock() -> pa.Array:
    """`HH:MM:SS` of every second of a day."""
    return pa.array([f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)])
