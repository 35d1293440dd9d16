"""A child process whose archive run kills itself with SIGKILL as it writes the store folder's marker: before
the file is written (`before`) or after (`after`), between the two commits of the new token."""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime

from fleet import archive, archive_store, durable
from fleet.db import make_engine


def main(database_url: str, archive_url: str, before: str, when: str) -> None:
    write = durable.write  # how the run writes the marker

    def write_then_die(fs, path: str, *args, **kwargs):  # noqa: ANN001
        if path.endswith(f"/{archive_store.MARKER}") and when == "after":
            write(fs, path, *args, **kwargs)
        if path.endswith(f"/{archive_store.MARKER}"):
            os.kill(os.getpid(), signal.SIGKILL)
        return write(fs, path, *args, **kwargs)

    durable.write = write_then_die
    archive.run(make_engine(database_url), url=archive_url, before=datetime.fromisoformat(before))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4])
