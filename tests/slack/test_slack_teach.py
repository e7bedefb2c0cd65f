""" "Teach qabot" on Slack, through the real Bolt app over HTTP: the message shortcut (a `message_action`
interactivity request as Slack sends it), the candidates as an ephemeral message through its response_url,
the clicks on them (block_actions from an ephemeral message), and `/qabot taught` / `/qabot report --since`.
The fake refuses what Slack refuses (a block_id twice, an action_id twice in one block, empty texts)."""

from __future__ import annotations

from typing import Any

from bot.conversation.models import Action
from tests.slack.conftest import ADMIN
from tests.slack.harness import SlackHttpHarness, block_texts

QUESTION = "wat even is ML?? like in plain terms"


def _to(fake_slack, response_url: str) -> list[Any]:
    return [c for c in fake_slack.calls_to("response_url") if response_url.endswith(c.path)]


def _teach_buttons(payload: dict[str, Any]) -> dict[str, str]:
    """button text -> value of the teach buttons (candidates' accessories and "Not covered")."""
    out = {}
    for block in payload.get("blocks") or []:
        els = [block["accessory"]] if "accessory" in block else block.get("elements", [])
        for el in els:
            if el.get("type") == "button" and el["action_id"] in (Action.TEACH_PICK, Action.TEACH_NOT_COVERED):
                out[el["text"]["text"]] = (el["action_id"], el["value"])
    return out


async def _offer(harness: SlackHttpHarness, fake_slack, *, user: str = ADMIN, text: str = QUESTION):
    sent, url = await harness.shortcut(Action.TEACH.value, text, user=user, channel="C5")
    assert sent.status == 200
    (call,) = _to(fake_slack, url)
    assert call.error is None, call.error
    return call.args


async def test_an_admin_teaches_a_passage_from_the_message_shortcut(slack_http, slack_service, fake_slack):
    offer = await _offer(slack_http, fake_slack)
    assert offer["response_type"] == "ephemeral" and offer.get("replace_original") is False
    buttons = _teach_buttons(offer)
    picks = [label for label, (action, _) in buttons.items() if action == Action.TEACH_PICK]
    assert picks == [f"Pick {n}" for n in range(1, 6)]  # the engine's top 5, each with its own button
    assert [label for label, (a, _) in buttons.items() if a == Action.TEACH_NOT_COVERED] == ["Not covered"]
    texts = "\n".join(block_texts(offer))
    assert "What is Machine Learning?" in texts  # a candidate's section
    assert "wat even is ML" in texts  # the question
    # the passages are shortened
    shown = [
        b["text"]["text"] for b in offer["blocks"] if b.get("block_id", "").startswith("qabot_teach_") and "text" in b
    ]
    assert len(shown) == 5 and all(len(t) < 700 for t in shown)

    action, value = buttons["Pick 3"]
    sent, url = await slack_http.click(action, value, user=ADMIN, channel="C5", ephemeral=True)
    assert sent.status == 200
    (done,) = _to(fake_slack, url)
    assert done.error is None and done.args["replace_original"] is True
    assert "Taught (#" in done.args["text"] and "undo" in done.args["text"]

    (pair,) = slack_service.feedback.taught_pairs()
    assert pair.question == QUESTION and not pair.not_covered
    candidate_3 = next(b for b in offer["blocks"] if b.get("block_id") == "qabot_teach_3")["text"]["text"]
    assert pair.section and pair.section.split(" > ")[-1] in candidate_3
    by_id = {p["id"]: p["text"] for p in slack_service.engine.passages}
    assert pair.passage_text == by_id[pair.passage_id]  # the whole passage is stored, verbatim
    assert pair.platform == "slack" and ADMIN not in pair.user_hash and len(pair.user_hash) == 64

    # the same choice again: the offer is used up
    _, again = await slack_http.click(action, value, user=ADMIN, channel="C5", ephemeral=True)
    assert "expired or was already made" in _to(fake_slack, again)[0].args["text"]
    assert len(slack_service.feedback.taught_pairs()) == 1


