"""An HTTP receiver that misbehaves on purpose (endless or dripping answers, redirects, hang-ups), on a
real socket, counting what it managed to write before the client hung up."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable

from tests.services import free_port

CHUNK = 64 * 1024
# Caps that end a misbehaviour in a test run without the client's help: far above what a client that
# stops reading in time lets through, so `cut_off` tells the two apart.
ENDLESS_CAP = 64 * 1024 * 1024
DRIP_CAP = 200


class HostileReceiver:
    """Answers every POST with `behaviour` ('endless_ok', 'endless_error', 'drip_headers', 'hang_up',
    'redirect', 'silent', 'binary_error'); `sent` counts the bytes it wrote, `cut_off` whether the client
    hung up first."""

    def __init__(self, behaviour: str, *, drip_s: float = 0.05, redirect_to: str = "", silent_s: float = 0.0):
        self.behaviour, self.drip_s, self.redirect_to, self.silent_s = (
            behaviour,
            drip_s,
            redirect_to,
            silent_s,
        )
        self.sent, self.cut_off, self.requests = 0, False, 0
        receiver = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                receiver._serve(self.request)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/{behaviour}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _serve(self, sock: socket.socket) -> None:
        _read_request(sock)
        self.requests += 1
        act: Callable[[socket.socket], None] = getattr(self, f"_{self.behaviour}")
        try:
            act(sock)
        except OSError:  # the client closed the connection: it stopped reading in time
            self.cut_off = True

    def _write(self, sock: socket.socket, data: bytes) -> None:
        sock.sendall(data)
        self.sent += len(data)

    def _endless(self, sock: socket.socket, status: str) -> None:
        self._write(sock, f"HTTP/1.1 {status}\r\ntransfer-encoding: chunked\r\n\r\n".encode())
        chunk = f"{CHUNK:x}\r\n".encode() + b"x" * CHUNK + b"\r\n"
        while self.sent < ENDLESS_CAP:
            self._write(sock, chunk)
        self._write(sock, b"0\r\n\r\n")

    def _endless_ok(self, sock: socket.socket) -> None:
        self._endless(sock, "200 OK")

    def _endless_error(self, sock: socket.socket) -> None:
        self._endless(sock, "500 Internal Server Error")

    def _drip_headers(self, sock: socket.socket) -> None:
        """A status line, then a header one byte at a time: each read is quick, the answer never ends."""
        self._write(sock, b"HTTP/1.1 200 OK\r\nx-slow: ")
        for _ in range(DRIP_CAP):
            time.sleep(self.drip_s)
            self._write(sock, b"a")
        self._write(sock, b"\r\ncontent-length: 0\r\n\r\n")

    def _binary_error(self, sock: socket.socket) -> None:
        """A 500 whose body is binary: NUL bytes and bytes that are not UTF-8."""
        body = b"crash\x00dump \xff\xfe\x00\x01" * 4
        self._write(
            sock, f"HTTP/1.1 500 Internal Server Error\r\ncontent-length: {len(body)}\r\n\r\n".encode()
        )
        self._write(sock, body)

    def _hang_up(self, sock: socket.socket) -> None:
        sock.close()

    def _redirect(self, sock: socket.socket) -> None:
        self._write(sock, f"HTTP/1.1 307 Temporary Redirect\r\nlocation: {self.redirect_to}\r\n".encode())
        self._write(sock, b"content-length: 0\r\n\r\n")

    def _silent(self, sock: socket.socket) -> None:
        time.sleep(self.silent_s)
        self._write(sock, b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")


def _read_request(sock: socket.socket) -> bytes:
    """The request head and its content-length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(CHUNK) or b"\r\n\r\n"
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        more = sock.recv(CHUNK)
        if not more:
            break
        body += more
    return body
