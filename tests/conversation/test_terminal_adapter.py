from __future__ import annotations

import io
import os
import re
import threading

import pytest

from bot.adapters.terminal import PROMPT, RATE_HINT, TerminalAdapter, TerminalSettings


@pytest.fixture
def terminal(tmp_path):
    """terminal(service, stdin=..., interactive=..., **settings) -> (adapter, stdout)."""

    def make(service, *, stdin=None, interactive=False, **settings):
        settings.setdefault("history_file", tmp_path / "history")
        stdout = io.StringIO()
        adapter = TerminalAdapter(
            service,
            TerminalSettings(_env_file=None, **settings),
            stdin=stdin or io.StringIO(),
            stdout=stdout,
            interactive=interactive,
        )
        return adapter, stdout

    return make


def run_chat(service, terminal, stdin, *, interactive=False, **settings):
    adapter, stdout = terminal(service, stdin=stdin, interactive=interactive, **settings)
    adapter.run()
    return stdout.getvalue()


def test_piped_lines_answered_in_order(make_service, fake_engine, terminal):
    stdin = io.StringIO("what is machine learning?\n\n   \nbest pizza in Naples?\n")
    out = run_chat(make_service(), terminal, stdin)
    assert fake_engine.asked == ["what is machine learning?", "best pizza in Naples?"]  # empty lines skipped
    assert out.index("algorithms that enable computers") < out.index("doesn't cover that")
    assert PROMPT not in out and RATE_HINT not in out  # no prompt or hints when piped


def test_real_os_pipe_with_invalid_utf8(make_service, fake_engine, terminal):
    read_fd, write_fd = os.pipe()
    payload = b"caf\xe9 machine learning?\n\xff\xfe\nquit\nnever asked\n"
    writer = threading.Thread(target=lambda: (os.write(write_fd, payload), os.close(write_fd)))
    writer.start()
    with open(read_fd, encoding="utf-8") as stdin:  # strict decoding: the adapter must cope anyway
        run_chat(make_service(), terminal, stdin)
    writer.join()
    assert fake_engine.asked == ["caf\ufffd machine learning?", "\ufffd\ufffd"]  # stops at quit


def test_interactive_prompt_help_commands_and_eof(make_service, fake_engine, terminal):
    stdin = io.StringIO("help\nwhat is machine learning?\n/up\n/down\n/status\n/bogus\n")
    out = run_chat(make_service(), terminal, stdin, interactive=True)
    assert out.count(PROMPT) == 7  # one per line plus the one answered by EOF
    assert "/reindex" in out  # help text
    assert RATE_HINT in out  # the 👍/👎 buttons, as text
    assert "Thanks for the feedback" in out and "updated your vote" in out
    assert "Index version: v1" in out  # the local user is an admin
    assert "Unknown command /bogus" in out
    assert out.endswith("\n")


def test_quit_and_exit(make_service, fake_engine, terminal):
    for word in ("quit", "EXIT"):
        run_chat(make_service(), terminal, io.StringIO(f"{word}\nmachine learning\n"), interactive=True)
    assert fake_engine.asked == []


def test_ctrl_c_ends_cleanly(make_service, terminal):
    class InterruptingStdin(io.StringIO):
        def readline(self, *args):
            raise KeyboardInterrupt

    assert run_chat(make_service(), terminal, InterruptingStdin(), interactive=True).endswith("\n")


def test_non_admin_session_is_refused(make_service, terminal):
    adapter, stdout = terminal(make_service(), admin=False)
    adapter.handle_line("/reindex")
    assert "only admins" in stdout.getvalue()


def test_vote_before_any_answer(make_service, terminal):
    adapter, stdout = terminal(make_service())
    adapter.handle_line("/up")
    assert "Nothing to rate yet" in stdout.getvalue()


def test_errors_are_printed_not_raised(make_service, fake_engine, terminal):
    from bot.core.errors import IndexMissingError

    fake_engine.broken = IndexMissingError("No index found in ./index.", "Run `qabot index build`.")
    assert "Run `qabot index build`" in run_chat(make_service(), terminal, io.StringIO("machine learning?\n"))


def test_the_session_is_who_the_settings_say(make_service, store, terminal, monkeypatch):
    monkeypatch.setenv("QABOT_TERMINAL_USER", "ada")
    monkeypatch.setenv("QABOT_TERMINAL_ADMIN", "false")
    settings = TerminalSettings(_env_file=None)
    assert (settings.user, settings.admin) == ("ada", False)
    adapter, _ = terminal(make_service(), user="ada")
    adapter.handle_line("what is machine learning?")
    (stored,) = store.answers()
    assert stored.platform == "terminal" and stored.user_hash == store.hash_user("terminal", "ada")


