"""The terminal as one more front end over the conversation service.

Interactive: a `you> ` prompt with readline editing and history (~/.qabot_history).
Piped: every non-empty line is one question, answered in order; EOF ends.
The local user is an admin: /status, /reindex, /rollback, /report work here.
"""

from __future__ import annotations

import getpass
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from bot.conversation.models import ADMIN_COMMANDS, FeedbackVote, IncomingMessage, Reply, ReplyKind
from bot.conversation.service import ConversationService

log = logging.getLogger(__name__)

PROMPT = "you> "
HISTORY_PATH = Path("~/.qabot_history")
RATE_HINT = "(rate this answer: /up or /down)"

HELP_TEXT = """Ask a question about the knowledge, or type:
  /status     index version, documents, passages, model
  /reindex    rebuild the index from the knowledge folder
  /rollback   serve the previous index version again
  /report     worst-rated answers and questions I could not answer
  /up, /down  rate the last answer
  help        this text
  quit        leave (Ctrl-D and Ctrl-C work too)"""


def _local_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (e.g. a container with an arbitrary uid)
        return "local"


class TerminalChat:
    """One terminal session: turns lines into service calls and prints the replies."""

    def __init__(
        self,
        service: ConversationService,
        *,
        stdout: IO[str],
        user_id: str | None = None,
        is_admin: bool = True,
        show_hints: bool = True,
        channel_id: str = "terminal",
    ):
        self.service = service
        self.stdout = stdout
        self.user_id = user_id or _local_user()
        self.is_admin = is_admin
        self.show_hints = show_hints
        self.channel_id = channel_id
        self.last_reply: Reply | None = None  # the last reply printed (for /up and /down)
        self.last_answer_id: str | None = None

    def _message(self, text: str) -> IncomingMessage:
        return IncomingMessage(
            platform="terminal",
            user_id=self.user_id,
            channel_id=self.channel_id,
            text=text,
            is_admin=self.is_admin,
            addressed=True,
        )

    def _print(self, text: str) -> None:
        self.stdout.write(text.rstrip("\n") + "\n\n")
        self.stdout.flush()

    def handle_line(self, line: str) -> bool:
        """Handle one line; False means the user asked to leave."""
        text = line.strip()
        if not text:
            return True
        word = text.lower()
        if word in ("quit", "exit", "/quit", "/exit"):
            return False
        if word in ("help", "/help", "?"):
            self._print(HELP_TEXT)
            return True
        if text.startswith("/"):
            command, _, arg = text[1:].partition(" ")
            command = command.lower()
            if command in ADMIN_COMMANDS:
                self.show(self.service.handle_admin(self._message(text), command))
            elif command in ("up", "down"):
                self._vote(FeedbackVote.UP if command == "up" else FeedbackVote.DOWN, arg.strip())
            else:
                self._print(f"Unknown command /{command}. Type help for the list.")
            return True
        self.show(self.service.handle(self._message(text)))
        return True

    def _vote(self, vote: FeedbackVote, answer_id: str) -> None:
        answer_id = answer_id or self.last_answer_id or ""
        if not answer_id:
            self._print("Nothing to rate yet: ask a question first.")
            return
        self.show(
            self.service.record_feedback(
                answer_id, vote, platform="terminal", user_id=self.user_id, channel_id=self.channel_id
            )
        )

    def show(self, reply: Reply) -> None:
        if not reply.should_send:
            return
        self.last_reply = reply
        if reply.kind is ReplyKind.ANSWER and reply.answer_id:
            self.last_answer_id = reply.answer_id
        parts = [reply.text]
        if self.show_hints:
            parts.extend(reply.hints)
            if reply.buttons:
                parts.append(RATE_HINT)
        self._print("\n".join(p for p in parts if p))


def _lines(stdin: IO[str]) -> Iterator[str]:
    """Lines of a pipe; bytes that are not UTF-8 become U+FFFD instead of ending the session."""
    buffer = getattr(stdin, "buffer", None)
    if buffer is not None:
        for raw in buffer:
            yield raw.decode("utf-8", errors="replace")
        return
    while True:
        try:
            line = stdin.readline()
        except UnicodeDecodeError:
            log.warning("skipped input that is not valid UTF-8")
            continue
        if not line:
            return
        yield line


def _same_stream(a: IO[str], b: IO[str]) -> bool:
    if a is b:
        return True
    try:
        return a.fileno() == b.fileno()
    except (AttributeError, OSError, ValueError):  # StringIO and friends have no file descriptor
        return False


def _setup_history(path: Path) -> Any:
    try:
        import readline
    except ImportError:  # e.g. Windows without pyreadline
        return None
    try:
        readline.read_history_file(path)
    except (FileNotFoundError, OSError):
        pass
    readline.set_history_length(1000)
    return readline


def run_chat(
    service: ConversationService,
    *,
    stdin: IO[str],
    stdout: IO[str],
    interactive: bool,
    history_path: str | os.PathLike[str] | None = HISTORY_PATH,
    user_id: str | None = None,
    is_admin: bool = True,
) -> int:
    """Chat until quit / EOF / Ctrl-C. Returns the exit code (0)."""
    chat = TerminalChat(service, stdout=stdout, user_id=user_id, is_admin=is_admin, show_hints=interactive)
    # input() gives readline editing and history, but only reads the process's own terminal
    use_input = interactive and _same_stream(stdin, sys.stdin) and _same_stream(stdout, sys.stdout)
    readline = None
    history = Path(history_path).expanduser() if history_path else None
    if interactive:
        if use_input and history is not None:
            readline = _setup_history(history)
        stdout.write("Ask me about the knowledge. Type help for commands, quit to leave.\n")
        stdout.flush()
    try:
        if interactive:
            while True:
                try:
                    if use_input:
                        line = input(PROMPT)  # readline editing + history
                    else:
                        stdout.write(PROMPT)
                        stdout.flush()
                        line = stdin.readline()
                        if not line:
                            raise EOFError
                except EOFError:
                    stdout.write("\n")
                    break
                except UnicodeDecodeError:  # a terminal sending bytes that are not UTF-8
                    stdout.write("(that line was not valid UTF-8; please type it again)\n")
                    continue
                if not chat.handle_line(line):
                    break
        else:
            for line in _lines(stdin):
                if not chat.handle_line(line):
                    break
    except KeyboardInterrupt:
        stdout.write("\n")
    finally:
        stdout.flush()
        if readline is not None and history is not None:
            try:
                history.parent.mkdir(parents=True, exist_ok=True)
                readline.write_history_file(history)
            except OSError as err:
                log.debug("could not save history to %s: %s", history, err)
    return 0
