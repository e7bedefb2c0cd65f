"""Run the real `qabot` command in a subprocess, in a scratch folder, with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def qabot(tmp_path) -> Callable[..., subprocess.CompletedProcess]:
    """qabot(*args, input=None) -> CompletedProcess (text, or bytes when `input` is bytes).

    Runs `python -m bot.cli` from an empty folder (no .env, no ./index) with the QABOT_* variables
    removed, so only the arguments decide which index and knowledge are used.
    """
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QABOT_", "SLACK_", "DISCORD_"))}
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONPATH=str(ROOT),
        QABOT_FEEDBACK_DB=str(tmp_path / "feedback.sqlite3"),
        HOME=str(tmp_path),  # the chat history file goes here, not into the real home
    )

    def run(
        *args: str, input: str | bytes | None = None, timeout: float = 120, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", *map(str, args)],
            input=input,
            capture_output=True,
            text=not isinstance(input, bytes),
            timeout=timeout,
            cwd=workdir,
            env={**env, **(extra_env or {})},
        )

    return run
