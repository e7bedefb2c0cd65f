"""Each quote links to its place in the source on Slack (issue 9, item 6): through the real Bolt app
and the loopback Web API, the posted blocks carry a `<url|Source>` link per quote, deep-linked, with
`&` escaped as mrkdwn wants and the message within Slack's limits."""

from __future__ import annotations

import html
import re

from tests.links_fixture import EXPECTED_LINKS, linked_answer
from tests.slack.fake_slack import BLOCK_TEXT_TOTAL_LIMIT, app_mention
from tests.slack.harness import block_texts
from tests.slack.spec_driver import within_limits

# Slack's link syntax: <url|label>; the url itself may hold no "|" or ">"
_LINK = re.compile(r"<([^|<>\s]+)\|([^<>]+)>")


async def test_every_quote_links_to_its_passage(slack_http, fake_slack, monkeypatch):
    monkeypatch.setattr(slack_http.service.engine, "answer", linked_answer)
    await slack_http.event(app_mention("what is a GAN used for?"))
    assert fake_slack.refused == []
    [post] = fake_slack.posts
    assert post.args.get("blocks") and within_limits(post.args)
    assert sum(len(t) for t in block_texts(post.args)) < BLOCK_TEXT_TOTAL_LIMIT
    links = [m for text in block_texts(post.args) for m in _LINK.findall(text)]
    assert [label for _, label in links] == ["Source"] * 3
    sent = [html.unescape(url) for url, _ in links]  # mrkdwn escapes & as &amp; (and only &, <, >)
    assert sent == list(EXPECTED_LINKS)
    assert all("&amp;" in url for url, _ in links[:1]), "the page's & is escaped in the mrkdwn"
    assert all(len(url) <= 2048 for url in sent)
