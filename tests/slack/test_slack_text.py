"""The Slack adapter removes Slack's markup from a question before the core sees it (bot/adapters/slack/text.py)."""

from __future__ import annotations

import pytest

from bot.adapters.slack.text import clean_slack_text
from tests.slack.fake_slack import app_mention

QUESTION = "how big is the ai market supposed to get"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<@U012AB> what is ml?", "what is ml?"),
        ("<@U012AB|alice> what is ml?", "what is ml?"),
        ("<!here> what is ml?", "what is ml?"),
        ("<!subteam^S123|@ml-team> what is ml?", "what is ml?"),
        ("<#C123|general> what is ml?", "what is ml?"),
        ("see <https://example.com/a|this page> please", "see this page please"),
        ("see <https://example.com/a> please", "see https://example.com/a please"),
        ("mail <mailto:a@b.example|a@b.example>", "mail a@b.example"),
        ("is ml &amp; genai &lt;the same&gt;?", "is ml & genai <the same>?"),
        ("<@U1>\n  what\tis   ml?", "what is ml?"),
        ("&amp;lt; stays as typed", "&lt; stays as typed"),
    ],
)
def test_slack_markup_is_removed(raw, expected):
    assert clean_slack_text(raw) == expected


async def test_the_service_gets_and_stores_the_question_without_markup(slack_http, slack_service, fake_slack):
    event = app_mention(f"{QUESTION} &amp; <https://example.com/x|its growth>?")  # "<@UBOT> " in front
    assert event["text"].startswith("<@")
    await slack_http.event(event)
    [stored] = slack_service.feedback.answers()
    assert stored.question == f"{QUESTION} & its growth?"