async def test_not_covered_and_the_taught_command(slack_http, slack_service, fake_slack):
    offer = await _offer(slack_http, fake_slack, text="what's the weather in Paris tomorrow?")
    action, value = _teach_buttons(offer)["Not covered"]
    _, url = await slack_http.click(action, value, user=ADMIN, channel="C5", ephemeral=True)
    assert "Marked as not covered (#" in _to(fake_slack, url)[0].args["text"]
    (pair,) = slack_service.feedback.taught_pairs()
    assert pair.not_covered and pair.passage_text == ""

    _, listed = await slack_http.command("/qabot", "taught", user=ADMIN, channel="C5")
    text = "\n".join(c.args.get("text", "") for c in _to(fake_slack, listed))
    assert f"#{pair.pair_id}" in text and "weather in Paris" in text and "not covered" in text

    _, undone = await slack_http.command("/qabot", f"taught undo {pair.pair_id}", user=ADMIN, channel="C5")
    assert "Undone" in _to(fake_slack, undone)[0].args["text"]
    assert slack_service.feedback.taught_pairs() == []
    _, missing = await slack_http.command("/qabot", f"taught undo {pair.pair_id}", user=ADMIN, channel="C5")
    assert "no taught pair" in _to(fake_slack, missing)[0].args["text"]


async def test_only_admins_teach(slack_http, slack_service, fake_slack):
    fake_slack.users["U7"] = {"id": "U7", "is_admin": False}
    offer = await _offer(slack_http, fake_slack, user="U7")
    assert "only admins can teach" in offer["text"] and not _teach_buttons(offer)

    # an admin's offer clicked by someone else (e.g. a forwarded ephemeral): refused, nothing stored
    admin_offer = await _offer(slack_http, fake_slack)
    action, value = _teach_buttons(admin_offer)["Pick 1"]
    _, url = await slack_http.click(action, value, user="U7", channel="C5", ephemeral=True)
    assert "only admins can teach" in _to(fake_slack, url)[0].args["text"]
    assert slack_service.feedback.taught_pairs() == []

    _, listed = await slack_http.command("/qabot", "taught", user="U7", channel="C5")
    assert "only admins" in _to(fake_slack, listed)[0].args["text"]


async def test_report_since_in_chat(slack_http, fake_slack):
    _, url = await slack_http.command("/qabot", "report --since 7d", user=ADMIN, channel="C5")
    (call,) = _to(fake_slack, url)
    assert call.error is None and " since " in "\n".join([call.args.get("text", ""), *block_texts(call.args)])
    _, bad = await slack_http.command("/qabot", "report --since yesterday-ish", user=ADMIN, channel="C5")
    assert "--since must be a duration" in _to(fake_slack, bad)[0].args["text"]


def test_the_fake_refuses_repeated_block_and_action_ids_as_slack_does():
    from tests.slack.fake_slack import check_message

    button = {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "Pick"}, "value": "v"}
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "passage"}}
    assert (
        check_message({"text": "t", "blocks": [{**section, "block_id": "b1"}, {**section, "block_id": "b2"}]}) is None
    )
    assert check_message({"text": "t", "blocks": [{**section, "block_id": "b"}, {**section, "block_id": "b"}]}) == (
        "invalid_blocks"
    )
    assert check_message({"text": "t", "blocks": [{"type": "actions", "elements": [button, button]}]}) == (
        "invalid_blocks"
    )
    # the same action_id in two blocks is fine (each teach candidate's accessory)
    blocks = [{**section, "block_id": f"b{n}", "accessory": button} for n in range(2)]
    assert check_message({"text": "t", "blocks": blocks}) is None
    long_label = {**button, "text": {"type": "plain_text", "text": "x" * 76}}
    assert check_message({"text": "t", "blocks": [{**section, "accessory": long_label}]}) == "invalid_blocks"
