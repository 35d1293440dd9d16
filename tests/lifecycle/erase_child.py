"""A child process that erases a customer and kills itself with SIGKILL at its first archive file removal."""

from __future__ import annotations

import os
import signal
import sys
from datetime import UTC, datetime

from fleet import archive, erasure
from fleet.db import make_engine


def main(database_url: str, archive_url: str, tenant: str) -> None:
    fs = archive.location(archive_url).fs  # the cached filesystem erasure removes the files through

    def die(*_args, **_kwargs) -> None:
        os.kill(os.getpid(), signal.SIGKILL)  # a crash in the middle of the file step

    fs.rm = die
    erasure.erase(
        make_engine(database_url),
        tenant=tenant,
        confirm=tenant,
        by="cli:test",
        archive_url=archive_url,
        now=datetime.now(UTC),
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
