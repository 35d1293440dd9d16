"""Real services for benchmarks and tests: a Mosquitto broker on a free port, and who listens where."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

from fleet import subprocesses


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listeners(port: int) -> list[set[int]]:
    """The listening sockets on `port`, each as the pids of the processes that hold it (from `ss`)."""
    return [
        {int(pid) for pid in re.findall(r"pid=(\d+)", line)} for line in _ss("-ltnpH", f"( sport = :{port} )")
    ]


def connections_by_pid(port: int) -> Counter:
    """Established connections to `port` per server process (from `ss`)."""
    lines = _ss("-tnpH", "state", "established", f"( sport = :{port} )")
    return Counter(pid for line in lines for pid in re.findall(r"pid=(\d+)", line))


def _ss(*args: str) -> list[str]:
    return subprocess.run(["ss", *args], capture_output=True, text=True, check=True).stdout.splitlines()


def wait_port(port: int, timeout: float = 10.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


class Mosquitto:
    """A real Mosquitto on a free port, with persistence on and the queue limits raised."""

    def __init__(
        self,
        workdir: Path,
        *,
        passwords: dict[str, str] | None = None,
        extra: list[str] | None = None,
        replace_defaults: bool = False,
        auth: list[str] | None = None,
    ) -> None:
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.port = free_port()
        self.workdir = workdir
        self.config = workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            # As root, Mosquitto drops to its own user and then cannot write the persistence file here.
            "user root",
            "persistence true",
            f"persistence_location {workdir}/",
            "persistence_file mosquitto.db",
            "autosave_interval 1",
            "max_queued_messages 0",
            "max_queued_bytes 0",
            "max_inflight_messages 0",
            "max_packet_size 262144",  # as deploy/mosquitto.conf
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if passwords:
            password_file = workdir / "passwords"
            password_file.write_text("".join(f"{u}:{p}\n" for u, p in passwords.items()))
            subprocess.run(["mosquitto_passwd", "-U", str(password_file)], check=True)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        elif auth:
            lines += auth
        else:
            lines.append("allow_anonymous true")
        if replace_defaults:
            lines = [lines[0], "user root", *(line for line in lines if line.startswith("log_"))]
        lines += extra or []
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The broker's `mqtt://` URL."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        """Start and wait for the listener."""
        log = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115
        # Killed outright with the process that started it: it can miss a SIGTERM (see stop), and a broker
        # whose test is gone has nothing to persist.
        self.process = subprocesses.popen(
            [self.binary, "-c", str(self.config)], death_signal=signal.SIGKILL, stdout=log, stderr=log
        )
        try:
            wait_port(self.port)
        except TimeoutError:
            raise RuntimeError(
                f"mosquitto did not start: {(self.workdir / 'mosquitto.log').read_text()}"
            ) from None
        return self

    def reload(self) -> None:
        """SIGHUP: Mosquitto rereads its password and ACL files and drops clients they no longer admit."""
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        """Stop cleanly (SIGTERM makes Mosquitto write its persistence file)."""
        if not self.process or self.process.poll() is not None:
            return
        # Mosquitto 2.0.11 can miss a SIGTERM that lands as it enters its wait (1 start and stop in 150 under
        # load here; a second SIGTERM ended it at once), so one is sent again after a while.
        for attempt in range(3):
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
                return
            except subprocess.TimeoutExpired:
                if attempt == 2:
                    raise

    def restart(self, down_for: float = 0.5) -> None:
        """Stop, stay down a moment, start again on the same port with the same persistence file."""
        self.stop()
        time.sleep(down_for)
        self.start()


def mosquitto_available() -> bool:
    """Whether a mosquitto binary can be run here."""
    return bool(shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists())
