"""The bot's memory before and after a `/reindex` from chat, with the rebuild in a child process (default)
or, for comparison, in the bot's own process (how qabot rebuilt before).

    .venv/bin/python -m benchmarks.reindex_rss [--in-process] [--questions 50] [--index DIR --knowledge DIR]

This process plays the bot: it builds the conversation service the way `qabot run` does (build_service),
answers questions, sends `reindex` as an admin through ConversationService.handle_admin, answers again,
and prints one JSON object: RSS before and after (MiB, from /proc/self/status, after gc), the peak
(VmHWM), whether torch was imported into this process, and the rebuild's outcome. A small extra
document is added to the knowledge first, so the rebuild really builds a new version.

Without --index/--knowledge it works on scratch copies: the knowledge folder is copied and its index is
built by `qabot index build` in a child process (so torch never loads here before the measurement).
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS_FILE = Path(__file__).resolve().parent / "questions.txt"
EXTRA_DOCUMENT = """---
title: Reindex probe
---

# Reindex probe

A reindex probe paragraph that only exists to make the knowledge change, so the rebuild writes a new version.
"""


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _rss_mib() -> float:
    gc.collect()
    return round(_status_kib("VmRSS") / 1024, 1)


def measure(index_dir: Path, knowledge_dir: Path, *, in_process: bool, questions: int) -> dict[str, Any]:
    from bot.config import Settings
    from bot.conversation.factory import build_service
    from bot.conversation.models import IncomingMessage
    from bot.conversation.rebuild import RebuildCoordinator

    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(
            index_dir=index_dir,
            knowledge_dir=knowledge_dir,
            feedback_db=Path(scratch) / "feedback.sqlite3",
            user_rate_limit=100_000,
            channel_rate_limit=100_000,
        )
        service = build_service(settings)
        if in_process:

            def build_here(k: Path, i: Path, *, force: bool = False) -> Any:
                from index_builder.build import build_index

                return build_index(k, i, force=force)

            service.rebuilder = RebuildCoordinator(service.engine, knowledge_dir, index_dir, builder=build_here)
        lines = [q for q in QUESTIONS_FILE.read_text(encoding="utf-8").splitlines() if q.strip()]

        def ask_all() -> None:
            for n in range(questions):
                service.handle(
                    IncomingMessage(platform="slack", user_id="U1", channel_id="C1", text=lines[n % len(lines)])
                )

        ask_all()
        version_before = service.engine.version
        before = _rss_mib()
        (knowledge_dir / "reindex-probe.md").write_text(EXTRA_DOCUMENT, encoding="utf-8")
        admin = IncomingMessage(platform="slack", user_id="UADMIN", channel_id="C1", text="reindex", is_admin=True)
        reply = service.handle_admin(admin, "reindex")
        ask_all()
        after = _rss_mib()
        result = {
            "builder": "in-process" if in_process else "child process",
            "rss_before_mib": before,
            "rss_after_mib": after,
            "rss_change_pct": round(100 * (after - before) / before, 1),
            "peak_rss_mib": round(_status_kib("VmHWM") / 1024, 1),
            "torch_imported": "torch" in sys.modules,
            "sentence_transformers_imported": "sentence_transformers" in sys.modules,
            "status": reply.extra.get("status", reply.kind.value),
            "version_before": version_before,
            "version_after": service.engine.version,
            "reply": reply.text,
        }
        service.feedback.close()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--in-process", action="store_true", help="rebuild inside this process (the old way)")
    parser.add_argument("--questions", type=int, default=50, help="questions answered before and after")
    parser.add_argument("--index", type=Path, help="an index folder this run may rebuild (default: a scratch one)")
    parser.add_argument("--knowledge", type=Path, help="a knowledge folder this run may add a file to")
    args = parser.parse_args()
    if (args.index is None) != (args.knowledge is None):
        parser.error("give both --index and --knowledge, or neither")
    if args.index is not None:
        result = measure(args.index, args.knowledge, in_process=args.in_process, questions=args.questions)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            knowledge, index = Path(scratch) / "knowledge", Path(scratch) / "index"
            shutil.copytree(ROOT / "knowledge", knowledge)
            subprocess.run(
                [sys.executable, "-m", "bot.cli", "index", "build", "-q", "--knowledge", knowledge, "--index", index],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            result = measure(index, knowledge, in_process=args.in_process, questions=args.questions)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
