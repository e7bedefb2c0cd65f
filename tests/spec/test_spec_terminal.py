"""The shared conversation spec, run against the terminal adapter (bot/adapters/terminal.py) over the real index."""

from __future__ import annotations

import io

import pytest

from bot.adapters.terminal import RATE_HINT, TerminalAdapter, TerminalSettings
from bot.conversation.models import Action
from bot.conversation.service import ConversationService

from .scenarios import SCENARIOS, Outbound, make_spec_service, run_scenario, spec_settings


class TerminalDriver:
    """Plays a person at the terminal: each call types one line into a TerminalAdapter and decodes what it printed.

    The terminal has no threads, no pings and no size limits; everything printed is seen by that one
    person only (private). Buttons are rendered as the "/up or /down" hint.
    """

    platform = "terminal"
    supports_threads = False

    def __init__(self, service: ConversationService):
        self.service = service
        self._chats: dict[tuple[str, bool], TerminalAdapter] = {}

    def _chat(self, user: str, admin: bool = True) -> TerminalAdapter:
        """One terminal session per person: QABOT_TERMINAL_USER and QABOT_TERMINAL_ADMIN say who it is."""
        key = (user, admin)
        if key not in self._chats:
            settings = TerminalSettings(_env_file=None, user=user, admin=admin)
            self._chats[key] = TerminalAdapter(self.service, settings, stdout=io.StringIO(), interactive=True)
        return self._chats[key]

    def _type(self, chat: TerminalAdapter, line: str) -> list[Outbound]:
        chat.stdout = io.StringIO()
        before = chat.last_answer_id
        assert chat.handle_line(line), f"the chat ended on {line!r}"
        printed = chat.stdout.getvalue()
        if not printed.strip():
            return []
        rated = RATE_HINT in printed
        return [
            Outbound(
                text=printed.replace(RATE_HINT, "").strip(),
                private=True,
                thread_id=None,
                pings_nobody=True,
                within_limits=True,
                buttons=[Action.FEEDBACK_UP, Action.FEEDBACK_DOWN] if rated else [],
                raw={"printed": printed, "answer_id": chat.last_answer_id if rated else before},
            )
        ]

    async def ask(self, text, *, user="U1", channel="C1", thread=None, mention=True, dm=False):
        chat = self._chat(user)
        if mention and chat.watching:  # a watched session reads a line as unmentioned unless typed at the bot
            text = "@qabot " + text
        return self._type(chat, text)

    async def admin(self, command, *, user="U1", admin, channel="C1"):
        return self._type(self._chat(user, admin=admin), "/" + command)

    async def click_feedback(self, outbound, *, up, user="U1"):
        answer_id = outbound.raw["answer_id"]
        return self._type(self._chat(user), f"/{'up' if up else 'down'} {answer_id}")

    def feedback_count(self) -> int:
        return self.service.feedback.feedback_count()


@pytest.fixture
def terminal_driver(tmp_path, built_index_dir, engine_holder):
    service = make_spec_service(spec_settings(tmp_path, index_dir=built_index_dir), engine_holder)
    yield TerminalDriver(service)
    service.feedback.close()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
async def test_spec_terminal(terminal_driver, scenario):
    await run_scenario(terminal_driver, scenario)