def test_watch_previews_a_watched_channel_in_this_session(make_service, fake_engine, terminal, store):
    stdin = io.StringIO(
        "/watch\n"
        "machine learning is neat\n"  # chatter
        "what is quantum generative AI?\n"  # only "mentioned only": silent
        "what is machine learning?\n"  # confident: answered
        "@qabot what is quantum generative AI?\n"  # typed at the bot: answered as always
        "/unwatch\n"
        "best pizza in Naples?\n"
    )
    out = run_chat(make_service(), terminal, stdin)
    assert "(qabot stays silent here: not a question)" in out
    assert "(qabot stays silent here: no confident answer)" in out
    assert "algorithms that enable computers" in out
    assert "only touches on this" in out  # the mention
    assert out.split("every line again.")[1].strip().startswith("The knowledge doesn't cover that.")  # answered
    # the preview lasts for this session only: nothing is stored
    assert store.watched_channels("terminal") == frozenset()
    fresh = run_chat(make_service(), terminal, io.StringIO("machine learning is neat\n"))
    assert "stays silent" not in fresh


def test_watch_in_the_terminal_is_for_admins(make_service, terminal):
    out = run_chat(make_service(), terminal, io.StringIO("/watch\nmachine learning is neat\n"), admin=False)
    assert "only admins" in out and "stays silent" not in out


# ---- issue 9 item 7: rich on a terminal, plain through a pipe ------------------------------------


class _TerminalStream(io.StringIO):
    """stdout as a terminal: rich decides by isatty(), as it does on a real one."""

    def isatty(self) -> bool:
        return True


TWO_SENTENCES = "Machine learning learns from data. Generative AI creates new content from it."
PAGE = "https://example.com/ml"


def _answer_with_a_best_sentence(question, context=()):
    from bot.core.types import Answer, AnswerKind, Confidence, Quote

    start = TWO_SENTENCES.index("Generative")
    quote = Quote(
        TWO_SENTENCES,
        "ML vs GenAI",
        "ml.md",
        "What is GenAI?",
        ("What is GenAI?",),
        3.0,
        "p1",
        source_url=PAGE,
        highlight=(start, len(TWO_SENTENCES)),
        link=PAGE + "#:~:text=Generative%20AI%20creates%20new%20content%20from%20it.",
    )
    return Answer(question, question, AnswerKind.ANSWER, Confidence.HIGH, (quote,), message="Here it is:")


@pytest.fixture
def color_terminal(monkeypatch):
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLUMNS", "100")


def test_on_a_terminal_the_best_sentence_is_bold_and_the_quote_links_to_its_passage(
    make_service, fake_engine, tmp_path, monkeypatch, color_terminal
):
    monkeypatch.setattr(fake_engine, "answer", _answer_with_a_best_sentence)
    stdout = _TerminalStream()
    adapter = TerminalAdapter(
        make_service(),
        TerminalSettings(_env_file=None, history_file=tmp_path / "h"),
        stdin=io.StringIO("what does generative ai do?\n"),
        stdout=stdout,
        interactive=True,
    )
    adapter.run()
    out = stdout.getvalue()
    assert "**" not in out
    assert "\x1b[1mGenerative AI creates new content from it.\x1b[0m" in out
    assert "\x1b[1;32m(confidence: high)\x1b[0m" in out  # high is green
    assert "\x1b]8;id=" in out and PAGE + "#:~:text=Generative" in out  # a terminal hyperlink (OSC 8)
    assert RATE_HINT in out


def test_through_a_pipe_the_same_answer_is_the_plain_text(make_service, fake_engine, terminal, monkeypatch):
    from bot.core.render import render_plain

    monkeypatch.setattr(fake_engine, "answer", _answer_with_a_best_sentence)
    out = run_chat(make_service(), terminal, io.StringIO("what does generative ai do?\n"))
    assert "\x1b" not in out
    assert out == render_plain(_answer_with_a_best_sentence("what does generative ai do?")) + "\n\n"
    assert "**Generative AI creates new content from it.**" in out
    assert "— ML vs GenAI › What is GenAI? · " + PAGE + "#:~:text=Generative" in out


def test_on_a_terminal_the_report_is_a_table(make_service, fake_engine, tmp_path, color_terminal):
    stdout = _TerminalStream()
    adapter = TerminalAdapter(
        make_service(),
        TerminalSettings(_env_file=None, history_file=tmp_path / "h"),
        stdin=io.StringIO("best pizza in Naples?\nbest pizza in naples\n/report\n"),
        stdout=stdout,
        interactive=False,
    )
    adapter.run()
    out = stdout.getvalue()
    assert "\x1b[" in out
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert re.search(r"#\s+question\s+asked\s+also asked as", plain)
    assert re.search(r"1\s+best pizza in Naples\?\s+2×", plain)
