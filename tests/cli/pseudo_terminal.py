"""Run the real `qabot` command with its stdout (or stderr) on a pseudo-terminal, as a person sees it."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ESC = "\x1b["


def run_on_a_terminal(
    *args: str,
    cwd: Path,
    env: dict[str, str],
    stream: str = "stdout",
    timeout: float = 180,
    extra_env: dict[str, str] | None = None,
) -> tuple[int, str, str]:
    """(exit code, what the terminal showed, what went to the other stream, piped)."""
    master, slave = pty.openpty()
    os.set_blocking(master, True)
    env = {k: v for k, v in env.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")}
    env.update(TERM="xterm-256color", COLUMNS="100", LINES="40", PYTHONPATH=str(ROOT))
    env.update(extra_env or {})
    other = subprocess.PIPE
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave if stream == "stdout" else other,
        stderr=slave if stream == "stderr" else other,
        cwd=cwd,
        env=env,
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    piped = (proc.stderr if stream == "stdout" else proc.stdout).read()  # type: ignore[union-attr]
    code = proc.wait(timeout=timeout)
    os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace"), piped.decode("utf-8", "replace")
