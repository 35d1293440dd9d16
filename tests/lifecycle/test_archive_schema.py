"""An archive file replaced by another Parquet file (another tool's, a wrong backup): one clear error."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fleet import archive, errors, history
from tests.fleet.test_cli import run_cli
from tests.lifecycle import support


def _archived(engine, tmp_path) -> tuple[str, int, str]:
    """Acme's p1 with 300 rows archived in one file; (url, machine id, the file's path)."""
    ids = support.register(engine, "acme", ["p1"])
    support.write(engine, support.rows(ids["p1"], seqs=range(300), step_s=600.0))
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=support.START + timedelta(days=30))
    [path] = support.archived_files(url)
    return url, ids["p1"][1], path


def _foreign(rows: int, machine_id: int) -> pa.Table:
    """Rows of the archive's keys and times with other columns: no readings, a text where a number goes."""
    return pa.table(
        {
            "customer_id": pa.array([1] * rows, pa.int32()),
            "machine_id": pa.array([machine_id] * rows, pa.int32()),
            "seq": pa.array([str(i) for i in range(rows)]),
            "ts": pa.array([support.START] * rows, pa.timestamp("us", tz="UTC")),
        }
    )


@pytest.mark.parametrize("what", ["other_columns", "a_text_sensor"])
def test_reading_a_file_of_another_layout_names_it(engine, tmp_path, what):
    url, machine, path = _archived(engine, tmp_path)
    if what == "other_columns":
        pq.write_table(_foreign(300, machine), path)
    else:  # the layout's columns, but a sensor of text
        good = pq.read_table(path)
        readings = pa.StructArray.from_arrays([pa.array(["hot"] * good.num_rows)], names=["temperature_c"])
        pq.write_table(good.set_column(good.schema.get_field_index("readings"), "readings", readings), path)
    with engine.connect() as conn, pytest.raises(errors.ArchiveUnreadable) as raised:
        history.read_rows(conn, machine_ids=[machine], archive_url=url)
    assert path in raised.value.one_line() and "not an archive file" in raised.value.one_line()


def test_export_with_a_file_of_another_layout_is_one_line_and_writes_nothing(sqlite_engine, tmp_path):
    url, machine, path = _archived(sqlite_engine, tmp_path)
    pq.write_table(_foreign(300, machine), path)  # as many rows as were archived into it
    env = {"SERVICECAST_DATABASE_URL": str(sqlite_engine.url), "SERVICECAST_ARCHIVE_URL": url}
    out = run_cli("customers", "export", "acme", str(tmp_path / "out"), **env)
    assert out.returncode == 1 and out.stderr.startswith("servicecast: "), out.stderr
    assert path in out.stderr.replace("\n", "") and "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
