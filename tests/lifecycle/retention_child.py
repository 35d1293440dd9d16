"""A child process that runs retention and kills itself with SIGKILL at its first archive file removal."""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime

from fleet import archive, retention
from fleet.db import make_engine
from fleet.settings import Settings


def main(database_url: str, archive_url: str, now: str) -> None:
    fs = archive.location(archive_url).fs  # the cached filesystem retention removes the files through

    def die(*_args, **_kwargs) -> None:
        os.kill(os.getpid(), signal.SIGKILL)  # after the commit that unregistered the files

    fs.rm = die
    settings = Settings(archive_url=archive_url, hot_days=14, retain_archive_days=60)
    retention.run(make_engine(database_url), settings=settings, now=datetime.fromisoformat(now))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
