"""The tests' own PostgreSQL server (tests/postgres.py): it runs as an unprivileged user (the tests run as
root here and in CI), listens on 127.0.0.1 only on a port the OS picked, hands every test an empty
database, and is gone at the end, also when the test process is killed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from tests.postgres import ACCOUNT, PostgresServer, dbname_of

ROOT = Path(__file__).resolve().parents[2]


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


def _alive(pid: int) -> bool:
    try:
        state = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("State:"))
    except (FileNotFoundError, StopIteration):
        return False
    return "zombie" not in state


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_the_session_server_is_unprivileged_and_local(pg_server):
    assert pg_server.process is not None and pg_server.process.poll() is None
    uid = _uid_of(pg_server.process.pid)
    assert uid != 0
    if os.geteuid() == 0:
        import pwd

        assert pwd.getpwuid(uid).pw_name == ACCOUNT
        assert pg_server.base.stat().st_uid == uid and pg_server.data.stat().st_uid == uid
    with psycopg.connect(pg_server.dsn("postgres")) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        assert int(conn.execute("SHOW port").fetchone()[0]) == pg_server.port != 5432


def test_a_database_given_back_is_empty_for_the_next_test(pg_server):
    url = pg_server.take_database()
    name = dbname_of(url)
    left_open = psycopg.connect(pg_server.dsn(name))  # a test that forgot to close its connection
    left_open.execute("CREATE TABLE answers (x int)")
    left_open.commit()
    left_open.execute("SELECT pg_advisory_lock(1)")
    pg_server.give_back(url)
    assert pg_server.take_database() == url  # the same database again, emptied
    with psycopg.connect(pg_server.dsn(name), autocommit=True) as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
        others = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
        ).fetchone()[0]
        free = conn.execute("SELECT pg_try_advisory_lock(1)").fetchone()[0]
        conn.execute("CREATE TABLE t (x int)")  # the schema takes tables as a new database's does
        conn.execute("DROP TABLE t")
    assert tables == [] and others == 0 and free
    pg_server.give_back(url)
    left_open.close()


def test_a_server_stops_and_leaves_nothing_behind():
    server = PostgresServer().start()
    pid, port, base = server.process.pid, server.port, server.base
    server.stop()
    assert not _alive(pid) and _refused(port) and not base.exists()


def test_the_server_dies_with_a_killed_test_process(tmp_path):
    """A test session killed outright (no teardown) takes its server with it."""
    script = (
        "import sys, time\n"
        "from tests.postgres import PostgresServer\n"
        "s = PostgresServer().start()\n"
        "print(s.process.pid, s.port, s.base, flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    base = ""
    try:
        pid_text, port_text, base = child.stdout.readline().split()
        pid, port = int(pid_text), int(port_text)
        assert _alive(pid)
        child.kill()
        child.wait()
        deadline = time.monotonic() + 20
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid) and _refused(port)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if base:
            shutil.rmtree(base, ignore_errors=True)
