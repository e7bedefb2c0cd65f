from __future__ import annotations

import io
import os
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
