"""Real `qabot run slack` replicas on one PostgreSQL database (QABOT_DATABASE_URL) and one Redis: any replica
takes any event or button. A slash command answered by one replica is shared in the channel by another
(the answer is read back from the database by its id), votes on it reach either replica and count once
per person, and an event with its retries spread over both is answered once."""

from __future__ import annotations

import asyncio

from bot.conversation.models import Action
from bot.storage import FeedbackStore
from tests.replicas.harness import answers_to, command_body, wait_until
from tests.slack.fake_slack import app_mention
from tests.slack.harness import buttons_of

QUESTION = "how big is the ai market supposed to get"
GOLD = "740 billion by 2030"


async def test_any_replica_takes_any_event_or_button_on_one_postgresql_database(
    fake_slack, make_replicas, redis_url, postgres_url
):
    a, b = await make_replicas(redis_url, database=postgres_url).start(2)

    body, url = command_body(QUESTION, user="U1", channel="C7", command="/ask", fake=fake_slack)
    assert (await a.command(body)).status == 200
    rid = url.rsplit("/", 1)[1]
    await wait_until(lambda: fake_slack.calls_to("response_url"), 60, "the private answer to /ask")
    private = next(c for c in fake_slack.calls_to("response_url") if c.path.endswith(rid))
    answer_id = buttons_of(private.args)[Action.SHARE]

    # "Share in channel" clicked, and delivered by the balancer to the other replica
    sent, _ = await b.click(fake_slack, Action.SHARE.value, answer_id, user="U1", channel="C7", ephemeral=True)
    assert sent.status == 200
    await wait_until(lambda: fake_slack.calls_to("chat.postMessage"), 60, "the shared answer")
    (shared,) = fake_slack.calls_to("chat.postMessage")
    assert shared.args["channel"] == "C7"
    assert GOLD in str(shared.args["blocks"])
    assert buttons_of(shared.args)["qabot_feedback_up"] == answer_id

    # one person votes 👍 through one replica, then changes to 👎 through the other: one vote, the last
    for replica, action in ((a, "qabot_feedback_up"), (b, "qabot_feedback_down")):
        sent, _ = await replica.click(fake_slack, action, answer_id, user="U5", channel="C7")
        assert sent.status == 200
        await asyncio.sleep(0.5)

    def votes() -> list[dict]:
        with FeedbackStore(postgres_url) as store:
            return store.votes()

    await wait_until(lambda: any(v["vote"] == -1 for v in votes()), 30, "the changed vote")
    assert [(v["answer_id"], v["vote"]) for v in votes()] == [(answer_id, -1)]

    # an event and Slack's retry of it, one on each replica: answered once
    event = app_mention(QUESTION, user="U8", channel="C8")
    sent = await asyncio.gather(a.event(event, event_id="EvPg1"), b.event(event, event_id="EvPg1", retry_num=1))
    assert [d.status for d in sent] == [200, 200]
    await wait_until(lambda: answers_to(fake_slack, event["ts"]), 60, "the mention answered")
    await asyncio.sleep(1.5)
    assert len(answers_to(fake_slack, event["ts"])) == 1
