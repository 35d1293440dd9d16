"""A child process whose rollup refresh kills itself with SIGKILL inside its N-th batch, its marks deleted."""

from __future__ import annotations

import os
import signal
import sys

from sqlalchemy import event

from fleet import rollups
from fleet.db import make_engine


def main(database_url: str, archive_url: str, kill_in_batch: int) -> None:
    engine = make_engine(database_url)
    batches = []

    def after(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if statement.lstrip().upper().startswith("DELETE FROM ROLLUP_DIRTY"):
            batches.append(statement)
        if len(batches) == kill_in_batch and statement.lstrip().upper().startswith(
            "INSERT INTO TELEMETRY_ROLLUPS"
        ):
            os.kill(os.getpid(), signal.SIGKILL)  # the batch's marks deleted, some of its rollups written

    event.listen(engine, "after_cursor_execute", after)
    rollups.refresh(engine, archive_url=archive_url, batch=5)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
