"""The terminal adapter: `qabot chat` (or `qabot run terminal`) is one more front end over the service.

Interactive: a `you> ` prompt with readline editing and history (QABOT_TERMINAL_HISTORY_FILE,
default ~/.qabot_history). Piped: every non-empty line is one question, answered in order; EOF ends.
The local user is an admin (QABOT_TERMINAL_ADMIN): /status, /reindex, /rollback, /report work here.
Buttons, which a terminal cannot show, become the /up and /down commands.
"""

from __future__ import annotations

import getpass
import io
import logging
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from bot.adapters.base import Adapter, AdapterSettings, ReplyLimits
from bot.conversation.models import ADMIN_COMMANDS, Button, FeedbackVote, IncomingMessage, Reply, ReplyKind
from bot.conversation.service import ConversationService
from bot.core.render import PLAIN_QUOTE_LIMIT

log = logging.getLogger(__name__)

PROMPT = "you> "
CHANNEL = "terminal"
RATE_HINT = "(rate this answer: /up or /down)"

HELP_TEXT = "\n".join(
    [
        "Ask a question about the knowledge, or type:",
        *(f"  /{name:<10} {what}" for name, what in ADMIN_COMMANDS.items()),
        "  /up, /down  rate the last answer",
        "  help        this text",
        "  quit        leave (Ctrl-D and Ctrl-C work too)",
    ]
)


def _local_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (e.g. a container with an arbitrary uid)
        return "local"


class TerminalSettings(AdapterSettings):
    """The terminal's settings (QABOT_TERMINAL_*); it needs no secret."""

    model_config = SettingsConfigDict(env_prefix="QABOT_TERMINAL_")

    # who is asking: votes are stored per user (hashed), and rate limits count per user
    user: str = Field(default_factory=_local_user)
    # the local user may run the admin commands (a shared, kiosk-like terminal can turn this off)
    admin: bool = True
    # readline history of an interactive session
    history_file: Path = Path("~/.qabot_history")


class TerminalAdapter(Adapter):
    """One terminal session: lines in, printed replies out."""

    name = "terminal"
    settings_class = TerminalSettings
    limits = ReplyLimits(message_chars=None, quote_chars=PLAIN_QUOTE_LIMIT)
    needs_index = True  # a terminal without an index has no one to tell: `qabot chat` stops with the fix
    settings: TerminalSettings

    def __init__(
        self,
        service: ConversationService,
        settings: TerminalSettings,
        *,
        stdin: IO[str] | None = None,
        stdout: IO[str] | None = None,
        interactive: bool | None = None,
    ):
        super().__init__(service, settings)
        # bytes that are not UTF-8 become U+FFFD instead of ending the session
        self.stdin = stdin or io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
        self.stdout = stdout or sys.stdout
        # a person at a prompt (hints and the rating hint shown) rather than a pipe
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self.last_answer_id: str | None = None
        # one session is one conversation: the next line is read with the questions before it
        self.session_id = uuid.uuid4().hex

    def _print(self, text: str) -> None:
        self.stdout.write(text.rstrip("\n") + "\n\n")
        self.stdout.flush()

    def _message(self, text: str) -> IncomingMessage:
        return self.incoming(
            text,
            user_id=self.settings.user,
            channel_id=CHANNEL,
            is_admin=self.settings.admin,
            thread_id=self.session_id,
        )

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
                answer_id, vote, platform=self.name, user_id=self.settings.user, channel_id=CHANNEL
            )
        )

    def button_text(self, buttons: Sequence[Button]) -> str:
        return RATE_HINT  # the only buttons are 👍/👎, which are /up and /down here

    def show(self, reply: Reply) -> None:
        if reply.kind is ReplyKind.ANSWER and reply.answer_id:
            self.last_answer_id = reply.answer_id
        for text in self.render_text(reply, extras=self.interactive):
            self._print(text)

    def run(self) -> None:
        """Chat until quit, end of input or Ctrl-C."""
        _run(self)


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


def _run(adapter: TerminalAdapter) -> None:
    """Chat until quit / EOF / Ctrl-C."""
    stdin, stdout, interactive = adapter.stdin, adapter.stdout, adapter.interactive
    # input() gives readline editing and history, but only reads the process's own terminal
    use_input = interactive and _same_stream(stdin, sys.stdin) and _same_stream(stdout, sys.stdout)
    readline = None
    history = adapter.settings.history_file.expanduser()
    if interactive:
        if use_input:
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
                if not adapter.handle_line(line):
                    break
        else:
            for line in _lines(stdin):
                if not adapter.handle_line(line):
                    break
    except KeyboardInterrupt:
        stdout.write("\n")
    finally:
        stdout.flush()
        if readline is not None:
            try:
                history.parent.mkdir(parents=True, exist_ok=True)
                readline.write_history_file(history)
            except OSError as err:
                log.debug("could not save history to %s: %s", history, err)
