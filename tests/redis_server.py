"""A real redis-server on 127.0.0.1, on a port the OS picks, for the tests (no persistence, no config file).

redis-server has no "any free port" option: a port the OS just handed out (bind to port 0, then close)
is given to it, and if another process took it meanwhile redis-server exits and a new port is tried.
`restart()` brings it back on the same port, empty (as a real Redis without persistence comes back).
scripts/setup.sh installs redis-server (a Debian package) where it is missing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

START_TIMEOUT_S = 20.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(self, executable: str | None = None):
        found = executable or shutil.which("redis-server")
        if found is None:
            raise RuntimeError(
                "redis-server is not installed: run scripts/setup.sh (as root it installs the Debian package "
                "redis-server), or `apt-get install -y redis-server`"
            )
        self.executable = found
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="qabot-redis-"))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> RedisServer:
        for _attempt in range(5):
            self.port = self.port or _free_port()
            if self._launch():
                return self
            self.port = 0
        raise RuntimeError("redis-server did not start (see its log in the temporary folder)")

    def _launch(self) -> bool:
        log = open(self._dir / f"redis-{self.port}.log", "ab")  # noqa: SIM115 (kept for the process' lifetime)
        self.proc = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._dir),
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # the port was taken: try another
            try:
                if self.client().ping():
                    return True
            except redis.RedisError:
                time.sleep(0.05)
        self.stop()
        return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        """Stop it and start it again on the same port (empty: nothing is persisted)."""
        self.stop()
        if not self._launch():
            raise RuntimeError(f"redis-server did not come back on port {self.port}")

    def flush(self) -> None:
        self.client().flushall()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
