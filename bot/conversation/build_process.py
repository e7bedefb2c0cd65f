"""Index rebuilds in a child process, so the bot never imports torch or the embedding model.

The running bot answers with onnxruntime alone (~220 MiB); a build loads torch and
sentence-transformers (~850 MiB at its peak). `ChildProcessBuilder` runs

    python -m bot.conversation.build_process KNOWLEDGE_DIR INDEX_DIR [--force]

and reads one JSON object from the child's stdout. The child takes the same cross-process build
lock as `qabot index build`; whatever it does, the bot's memory stays the bot's. A child that crashes,
is killed (the kernel's out-of-memory killer picks it first: it raises its own oom_score_adj) or runs
past the time limit becomes a BuildError with a sentence a person can act on, and the bot keeps
serving the version it had.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.core.errors import BuildError, BuildInProgressError

log = logging.getLogger(__name__)

MODULE = "bot.conversation.build_process"
DEFAULT_TIMEOUT_S = 3600.0
_STDERR_TAIL = 4000


@dataclass(frozen=True)
class ChildBuildResult:
    """What the child reports; shaped like index_builder.build.BuildResult (without the heavy imports)."""

    version_id: str
    passage_count: int
    documents: int
    took_s: float
    skipped: bool
    version_dir: Path
    warnings: tuple[str, ...] = field(default_factory=tuple)


class ChildProcessBuilder:
    """A `builder` for RebuildCoordinator: `builder(knowledge_dir, index_dir, force=...)` in a child process."""

    def __init__(self, *, python: str = sys.executable, timeout_s: float = DEFAULT_TIMEOUT_S):
        self.python = python
        self.timeout_s = timeout_s
        self.pid: int | None = None  # the running child's pid, while one runs (shown by /qabot status)

    def command(self, knowledge_dir: Path, index_dir: Path, *, force: bool) -> list[str]:
        cmd = [self.python, "-m", MODULE, str(knowledge_dir), str(index_dir)]
        return [*cmd, "--force"] if force else cmd

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        # the child must import this very checkout of qabot, wherever the bot was started from
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("TRANSFORMERS_OFFLINE", "1")
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        return env

    def __call__(self, knowledge_dir: Path, index_dir: Path, *, force: bool = False) -> ChildBuildResult:
        started = time.monotonic()
        proc = subprocess.Popen(
            self.command(Path(knowledge_dir).resolve(), Path(index_dir).resolve(), force=force),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._child_env(),
        )
        self.pid = proc.pid
        try:
            out, err = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise BuildError(f"the index build took longer than {self.timeout_s:.0f} s and was stopped") from None
        finally:
            self.pid = None
        took = time.monotonic() - started
        stderr_tail = err.decode("utf-8", "replace")[-_STDERR_TAIL:].strip()
        report = _last_json_line(out)
        if proc.returncode < 0:
            name = _signal_name(-proc.returncode)
            why = " (out of memory?)" if -proc.returncode == signal.SIGKILL else ""
            log.warning("the index builder (pid %s) was killed by %s after %.1f s", proc.pid, name, took)
            raise BuildError(f"the index builder process was killed by {name}{why} after {took:.1f} s")
        if report is None:
            if stderr_tail:
                log.warning(
                    "the index builder exited with code %s; its output ends with:\n%s", proc.returncode, stderr_tail
                )
            last = stderr_tail.splitlines()[-1] if stderr_tail else "no output"
            raise BuildError(f"the index builder process exited with code {proc.returncode} ({last[:200]})")
        if not report.get("ok"):
            message = str(report.get("error") or "the index build failed")
            if report.get("busy"):
                raise BuildInProgressError(message)
            raise BuildError(message)
        result = report["result"]
        return ChildBuildResult(
            version_id=str(result["version_id"]),
            passage_count=int(result["passage_count"]),
            documents=int(result["documents"]),
            took_s=float(result["took_s"]),
            skipped=bool(result["skipped"]),
            version_dir=Path(result["version_dir"]),
            warnings=tuple(str(w) for w in result.get("warnings") or ()),
        )


def _last_json_line(out: bytes) -> dict[str, Any] | None:
    for line in reversed(out.decode("utf-8", "replace").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                return None
            return data if isinstance(data, dict) else None
    return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# ---------------------------------------------------------------- the child


def _volunteer_for_oom_killer() -> None:
    """If memory runs out, the kernel should kill this builder, not the bot that started it."""
    try:
        with open("/proc/self/oom_score_adj", "w") as fh:
            fh.write("1000")
    except OSError:
        pass  # not Linux, or not allowed: the parent still survives a kill of the child


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    force = "--force" in args
    paths = [a for a in args if a != "--force"]
    # stdout carries exactly one JSON object; anything a library prints goes to stderr
    report_fd = os.dup(1)
    os.dup2(2, 1)
    logging.basicConfig(level=logging.WARNING, format="qabot builder: %(levelname)s %(name)s: %(message)s")
    _volunteer_for_oom_killer()

    def report(data: dict[str, Any]) -> None:
        os.write(report_fd, (json.dumps(data, ensure_ascii=True) + "\n").encode())

    if len(paths) != 2:
        report({"ok": False, "error": f"usage: python -m {MODULE} KNOWLEDGE_DIR INDEX_DIR [--force]"})
        return 2
    from bot.core.errors import QabotError
    from index_builder.build import build_index

    try:
        result = build_index(Path(paths[0]), Path(paths[1]), force=force)
    except BuildInProgressError as err:
        report({"ok": False, "busy": True, "error": str(err)})
        return 1
    except QabotError as err:
        report({"ok": False, "error": str(err)})
        return 1
    except MemoryError:
        report({"ok": False, "error": "the index build ran out of memory"})
        return 1
    report(
        {
            "ok": True,
            "result": {
                "version_id": result.version_id,
                "passage_count": result.passage_count,
                "documents": result.documents,
                "took_s": result.took_s,
                "skipped": result.skipped,
                "version_dir": str(result.version_dir),
                "warnings": [str(w) for w in getattr(result, "warnings", ()) or ()],
            },
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
