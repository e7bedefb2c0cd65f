"""Slack's refusals and hostile requests: 429s, refused blocks, lost connections, malformed or replayed
HTTP requests, slow clients. The fake says no the way Slack does; nothing may be lost or crash."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import logging
import time
from collections import Counter

import pytest

from bot.adapters.slack.app import DEFAULT_HTTP_HOST, EVENTS_PATH, SlackHttpServer
from bot.conversation.feedback import FeedbackStore
from bot.conversation.service import ConversationService
from bot.core.types import Answer, AnswerKind, Confidence, Quote
from tests.slack.fake_slack import BLOCK_TEXT_TOTAL_LIMIT, app_mention, event_callback, sign, slash_command
from tests.slack.harness import SlackHttpHarness, block_texts

QUESTION = "how big is the ai market supposed to get"
GOLD = "740 billion by 2030"
MARKER = "QABOT-SECRET-BODY-MARKER"


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]
    assert "Traceback" not in caplog.text


# ---- 429s and lost connections ----------------------------------------------------------------


async def test_a_429_delays_the_answer_instead_of_losing_it(slack_http, fake_slack):
    """Before: no rate-limit retry handler; one 429 and zero answers delivered."""
    fake_slack.ratelimit_next["chat.postMessage"] = 1
    event = app_mention(QUESTION)
    await slack_http.event(event)
    [refused] = fake_slack.refused
    assert refused.error == "ratelimited"
    [post] = fake_slack.posts
    assert post.args["thread_ts"] == event["ts"] and GOLD in "\n".join(block_texts(post.args))
    assert post.at - refused.at >= 1.0, "the retry waited for Retry-After"
    assert slack_http.adapter.undelivered == 0


async def test_a_burst_in_one_channel_at_one_message_a_second_is_answered_once_each(slack_http, fake_slack):
    fake_slack.rate_limit_per_channel = True
    events = [app_mention(QUESTION, user=f"U{i}", channel="CBUSY") for i in range(4)]
    before = slack_http.adapter.listeners.finished
    await asyncio.gather(*(slack_http.event(e, wait=False) for e in events))
    await slack_http.adapter.listeners.wait_until(lambda ls: ls.finished >= before + len(events), 60)
    per_thread = Counter(c.args["thread_ts"] for c in fake_slack.posts)
    assert per_thread == Counter({e["ts"]: 1 for e in events})
    times = sorted(c.at for c in fake_slack.posts)
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(times)), "at most one a second"
    assert slack_http.adapter.undelivered == 0


async def test_a_dropped_connection_is_retried(slack_http, fake_slack):
    fake_slack.drop_next["chat.postMessage"] = 1
    await slack_http.event(app_mention(QUESTION))
    assert [c.error for c in fake_slack.refused] == ["connection_dropped"]
    assert len(fake_slack.posts) == 1


async def test_an_answer_that_cannot_be_delivered_is_logged_not_silent(slack_http, fake_slack, caplog):
    fake_slack.fail["chat.postMessage"] = "channel_not_found"
    with caplog.at_level(logging.ERROR, logger="qabot.slack"):
        await slack_http.event(app_mention(QUESTION, channel="CGONE"))
    assert fake_slack.posts == []
    assert slack_http.adapter.undelivered == 1
    assert any("NOT delivered" in r.getMessage() and "channel_not_found" in r.getMessage() for r in caplog.records)


# ---- blocks Slack refuses ------------------------------------------------------------------------


def _long_answer(question: str, context=()) -> Answer:
    quotes = []
    for n in range(3):
        text = " ".join(f"Paragraph {n} sentence {i} talks about the {GOLD} market & more." for i in range(400))
        best = text.index(f"Paragraph {n} sentence 200 ")
        quotes.append(
            Quote(
                text=text,
                document="Long Paragraphs",
                doc_path="long.md",
                section="Long Paragraphs > Body",
                section_path=("Long Paragraphs", "Body"),
                score=0.9,
                passage_id=f"long{n}",
                highlight=(best, text.index(".", best) + 1),
            )
        )
    return Answer(question, question, AnswerKind.ANSWER, Confidence.HIGH, tuple(quotes), message="Here it is:")


async def test_an_answer_from_long_paragraphs_fits_slacks_block_total(slack_http, fake_slack, monkeypatch):
    """Before: 29,189 characters of blocks for one answer; Slack answers msg_blocks_too_long."""
    monkeypatch.setattr(slack_http.service.engine, "answer", _long_answer)
    await slack_http.event(app_mention(QUESTION))
    assert fake_slack.refused == []
    [post] = fake_slack.posts
    assert post.args.get("blocks"), "delivered with its blocks, not only as text"
    assert sum(len(t) for t in block_texts(post.args)) < BLOCK_TEXT_TOTAL_LIMIT
    assert "Shortened; the full passage is in Long Paragraphs › Body." in "\n".join(block_texts(post.args))


@pytest.mark.parametrize("error", ["msg_blocks_too_long", "invalid_blocks_format", "invalid_blocks", "too_many_blocks"])
async def test_any_refusal_of_the_blocks_falls_back_to_plain_text(slack_http, fake_slack, error):
    """Before: only invalid_blocks, invalid_blocks_format and msg_too_long fell back; the rest was dropped."""
    fake_slack.refuse_blocks = error
    await slack_http.event(app_mention(QUESTION))
    assert [c.error for c in fake_slack.refused] == [error]
    [post] = fake_slack.posts
    assert "blocks" not in post.args and GOLD in post.args["text"]


async def test_a_refused_ask_reply_falls_back_to_plain_text(slack_http, fake_slack):
    fake_slack.refuse_blocks = "invalid_blocks"
    await slack_http.command("/ask", QUESTION)
    assert [c.error for c in fake_slack.refused] == ["invalid_blocks"]
    [post] = fake_slack.posts
    assert post.method == "response_url" and GOLD in post.args["text"] and not post.args.get("blocks")


# ---- /ask and rate limits ------------------------------------------------------------------------


async def test_ask_from_someone_already_rate_limited_still_gets_a_reply(
    core_settings, slack_settings, fake_slack, engine_holder
):
    """Before: the third /ask got nothing at all."""
    settings = core_settings.replace(user_rate_limit=1)
    service = ConversationService(engine_holder, settings=settings, feedback=FeedbackStore(settings.feedback_db))
    harness = await SlackHttpHarness(service, slack_settings, fake_slack).start()
    try:
        for _ in range(3):
            await harness.command("/ask", QUESTION, user="ULIMITED")
    finally:
        await harness.stop()
        service.feedback.close()
    replies = fake_slack.posts
    assert len(replies) == 3
    assert GOLD in "\n".join(block_texts(replies[0].args))
    for reply in replies[1:]:
        assert reply.args["response_type"] == "ephemeral"
        payload = json.dumps(reply.args)
        assert payload.count("Please try again in") == 1, "the notice says its sentence once"


# ---- HTTP mode: hostile requests ------------------------------------------------------------------


def _signed_bytes(secret: str, body: bytes, timestamp: str | None = None) -> dict[str, str]:
    ts = timestamp or str(int(time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


async def _raw_post(harness, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with harness.session.post(harness.url, data=body, headers=headers) as resp:
        return resp.status, await resp.text()


BAD_BODIES = {
    "broken JSON": (b'{"type": "event_callback", "event": {' + MARKER.encode(), "application/json"),
    "a JSON array": (b'[{"type": "event_callback", "text": "' + MARKER.encode() + b'"}]', "application/json"),
    "payload= not JSON": (b"payload=%7Bnot-json" + MARKER.encode(), "application/x-www-form-urlencoded"),
    "payload= a JSON array": (b"payload=%5B1%2C2%5D&x=" + MARKER.encode(), "application/x-www-form-urlencoded"),
    "not UTF-8": (b'{"type": "\xff\xfe' + MARKER.encode() + b'"}', "application/json"),
}


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
@pytest.mark.parametrize("case", list(BAD_BODIES))
async def test_malformed_bodies_get_400_or_401_and_are_never_logged(slack_http, fake_slack, caplog, case, signed):
    """Before: 500 and a traceback, signed or not (Bolt parsed the body before checking the signature)."""
    body, content_type = BAD_BODIES[case]
    headers = {"Content-Type": content_type}
    headers.update(_signed_bytes(slack_http.secret if signed else "wrong-secret", body))
    with caplog.at_level(logging.DEBUG):
        status, text = await _raw_post(slack_http, body, headers)
    expected = 400 if signed or case == "not UTF-8" else 401
    assert status == expected, text
    assert MARKER not in caplog.text, "a request body reached the log"
    _no_tracebacks(caplog)
    await asyncio.sleep(0.1)
    assert fake_slack.posts == [] and slack_http.adapter.listeners.finished == 0


@pytest.mark.parametrize("timestamp", ["abc", "", "1e9", "１２３", "-5", "9" * 40])
async def test_non_numeric_timestamps_get_401(slack_http, caplog, timestamp):
    body = json.dumps(event_callback(app_mention(MARKER)))
    headers = {"Content-Type": "application/json", **_signed_bytes(slack_http.secret, body.encode(), timestamp)}
    headers["X-Slack-Request-Timestamp"] = timestamp
    with caplog.at_level(logging.DEBUG):
        status, _ = await _raw_post(slack_http, body.encode(), headers)
    assert status == 401
    assert MARKER not in caplog.text
    _no_tracebacks(caplog)


async def test_a_bad_signature_does_not_log_the_body(slack_service, slack_settings, fake_slack, caplog):
    """Before: Bolt's verification logged the refused request's body (at INFO, as `qabot run` logs)."""
    body = json.dumps(event_callback(app_mention(MARKER)))
    headers = {"Content-Type": "application/json", **_signed_bytes("wrong-secret", body.encode())}
    with caplog.at_level(logging.DEBUG):  # before the app exists: Bolt's loggers copy the root level
        harness = await SlackHttpHarness(slack_service, slack_settings, fake_slack).start()
        try:
            status, _ = await _raw_post(harness, body.encode(), headers)
        finally:
            await harness.stop()
    assert status == 401
    assert MARKER not in caplog.text
    assert "refused a Slack request with 401: invalid X-Slack-Signature" in caplog.text


async def test_a_replayed_slash_command_is_answered_once(slack_http, fake_slack):
    """Before: the same signed /ask sent again within 5 minutes was answered again."""
    body = slash_command("/ask", QUESTION, response_url=fake_slack.response_url())
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(slack_http.secret, body)}
    first = await _raw_post(slack_http, body.encode(), headers)
    await slack_http.adapter.listeners.wait_until(lambda ls: ls.finished >= 1, 30)
    replay = await _raw_post(slack_http, body.encode(), headers)
    await asyncio.sleep(0.3)
    assert first[0] == replay[0] == 200
    assert slack_http.adapter.listeners.finished == 1
    assert len(fake_slack.posts) == 1


# ---- HTTP mode: slow clients and where it listens -------------------------------------------------


async def test_slow_clients_are_cut_off_and_do_not_starve_the_server(slack_service, slack_settings, fake_slack):
    """Before: no read timeout on headers or bodies; 10 slow connections were held for the whole test."""
    harness = SlackHttpHarness(slack_service, slack_settings, fake_slack)
    harness.server = SlackHttpServer(
        harness.app, signing_secret=harness.secret, host="127.0.0.1", port=0, header_timeout_s=1.0, body_timeout_s=1.0
    )
    await harness.start()
    try:
        port = harness.server.port

        async def slow_headers() -> float:
            started = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"POST {EVENTS_PATH} HTTP/1.1\r\nHost: x\r\n".encode())
            try:
                for i in range(40):  # one header line every 0.25 s: 10 s if never cut off
                    await writer.drain()
                    if reader.at_eof():
                        break
                    writer.write(f"X-Slow-{i}: y\r\n".encode())
                    await asyncio.sleep(0.25)
                await asyncio.wait_for(reader.read(), 5)
            except (ConnectionError, TimeoutError):
                pass
            finally:
                writer.close()
            return time.monotonic() - started

        async def slow_body() -> tuple[bytes, float]:
            started = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"POST {EVENTS_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: 1000\r\n\r\n{{".encode()
            )
            await writer.drain()
            try:
                answer = await asyncio.wait_for(reader.read(), 5)
            finally:
                writer.close()
            return answer, time.monotonic() - started

        slow = [asyncio.create_task(slow_headers()) for _ in range(10)]
        body_task = asyncio.create_task(slow_body())
        await asyncio.sleep(0.3)
        # a real request is served meanwhile
        sent = await harness.event(app_mention(QUESTION))
        assert sent.status == 200 and sent.elapsed_s < 2
        held = await asyncio.gather(*slow)
        assert max(held) < 3.5, held
        answer, took = await body_task
        assert answer.startswith(b"HTTP/1.1 408") and took < 3.5
    finally:
        await harness.stop()


def test_http_mode_listens_on_loopback_unless_told_otherwise(monkeypatch, tmp_path, built_index_dir):
    from typer.testing import CliRunner

    import bot.cli as cli
    from bot.adapters.slack import SlackAdapter

    assert DEFAULT_HTTP_HOST == "127.0.0.1"
    seen: list[tuple[int | None, str]] = []
    monkeypatch.setattr(
        SlackAdapter, "run", lambda self: seen.append((self.settings.http_port, self.settings.http_host))
    )
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret")
    monkeypatch.setenv("QABOT_INDEX_DIR", str(built_index_dir))
    monkeypatch.setenv("QABOT_FEEDBACK_DB", str(tmp_path / "feedback.sqlite3"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_settings_cache", None)
    runner = CliRunner()
    assert runner.invoke(cli.app, ["run", "slack", "--http", "3000"]).exit_code == 0
    assert runner.invoke(cli.app, ["run", "slack", "--http", "3000", "--host", "0.0.0.0"]).exit_code == 0
    assert seen == [(3000, "127.0.0.1"), (3000, "0.0.0.0")]
    refused = runner.invoke(cli.app, ["run", "slack", "--host", "0.0.0.0"])
    assert refused.exit_code == cli.EXIT_USAGE and "--http" in refused.output
