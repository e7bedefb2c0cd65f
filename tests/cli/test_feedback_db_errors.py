"""A broken feedback database: `qabot chat`, `qabot feedback report` and `qabot run` each print one line naming
the file, what is wrong and the fix, exit 2, and `qabot run` does not blame the network (issue 11 item 5)."""

from __future__ import annotations

import ctypes
import os
import random
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

import bot.cli as cli
from bot.conversation.feedback import FeedbackStore

ROOT = Path(__file__).resolve().parents[2]
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2


def _random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(7).randbytes(64 * 1024))


def _truncated(path: Path) -> None:
    with FeedbackStore(path) as store:
        for n in range(300):
            store.record_answer(
                answer_id=f"a{n}", question="what is machine learning? " * 8, passage_ids=["p1"],
                index_version="v1", kind="abstain", platform="slack", channel_id="C1", user_id=f"U{n}",
            )  # fmt: skip
        store._checkpoint()
    for leftover in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 2)


def _newer_schema(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")


def _folder(path: Path) -> None:
    path.mkdir(parents=True)


def _unwritable(path: Path) -> None:
    FeedbackStore(path).close()
    path.chmod(0o400)


BROKEN: dict[str, tuple[Callable[[Path], None], str]] = {
    "random bytes": (_random_bytes, "is not an SQLite database"),
    "truncated": (_truncated, "is damaged"),
    "newer schema": (_newer_schema, "newer qabot (schema 99"),
    "a folder": (_folder, "is a folder"),
    "unwritable": (_unwritable, "is not readable and writable by this user"),
}


def _without_root_powers() -> None:
    """In the child: as root, drop the capabilities that ignore file permissions (a service user has none)."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


@pytest.fixture
def run_qabot(tmp_path, built_index_dir):
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QABOT_", "SLACK_", "DISCORD_"))}
    env.update(
        PYTHONPATH=str(ROOT),
        HOME=str(tmp_path),
        HF_HUB_OFFLINE="1",
        QABOT_INDEX_DIR=str(built_index_dir),
        QABOT_SECRET_KEY="a-test-secret-of-32-characters!!",
        SLACK_BOT_TOKEN="xoxb-not-a-real-token",
        SLACK_APP_TOKEN="xapp-not-a-real-token",
        DISCORD_TOKEN="not-a-real-discord-token",
    )

    def run(db: Path, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", *args],
            input="what is machine learning?\nquit\n",
            capture_output=True,
            text=True,
            timeout=120,
            cwd=workdir,
            env={**env, "QABOT_FEEDBACK_DB": str(db)},
            preexec_fn=_without_root_powers,
        )

    return run


@pytest.mark.parametrize("kind", list(BROKEN))
def test_each_front_end_names_the_broken_database_and_the_fix(tmp_path, run_qabot, kind):
    make, problem = BROKEN[kind]
    db = tmp_path / "data" / "qabot.sqlite3"
    db.parent.mkdir()
    make(db)
    before = db.read_bytes() if db.is_file() else None
    commands = [("chat",), ("feedback", "report"), ("run", "slack")]
    if kind == "random bytes":
        commands.append(("run", "discord"))
    for args in commands:
        result = run_qabot(db, *args)
        lines = result.stderr.strip().splitlines()
        shown = f"{' '.join(args)} ->\n{result.stderr}"
        assert result.returncode == 2, shown
        assert len(lines) == 1 and lines[0].startswith(f"qabot: the feedback database {db} "), shown
        assert problem in lines[0] and "Fix:" in lines[0], shown
        assert "Traceback" not in result.stderr + result.stdout
        assert "reachable" not in result.stderr and "network" not in result.stderr  # a local cause, said so
        assert result.stdout == ""  # the chat did not start and answered nothing
    if before is not None:
        assert db.read_bytes() == before  # nothing was "repaired" or overwritten


def test_an_unwritable_database_is_refused_even_when_its_schema_is_current(tmp_path, run_qabot):
    db = tmp_path / "qabot.sqlite3"
    _unwritable(db)
    mode = stat.S_IMODE(db.stat().st_mode)
    result = run_qabot(db, "chat")
    assert result.returncode == 2 and "chown" in result.stderr, result.stderr
    assert stat.S_IMODE(db.stat().st_mode) == mode


def test_run_calls_a_local_failure_local(monkeypatch, tmp_path):
    from bot.adapters.slack.app import SlackAdapter

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_settings_cache", None)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-x")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-x")

    def disk_full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(SlackAdapter, "run", disk_full)
    result = CliRunner().invoke(cli.app, ["run", "slack"])
    assert result.exit_code == cli.EXIT_FAILED
    assert "problem on this machine" in result.output and "No space left on device" in result.output
    assert "reachable" not in result.output and "Traceback" not in result.output


def test_the_cli_creates_the_data_folder_and_database_for_the_service_user_only(tmp_path, run_qabot):
    db = tmp_path / "fresh" / "qabot.sqlite3"
    result = run_qabot(db, "chat")
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in db.parent.iterdir()} == {
        p.name: 0o600 for p in db.parent.iterdir()
    }
