"""A child process that archives and may kill itself with SIGKILL after writing its N-th file."""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime

from fleet import archive
from fleet.db import make_engine


def main(database_url: str, archive_url: str, before: str, kill_after_file: int) -> None:
    written = []

    def after_write(path: str) -> None:
        written.append(path)
        if len(written) == kill_after_file:
            os.kill(os.getpid(), signal.SIGKILL)  # between a file's write and its commit

    archive.run(
        make_engine(database_url),
        url=archive_url,
        before=datetime.fromisoformat(before),
        max_rows=300,
        after_write=after_write,
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
