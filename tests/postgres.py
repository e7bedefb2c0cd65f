"""A real PostgreSQL server for the tests: initdb + postgres in a temporary folder, on 127.0.0.1, on a port
the OS picks, started once per test session and stopped at its end.

PostgreSQL refuses to run as root, and the tests run as root here and in CI. As root, the server runs as
the unprivileged system user `qabot-pg`, created here with `useradd --system` the first time (no home, no
login shell); as any other user it runs as that user. Its folder is a fresh temporary directory owned by
that user. The server programs come from Debian's `postgresql` package (`scripts/setup.sh` installs it
on a fresh machine); they are found on PATH, through `pg_config --bindir`, or in /usr/lib/postgresql/*/bin.

The server dies with the test process (PR_SET_PDEATHSIG), so an interrupted session leaves none behind.
Every test that wants a clean database takes one with `take_database()` and gives it back emptied
(`give_back()`): a few milliseconds, where a new database costs a few hundred (`create_database()`).
"""

from __future__ import annotations

import ctypes
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ACCOUNT = "qabot-pg"
SUPERUSER = "qabot"
START_TIMEOUT_S = 60.0
_PR_SET_PDEATHSIG = 1


class PostgresUnavailable(RuntimeError):
    """The server programs are missing or the server would not start; the message says what to do."""


def find_bindir() -> Path:
    """The folder with initdb and postgres: PATH, then `pg_config --bindir`, then Debian's layout."""
    candidates: list[Path] = []
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass

    def version(p: Path) -> int:
        return int(p.parent.name) if p.parent.name.isdigit() else 0

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    raise PostgresUnavailable(
        "PostgreSQL's server programs (initdb, postgres) are not installed: run `make setup` as root "
        "(scripts/setup.sh installs Debian's postgresql package), or `apt-get install postgresql`"
    )


def _account() -> tuple[int, int] | None:
    """(uid, gid) to run the server as when we are root (creating the system user once); None otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(ACCOUNT)
    except KeyError:
        nologin = next((s for s in ("/usr/sbin/nologin", "/sbin/nologin") if os.path.exists(s)), "/bin/false")
        made = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", nologin, ACCOUNT],
            capture_output=True,
            text=True,
        )
        try:  # another test session may have created it at the same moment
            entry = pwd.getpwnam(ACCOUNT)
        except KeyError:
            raise PostgresUnavailable(
                f"could not create the system user {ACCOUNT} to run PostgreSQL as (it refuses to run as root): "
                f"{made.stderr.strip() or made.returncode}"
            ) from None
    return entry.pw_uid, entry.pw_gid


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    # runs in the child after setuid (which clears the parent-death signal): SIGQUIT is an immediate stop
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT, 0, 0, 0)


class PostgresServer:
    def __init__(self, bindir: Path | None = None):
        self.bindir = bindir or find_bindir()
        self.account = _account()
        self.base = Path(tempfile.mkdtemp(prefix="qabot-pg-", dir="/tmp" if self.account else None))
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self._recycled: list[str] = []  # emptied databases, for the next test (take_database)
        if self.account:
            os.chown(self.base, *self.account)

    def _as_account(self) -> dict:
        if self.account is None:
            return {}
        uid, gid = self.account
        return {"user": uid, "group": gid, "extra_groups": []}

    def start(self) -> PostgresServer:
        command = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust"]
        command += ["--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"]
        init = subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd=self.base,
            timeout=120,
            **self._as_account(),
        )
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
        last = ""
        for _ in range(5):  # a port picked a moment ago may be taken by now: pick another
            self.port = _free_port()
            last = self._start_on(self.port)
            if not last:
                return self
        raise PostgresUnavailable(f"PostgreSQL did not start: {last}")

    def _start_on(self, port: int) -> str:
        """Start postgres on `port`; '' when it accepts connections, else the end of its log."""
        options = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.base),
            # a throw-away cluster: durability off, for speed
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
            "shared_buffers": "32MB",
        }
        command = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(port)]
        for name, value in options.items():
            command += ["-c", f"{name}={value}"]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.base,
                preexec_fn=_die_with_parent,
                **self._as_account(),
            )
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return self.log.read_text(errors="replace")[-800:]
            try:
                psycopg.connect(self.dsn("postgres"), connect_timeout=2).close()
                return ""
            except psycopg.OperationalError:
                time.sleep(0.1)
        self.stop()
        return f"no connection within {START_TIMEOUT_S:.0f} s"

    def dsn(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={dbname}"

    def url(self, dbname: str) -> str:
        """The SQLAlchemy URL of `dbname` on this server, as QABOT_DATABASE_URL takes it."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, prefix: str = "t") -> str:
        """A new, empty database; returns its URL."""
        import psycopg

        name = f"{prefix}_{secrets.token_hex(6)}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            # FILE_COPY (PostgreSQL 15+) copies template1's files instead of writing them through the WAL:
            # about twice as fast here, and checkpoints cost nothing with fsync off
            strategy = " STRATEGY = FILE_COPY" if conn.info.server_version >= 150000 else ""
            conn.execute(f'CREATE DATABASE "{name}"{strategy}')
        return self.url(name)

    def take_database(self) -> str:
        """An empty database for one test: one a finished test gave back (emptied), else a new one.
        Emptying a used database takes a few milliseconds; creating one, a few hundred."""
        return self._recycled.pop() if self._recycled else self.create_database()

    def give_back(self, url: str) -> None:
        """Empty a database a test is done with and keep it for the next test: connections the test left
        open are closed, and its schema is dropped and made again as a new database has it. A database that
        cannot be emptied (the server is gone) is not used again."""
        import psycopg

        try:
            with psycopg.connect(self.dsn(dbname_of(url)), autocommit=True, connect_timeout=5) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                conn.execute("DROP SCHEMA public CASCADE")
                if conn.info.server_version >= 150000:  # as initdb makes it in PostgreSQL 15+
                    conn.execute("CREATE SCHEMA public AUTHORIZATION pg_database_owner")
                    conn.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
                else:
                    conn.execute("CREATE SCHEMA public")
                    conn.execute("GRANT ALL ON SCHEMA public TO PUBLIC")
        except psycopg.Error:
            return
        self._recycled.append(url)

    def stop(self, *, keep_data: bool = False) -> None:
        """Stop the server (fast shutdown: clients are disconnected); its folder goes unless `keep_data`."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if not keep_data:
            shutil.rmtree(self.base, ignore_errors=True)

    def restart(self) -> None:
        """Start again after stop(keep_data=True), with the same data on the same port."""
        assert self.port is not None
        problem = self._start_on(self.port)
        if problem:
            raise PostgresUnavailable(f"PostgreSQL did not start again: {problem}")


def dbname_of(url: str) -> str:
    match = re.search(r"/([^/?]+)(\?|$)", url)
    assert match, url
    return match.group(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session (see the module's docstring)."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()
