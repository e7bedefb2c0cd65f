"""Load test of the Slack front end: 200 signed app_mention events at once, over real HTTP, on loopback.

    .venv/bin/python -m benchmarks.slack_load [--events 200] [--runs 3] [--index DIR] [--timeout 180]
    .venv/bin/python -m benchmarks.slack_load --rate-limit     # Slack's 1 message/s per channel, 429s

With --rate-limit the fake Web API enforces Slack's posting limit: one message per second per
channel, the excess answered with HTTP 429 `ratelimited` and `Retry-After`. The app must still
answer every event exactly once (its client retries after Retry-After, one message at a time per
channel); the run also reports how many 429s the fake sent and how many answers the app gave up on.

Per run: a fresh qabot Slack app (the real Bolt AsyncApp, HTTP mode, signature checks on) on
127.0.0.1, its Web API client pointed at the loopback FakeSlack from tests/slack; one shared
EngineHolder (the real index and model, loaded and warmed once before the first run, as in
production). All events are fired at once from one aiohttp client, each from its own user in one of
ten channels, cycling through benchmarks/questions.txt. A run ends when every event has its
chat.postMessage (or at --timeout, which fails the run).

Measured per event: ack time (request sent -> HTTP 200 from Bolt) and end-to-end time (request sent ->
the answer's chat.postMessage recorded by the fake). Reported per run: p50 / p99 of both and the total
time (first request sent -> last answer recorded); the summary is the median of the runs. Every event
must be answered exactly once (matched by thread_ts), or the run fails.

qabot's own per-user/per-channel limits are switched off for the run (this measures throughput, not
the limiter), and events carry distinct event ids. Figures go to stdout and to
benchmarks/results/slack_load.json (slack_load_ratelimit.json with --rate-limit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import aiohttp  # noqa: E402

from bot.adapters.slack import SlackAdapter, SlackSettings  # noqa: E402
from bot.adapters.slack.app import EVENTS_PATH, SlackHttpServer  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.conversation.feedback import FeedbackStore  # noqa: E402
from bot.conversation.service import ConversationService  # noqa: E402
from tests.slack.fake_slack import FakeSlack, app_mention, event_callback, sign  # noqa: E402

SECRET = "bench-signing-secret"


def load_questions() -> list[str]:
    lines = (ROOT / "benchmarks" / "questions.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def resolve_index(arg: str | None) -> tuple[Path, tempfile.TemporaryDirectory[str] | None]:
    if arg:
        return Path(arg), None
    default = ROOT / "index"
    if (default / "current").exists():
        return default, None
    from index_builder.build import build_index

    tmp = tempfile.TemporaryDirectory(prefix="qabot-slack-bench-")
    print("building an index of knowledge/ into a temporary folder ...", flush=True)
    build_index(ROOT / "knowledge", Path(tmp.name) / "index")
    return Path(tmp.name) / "index", tmp


async def one_run(
    engine: Any, index_dir: Path, questions: list[str], n_events: int, timeout: float, *, rate_limit: bool = False
) -> dict:
    work = tempfile.TemporaryDirectory(prefix="qabot-slack-run-")
    settings = Settings(
        index_dir=index_dir,
        knowledge_dir=ROOT / "knowledge",
        feedback_db=Path(work.name) / "feedback.sqlite3",
        user_rate_limit=1_000_000,
        channel_rate_limit=1_000_000,
    )
    store = FeedbackStore(settings.feedback_db)
    service = ConversationService(engine, settings=settings, feedback=store)
    fake = await FakeSlack().start()
    fake.rate_limit_per_channel = rate_limit
    slack = SlackSettings(_env_file=None, bot_token="xoxb-bench", signing_secret=SECRET, api_url=fake.api_url)
    adapter = SlackAdapter(service, slack)
    server = SlackHttpServer(adapter.app, signing_secret=SECRET, host="127.0.0.1", port=0)
    await server.start()
    url = f"http://127.0.0.1:{server.port}{EVENTS_PATH}"
    connector = aiohttp.TCPConnector(limit=0)
    session = aiohttp.ClientSession(connector=connector)
    try:
        bodies = []
        for i in range(n_events):
            event = app_mention(questions[i % len(questions)], user=f"U{i:04d}", channel=f"C{i % 10}")
            bodies.append((event["ts"], json.dumps(event_callback(event, event_id=f"EvBench{i:05d}"))))
        sent_at: dict[str, float] = {}
        acked_at: dict[str, float] = {}

        async def fire(ts: str, body: str) -> None:
            headers = {"Content-Type": "application/json", **sign(SECRET, body)}
            sent_at[ts] = time.perf_counter()
            async with session.post(url, data=body.encode(), headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"event {ts}: HTTP {resp.status}")
            acked_at[ts] = time.perf_counter()

        started = time.perf_counter()
        await asyncio.gather(*(fire(ts, body) for ts, body in bodies))
        await fake.wait_for(lambda f: len(f.posts) >= n_events, timeout=timeout)
        finished = time.perf_counter()
        await asyncio.sleep(1.5 if rate_limit else 0.5)  # a second answer to any event would show up here
        posts = fake.calls_to("chat.postMessage")
        delivered = [c for c in posts if c.error is None]
        per_thread = Counter(c.args.get("thread_ts") for c in delivered)
        if set(per_thread) != set(sent_at) or any(n != 1 for n in per_thread.values()):
            raise RuntimeError(f"not answered exactly once: {len(delivered)} answers for {n_events} events")
        undelivered = adapter.undelivered
        if undelivered:
            raise RuntimeError(f"{undelivered} answers given up on")
        posts = delivered
        answered_at = {c.args["thread_ts"]: c.at for c in posts}
        e2e = [answered_at[ts] - sent_at[ts] for ts in sent_at]
        ack = [acked_at[ts] - sent_at[ts] for ts in sent_at]
        return {
            "events": n_events,
            "e2e_p50_s": percentile(e2e, 50),
            "e2e_p99_s": percentile(e2e, 99),
            "e2e_max_s": max(e2e),
            "ack_p50_s": percentile(ack, 50),
            "ack_p99_s": percentile(ack, 99),
            "total_s": max(answered_at.values()) - started,
            "wait_s": finished - started,
            "answered_once": len(per_thread),
            "lost": n_events - len(per_thread),
            "http_429": sum(1 for c in fake.refused if c.error == "ratelimited"),
            "other_refusals": sum(1 for c in fake.refused if c.error != "ratelimited"),
        }
    finally:
        await session.close()
        await server.stop()
        await fake.stop()
        store.close()
        work.cleanup()


async def main_async(args: argparse.Namespace) -> int:
    from bot.core.engine import EngineHolder

    index_dir, tmp = resolve_index(args.index)
    try:
        questions = load_questions()
        engine = EngineHolder(index_dir)
        t0 = time.perf_counter()
        for q in questions[:5]:  # load and warm up once, as a running bot would be
            engine.answer(q)
        print(f"engine loaded and warmed in {time.perf_counter() - t0:.1f} s; index {engine.version}")
        runs = []
        for i in range(args.runs):
            result = await asyncio.wait_for(
                one_run(engine, index_dir, questions, args.events, args.timeout, rate_limit=args.rate_limit),
                args.timeout + 30,
            )
            runs.append(result)
            print(
                f"run {i + 1}: {args.events} events, end-to-end p50 {result['e2e_p50_s'] * 1000:.0f} ms, "
                f"p99 {result['e2e_p99_s'] * 1000:.0f} ms, total {result['total_s']:.2f} s; "
                f"ack p50 {result['ack_p50_s'] * 1000:.0f} ms, p99 {result['ack_p99_s'] * 1000:.0f} ms; "
                f"answered exactly once {result['answered_once']}, lost {result['lost']}, "
                f"429s sent by the fake {result['http_429']}",
                flush=True,
            )
        summary = {
            key: statistics.median(r[key] for r in runs)
            for key in ("e2e_p50_s", "e2e_p99_s", "total_s", "ack_p50_s", "ack_p99_s")
        }
        print(
            f"median of {len(runs)} runs: end-to-end p50 {summary['e2e_p50_s'] * 1000:.0f} ms, "
            f"p99 {summary['e2e_p99_s'] * 1000:.0f} ms, total {summary['total_s']:.2f} s for {args.events} "
            f"events; ack p50 {summary['ack_p50_s'] * 1000:.0f} ms, p99 {summary['ack_p99_s'] * 1000:.0f} ms "
            f"(cpus: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f})"
        )
        if args.rate_limit:
            print(
                f"429 mode (1 message/s per channel, {min(10, args.events)} channels): every run answered all "
                f"{args.events} events exactly once, none lost; 429s per run: {[r['http_429'] for r in runs]}"
            )
        out = ROOT / "benchmarks" / "results"
        out.mkdir(parents=True, exist_ok=True)
        name = "slack_load_ratelimit.json" if args.rate_limit else "slack_load.json"
        (out / name).write_text(
            json.dumps(
                {"runs": runs, "median": summary, "cpus": os.cpu_count(), "rate_limit": args.rate_limit}, indent=2
            )
            + "\n"
        )
        return 0
    finally:
        if tmp is not None:
            tmp.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--index", help="index folder (default: ./index if built, else a fresh temporary build)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds a run may take before it fails")
    parser.add_argument(
        "--rate-limit",
        action="store_true",
        help="the fake Web API allows 1 message/s per channel and answers the excess with 429 + Retry-After",
    )
    args = parser.parse_args()
    if not 1 <= args.events <= 2000 or not 1 <= args.runs <= 10:
        parser.error("--events must be 1..2000 and --runs 1..10")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
