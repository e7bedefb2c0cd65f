"""A Slack message's text without Slack's markup: the question as the core should see it.

Slack hands a message's text over in its own format (api.slack.com, "Formatting text for app
surfaces"): people as <@U123> or <@U123|name>, channels as <#C123|general>, special mentions as
<!here>, <!channel>, <!everyone> or <!subteam^S123|@team>, links as <https://…|label> or <https://…>,
and the three characters &, < and > escaped as &amp;, &lt; and &gt;. Since &, < and > in what a
person typed always arrive escaped, every < starts markup.
"""

from __future__ import annotations

import re

_LINK = re.compile(r"<((?:https?|mailto):[^|>]*)(?:\|([^>]*))?>")
_MENTION = re.compile(r"<[@#!][^>]*>")  # <@U1>, <@U1|ada>, <#C1|general>, <!here>, <!subteam^S1|@team>


def clean_slack_text(text: str) -> str:
    """Links as their label (or address), mentions removed, entities decoded, whitespace collapsed."""
    text = _LINK.sub(lambda m: m.group(2) or m.group(1).removeprefix("mailto:"), text)
    text = _MENTION.sub(" ", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(text.split())


_PERSON_OR_GROUP = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>|<!subteam\^[^>]*>")


def mentions_someone(text: str, bot_user_id: str | None) -> bool:
    """The raw message mentions a person or a user group other than the bot (<@U1>, <!subteam^S1>);
    @here, @channel and @everyone address everyone, the bot included."""
    return any(m.group(1) != bot_user_id for m in _PERSON_OR_GROUP.finditer(text))
