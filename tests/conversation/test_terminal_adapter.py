from __future__ import annotations

import io
import os
import threading

from bot.adapters.terminal import PROMPT, RATE_HINT, TerminalChat, run_chat


def test_piped_lines_answered_in_order(make_service, fake_engine):
    stdin = io.StringIO("what is machine learning?\n\n   \nbest pizza in Naples?\n")
    stdout = io.StringIO()
    assert run_chat(make_service(), stdin=stdin, stdout=stdout, interactive=False) == 0
    out = stdout.getvalue()
    assert fake_engine.asked == ["what is machine learning?", "best pizza in Naples?"]  # empty lines skipped
    assert out.index("algorithms that enable computers") < out.index("doesn't cover that")
    assert PROMPT not in out and RATE_HINT not in out  # no prompt or hints when piped


def test_real_os_pipe_with_invalid_utf8(make_service, fake_engine):
    read_fd, write_fd = os.pipe()
    payload = b"caf\xe9 machine learning?\n\xff\xfe\nquit\nnever asked\n"
    writer = threading.Thread(target=lambda: (os.write(write_fd, payload), os.close(write_fd)))
    writer.start()
    with open(read_fd, encoding="utf-8") as stdin:  # strict decoding: the adapter must cope anyway
        stdout = io.StringIO()
        assert run_chat(make_service(), stdin=stdin, stdout=stdout, interactive=False) == 0
    writer.join()
    assert fake_engine.asked == ["caf\ufffd machine learning?", "\ufffd\ufffd"]  # stops at quit


def test_interactive_prompt_help_commands_and_eof(make_service, fake_engine, tmp_path):
    stdin = io.StringIO("help\nwhat is machine learning?\n/up\n/down\n/status\n/bogus\n")
    stdout = io.StringIO()
    history = tmp_path / "hist"
    assert run_chat(make_service(), stdin=stdin, stdout=stdout, interactive=True, history_path=history) == 0
    out = stdout.getvalue()
    assert out.count(PROMPT) == 7  # one per line plus the one answered by EOF
    assert "/reindex" in out  # help text
    assert RATE_HINT in out
    assert "Thanks for the feedback" in out and "updated your vote" in out
    assert "Index version: v1" in out  # the local user is an admin
    assert "Unknown command /bogus" in out
    assert out.endswith("\n")


def test_quit_and_exit(make_service, fake_engine):
    for word in ("quit", "EXIT"):
        stdout = io.StringIO()
        run_chat(make_service(), stdin=io.StringIO(f"{word}\nmachine learning\n"), stdout=stdout, interactive=True)
    assert fake_engine.asked == []


def test_ctrl_c_ends_cleanly(make_service):
    class InterruptingStdin(io.StringIO):
        def readline(self, *args):
            raise KeyboardInterrupt

    stdout = io.StringIO()
    assert run_chat(make_service(), stdin=InterruptingStdin(), stdout=stdout, interactive=True) == 0
    assert stdout.getvalue().endswith("\n")


def test_non_admin_session_is_refused(make_service):
    stdout = io.StringIO()
    chat = TerminalChat(make_service(), stdout=stdout, is_admin=False)
    chat.handle_line("/reindex")
    assert "only admins" in stdout.getvalue()


def test_vote_before_any_answer(make_service):
    stdout = io.StringIO()
    TerminalChat(make_service(), stdout=stdout).handle_line("/up")
    assert "Nothing to rate yet" in stdout.getvalue()


def test_errors_are_printed_not_raised(make_service, fake_engine):
    from bot.core.errors import IndexMissingError

    fake_engine.broken = IndexMissingError("No index found in ./index.", "Run `qabot index build`.")
    stdout = io.StringIO()
    run_chat(make_service(), stdin=io.StringIO("machine learning?\n"), stdout=stdout, interactive=False)
    assert "Run `qabot index build`" in stdout.getvalue()
