"""The terminal as a first-class front end (issue 9, item 7), through the real `qabot` command.

On a terminal (a pseudo-terminal here, as a person sees it) answers are laid out and coloured, the
best sentence bold rather than wrapped in `**`, and `index info` / `feedback report` are tables.
Through a pipe the output is the plain text it always was: no escape codes.
"""

from __future__ import annotations

import os
import re

import pytest

from bot.conversation.feedback import FeedbackStore
from tests.cli.pseudo_terminal import ESC, ROOT, run_on_a_terminal

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\]8;[^\x1b]*\x1b\\")
BOLD = re.compile(r"\x1b\[(?:[0-9;]*;)?1(?:;[0-9;]*)?m")
QUESTION = "whats a GAN used for"


def _plain(shown: str) -> str:
    """What a person reads: escape codes out, whitespace (rich wraps at the terminal's width) folded."""
    return " ".join(ANSI.sub("", shown).split())


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    (tmp_path / "tty-cwd").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QABOT_", "SLACK_", "DISCORD_"))}
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONPATH=str(ROOT),
        HOME=str(tmp_path),
        QABOT_FEEDBACK_DB=str(tmp_path / "feedback.sqlite3"),
    )
    return env


def test_ask_on_a_terminal_is_laid_out_with_the_best_sentence_bold(env, tmp_path, qabot, built_index_dir):
    code, shown, _ = run_on_a_terminal(
        "ask", "--index", str(built_index_dir), QUESTION, cwd=tmp_path / "tty-cwd", env=env
    )
    assert code == 0
    assert ESC in shown and "**" not in shown
    assert BOLD.search(shown), "the best sentence is bold"
    piped = qabot("ask", "--index", built_index_dir, QUESTION)
    assert piped.returncode == 0 and ESC not in piped.stdout
    # the same words either way: the plain text with its ** marks and quote bars taken out
    plain_words = _plain(piped.stdout.replace("**", "").replace("\n> ", "\n").replace("\n>\n", "\n"))
    shown_words = _plain(shown.replace("▌", ""))
    assert shown_words.split("(")[0] == plain_words.split("(")[0]  # the lead sentence
    for quote_line in (line[2:] for line in piped.stdout.splitlines() if line.startswith("> ")):
        assert _plain(quote_line.replace("**", "")) in shown_words
    # confidence coloured: the label carries a colour code (bold red/yellow/green)
    assert re.search(r"\x1b\[1;3[123]m\(confidence: ", shown)


def test_index_info_on_a_terminal_is_tables_and_plain_through_a_pipe(env, tmp_path, qabot, built_index_dir):
    code, shown, _ = run_on_a_terminal(
        "index", "info", "--index", str(built_index_dir), cwd=tmp_path / "tty-cwd", env=env
    )
    assert code == 0 and ESC in shown
    text = ANSI.sub("", shown)
    assert re.search(r"id\s+model\s+dims\s+runtime\s+search\s+token vectors", text)
    assert re.search(r"path\s+title\s+passages\s+sha256\s+source", text)
    assert re.search(r"ml-vs-genai\.md\s+Machine Learning vs Generative AI", text)
    piped = qabot("index", "info", "--index", built_index_dir)
    assert piped.returncode == 0 and ESC not in piped.stdout
    assert piped.stdout.startswith("index version   ")


def _feedback(path) -> None:
    with FeedbackStore(path) as store:
        for n, (question, kind) in enumerate(
            [("best pizza in town?", "abstain"), ("best pizza in town", "abstain"), ("how do GANs work", "answer")]
        ):
            store.record_answer(
                answer_id=f"a{n}",
                question=question,
                normalized_question="",
                passage_ids=["p0001-abc"] if kind == "answer" else [],
                index_version="v1",
                kind=kind,
                platform="slack",
                channel_id="C1",
                user_id="U1",
            )
        store.record_vote("a2", -1, platform="slack", user_id="U2", channel_id="C1")


def test_feedback_report_on_a_terminal_is_tables_and_plain_through_a_pipe(env, tmp_path, qabot):
    _feedback(tmp_path / "feedback.sqlite3")
    code, shown, _ = run_on_a_terminal("feedback", "report", cwd=tmp_path / "tty-cwd", env=env)
    assert code == 0 and ESC in shown
    text = ANSI.sub("", shown)
    assert re.search(r"#\s+question\s+👍\s+👎\s+net\s+quoted\s+index", text)
    assert re.search(r"1\s+how do GANs work\s+0\s+1\s+-1\s+p0001-abc\s+v1", text)
    assert re.search(r"1\s+best pizza in town\??\s+2×", text)
    piped = qabot("feedback", "report")
    assert piped.returncode == 0 and ESC not in piped.stdout
    assert "(asked 2x)" in piped.stdout and "[👍 0 / 👎 1, net -1]" in piped.stdout


def test_a_dumb_terminal_gets_the_plain_text_and_no_color_keeps_bold_without_colours(
    env, tmp_path, qabot, built_index_dir
):
    args = ("ask", "--index", str(built_index_dir), QUESTION)
    code, shown, _ = run_on_a_terminal(*args, cwd=tmp_path / "tty-cwd", env=env, extra_env={"TERM": "dumb"})
    assert code == 0 and ESC not in shown and "**" in shown  # the plain text, as through a pipe
    code, shown, _ = run_on_a_terminal(*args, cwd=tmp_path / "tty-cwd", env=env, extra_env={"NO_COLOR": "1"})
    assert code == 0 and BOLD.search(shown) and "**" not in shown
    assert not re.search(r"\x1b\[[0-9;]*3[0-7]m", shown), "NO_COLOR: no colours, bold only"
