"""An erasure while the customer's export is being written: the export fails, it is not a silent part."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleet import archive, erasure, export
from tests.lifecycle import support


def test_an_export_the_customers_erasure_overtakes_fails_instead_of_ending_short(engine, tmp_path):
    ids = support.register(engine, "acme", ["p1", "p2"])
    for n, pair in enumerate(ids.values()):
        support.write(engine, support.rows(pair, seqs=range(600), step_s=1200.0, seed=n))
    url = str(tmp_path / "archive")
    archive.run(engine, url=url, before=support.START + timedelta(days=4))
    chunks = export.stream(engine, tenant="acme", archive_url=url)
    next(chunks)  # the customer looked up, its files checked, its machines written
    erasure.erase(engine, tenant="acme", confirm="acme", by="test", archive_url=url, now=datetime.now(UTC))
    with pytest.raises(LookupError, match="'acme' was erased while its export was being written"):
        list(chunks)  # the old code ended the ZIP with no telemetry, and a manifest saying 0 rows
