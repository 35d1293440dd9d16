"""`servicecast customers export TENANT DIR` in a child that kills itself (SIGKILL) at its first file
operation after a ZIP's name shows in DIR: between the name's first instant and the export's last step."""

from __future__ import annotations

import os
import runpy
import signal
import sys
from pathlib import Path

_STEPS = {"open", "os.link", "os.rename", "os.remove"}  # audit events of the calls that touch DIR


def _kill_once_named(directory: Path) -> None:
    def hook(event: str, args: tuple) -> None:
        if event in _STEPS and str(args[0]).startswith(str(directory)) and any(directory.glob("*.zip")):
            os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)


if __name__ == "__main__":
    _kill_once_named(Path(sys.argv[-1]))
    sys.argv = ["servicecast", "customers", "export", *sys.argv[1:]]
    runpy.run_module("servicecast", run_name="__main__", alter_sys=True)
