"""The CLI on PostgreSQL (QABOT_DATABASE_URL): `qabot chat` stores its answers there, `qabot feedback report`
reads them, and a server that cannot be reached is one line naming it without its password, exit 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-never-printed"


def _run(tmp_path: Path, index_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    workdir = tmp_path / "cwd"
    workdir.mkdir(exist_ok=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("QABOT_", "SLACK_", "DISCORD_"))}
    base.update(
        PYTHONPATH=str(ROOT),
        HOME=str(tmp_path),
        HF_HUB_OFFLINE="1",
        QABOT_INDEX_DIR=str(index_dir),
        QABOT_SECRET_KEY="a-test-secret-of-32-characters!!",
        QABOT_FEEDBACK_DB=str(tmp_path / "not-used" / "qabot.sqlite3"),
        SLACK_BOT_TOKEN="xoxb-not-a-real-token",
        SLACK_APP_TOKEN="xapp-not-a-real-token",
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        input="what is machine learning?\nquit\n",
        capture_output=True,
        text=True,
        timeout=180,
        cwd=workdir,
        env=base,
    )


def test_chat_and_report_use_postgresql(tmp_path, built_index_dir, pg_server):
    url = pg_server.create_database()
    chat = _run(tmp_path, built_index_dir, {"QABOT_DATABASE_URL": url}, "chat")
    assert chat.returncode == 0, chat.stderr
    report = _run(tmp_path, built_index_dir, {"QABOT_DATABASE_URL": url}, "feedback", "report")
    assert report.returncode == 0, report.stderr
    assert "Answers given: 1" in report.stdout
    assert not (tmp_path / "not-used").exists()  # nothing went to the SQLite file

    from bot.storage import FeedbackStore

    with FeedbackStore(url) as store:
        (answer,) = store.answers()
        assert answer.question == "what is machine learning?" and answer.platform == "terminal"


@pytest.mark.parametrize("args", [("chat",), ("feedback", "report"), ("run", "slack")])
def test_an_unreachable_server_is_one_line_without_the_password(tmp_path, built_index_dir, args):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg://qabot:{PASSWORD}@127.0.0.1:{port}/qabot"
    result = _run(tmp_path, built_index_dir, {"QABOT_DATABASE_URL": url}, *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("qabot: the feedback database postgresql+psycopg://qabot:***@")
    assert "cannot be reached" in lines[0] and "Fix:" in lines[0]
    assert PASSWORD not in result.stderr + result.stdout and "Traceback" not in result.stderr
    assert result.stdout == ""
