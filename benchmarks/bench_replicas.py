"""Replicas benchmark: 1,000 signed Slack events over 2 real replicas, compared with 1, in the same run.

    .venv/bin/python -m benchmarks.bench_replicas [--events 1000] [--replicas 1 2] [--index DIR]
        [--database URL | --postgres] [--retries 0.1] [--concurrency 100] [--timeout 600]

Per phase (1 replica, then 2): a fresh loopback FakeSlack (tests/slack) and N real `qabot run slack --http 0`
processes (tests/replicas/harness.py), all on one real redis-server started on 127.0.0.1 for the run
(flushed between phases) and one database (a fresh SQLite file per phase; --postgres: a fresh database per
phase on a PostgreSQL server started for the run, tests/postgres.py; or --database URL); the index is
./index when built, else a fresh build of knowledge/ in a temporary folder.
Each replica first answers 3 warm-up questions. Then EVENTS signed `app_mention` events (a distinct
event id, user and one of 50 channels each, cycling through benchmarks/questions.txt) are posted over
HTTP, spread round robin over the replicas as a load balancer would, at most --concurrency requests in
flight; a fraction (--retries, default 10 %) is delivered a second time after its first acknowledgement,
as Slack's retry (X-Slack-Retry-Num: 1), to the next replica. A phase ends when every event has its
chat.postMessage; it fails unless every event was answered exactly once (a retry answered again, or a
lost event, fails it).

Measured per event: end to end (first delivery sent -> its answer's chat.postMessage recorded by the fake),
and the acknowledgement (request sent -> HTTP 200). Reported per phase: p50 / p99 of both, the total time
(first event sent -> last answer) and the throughput; the machine's load (load average, CPU time of
other processes) over the whole run. qabot's per-user and per-channel limits are set out of reach
(this measures the replicas, not the limiter). Figures go to stdout and benchmarks/results/replicas.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
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

from benchmarks.bench_core import LoadMonitor  # noqa: E402
from benchmarks.slack_load import load_questions, percentile, resolve_index  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402
from tests.replicas.harness import ReplicaSet, answers_to  # noqa: E402
from tests.slack.fake_slack import FakeSlack, app_mention  # noqa: E402

CHANNELS = 50
WARM_UP = 3


async def phase(
    n_replicas: int,
    *,
    events: int,
    questions: list[str],
    redis: RedisServer,
    index_dir: Path,
    database: str | None,
    retries: float,
    concurrency: int,
    timeout: float,
) -> dict[str, Any]:
    redis.flush()
    fake = await FakeSlack().start()
    work = tempfile.TemporaryDirectory(prefix=f"qabot-bench-replicas-{n_replicas}-")
    replicas = ReplicaSet(
        fake,
        database=database or str(Path(work.name) / "qabot.sqlite3"),
        redis_url=redis.url,
        index_dir=index_dir,
        knowledge_dir=ROOT / "knowledge",
        workdir=Path(work.name),
        QABOT_USER_RATE_LIMIT="1000000",
        QABOT_CHANNEL_RATE_LIMIT="1000000",
    )
    try:
        t0 = time.perf_counter()
        started = await replicas.start(n_replicas)
        print(f"  {n_replicas} replica(s) up in {time.perf_counter() - t0:.1f} s", flush=True)
        # warm-up: a few questions per replica, answered before the clock starts
        warm = []
        for r, replica in enumerate(started):
            for k in range(WARM_UP):
                event = app_mention(questions[k], user=f"UW{r}{k}", channel="CWARM")
                warm.append(event["ts"])
                delivery = await replica.event(event, event_id=f"EvWarm{r}-{k}")
                if delivery.status != 200:
                    raise RuntimeError(f"warm-up event refused by replica {replica.name}: {delivery}")
        await fake.wait_for(lambda f: all(answers_to(f, ts) for ts in warm), timeout=120)

        bodies = []
        for i in range(events):
            event = app_mention(questions[i % len(questions)], user=f"U{i:05d}", channel=f"C{i % CHANNELS:02d}")
            bodies.append((i, event, f"EvBench{n_replicas}-{i:05d}"))
        retried = {i for i in range(events) if retries > 0 and (i * 7919) % 1000 < retries * 1000}
        sent_at: dict[str, float] = {}
        acks: list[float] = []
        refused: list[str] = []
        slots = asyncio.Semaphore(concurrency)

        async def deliver(i: int, event: dict[str, Any], event_id: str) -> None:
            replica = started[i % n_replicas]
            async with slots:
                sent_at.setdefault(event["ts"], time.perf_counter())
                first = await replica.event(event, event_id=event_id)
            if first.status != 200:
                refused.append(f"{event_id}: {first.status or first.error}")
                return
            acks.append(first.elapsed_s)
            if i in retried:  # Slack's retry, to another replica behind the balancer
                async with slots:
                    again = await started[(i + 1) % n_replicas].event(event, event_id=event_id, retry_num=1)
                if again.status != 200:
                    refused.append(f"{event_id} retry: {again.status or again.error}")

        begun = time.perf_counter()
        await asyncio.gather(*(deliver(*b) for b in bodies))
        if refused:
            raise RuntimeError(f"{len(refused)} deliveries refused, e.g. {refused[:3]}")
        asked = {event["ts"] for _, event, _ in bodies}
        await fake.wait_for(
            lambda f: len({c.args.get("thread_ts") for c in f.calls_to("chat.postMessage")} & asked) >= events,
            timeout=timeout,
        )
        await asyncio.sleep(2.0)  # a second answer to any event would show up by now
        posts = [c for c in fake.calls_to("chat.postMessage") if c.error is None and c.args.get("thread_ts") in asked]
        per_event = Counter(c.args["thread_ts"] for c in posts)
        twice = sum(1 for n in per_event.values() if n > 1)
        lost = len(asked - set(per_event))
        if twice or lost:
            raise RuntimeError(f"not answered exactly once: {twice} answered more than once, {lost} lost")
        answered_at = {c.args["thread_ts"]: c.at for c in posts}
        e2e = [answered_at[ts] - sent_at[ts] for ts in asked]
        total = max(answered_at.values()) - begun
        tracebacks = {replica.name: sum("Traceback" in line for line in replica.lines) for replica in started}
        return {
            "replicas": n_replicas,
            "events": events,
            "retried_deliveries": len(retried),
            "answered_exactly_once": len(per_event),
            "answered_twice": twice,
            "lost": lost,
            "e2e_p50_s": round(percentile(e2e, 50), 3),
            "e2e_p99_s": round(percentile(e2e, 99), 3),
            "e2e_max_s": round(max(e2e), 3),
            "ack_p50_s": round(percentile(acks, 50), 4),
            "ack_p99_s": round(percentile(acks, 99), 4),
            "total_s": round(total, 2),
            "events_per_s": round(events / total, 1),
            "tracebacks_in_logs": tracebacks,
        }
    finally:
        await replicas.stop()
        await fake.stop()
        work.cleanup()


async def main_async(args: argparse.Namespace) -> int:
    index_dir, tmp = resolve_index(args.index)
    redis = RedisServer().start()
    postgres = None
    if args.postgres:
        from tests.postgres import PostgresServer

        postgres = PostgresServer().start()
    monitor = LoadMonitor()
    try:
        questions = load_questions()
        results = []
        for n in args.replicas:
            print(f"phase: {args.events} events over {n} replica(s)", flush=True)
            result = await asyncio.wait_for(
                phase(
                    n,
                    events=args.events,
                    questions=questions,
                    redis=redis,
                    index_dir=index_dir,
                    database=postgres.create_database() if postgres is not None else args.database,
                    retries=args.retries,
                    concurrency=args.concurrency,
                    timeout=args.timeout,
                ),
                args.timeout + 300,
            )
            results.append(result)
            print(
                f"  {n} replica(s): {result['events']} events (+{result['retried_deliveries']} retries to another "
                f"replica), answered exactly once {result['answered_exactly_once']}, twice {result['answered_twice']}, "
                f"lost {result['lost']}; end to end p50 {result['e2e_p50_s'] * 1000:.0f} ms, p99 "
                f"{result['e2e_p99_s'] * 1000:.0f} ms; ack p50 {result['ack_p50_s'] * 1000:.1f} ms, p99 "
                f"{result['ack_p99_s'] * 1000:.1f} ms; {result['total_s']:.1f} s in all, "
                f"{result['events_per_s']:.1f} events/s",
                flush=True,
            )
        load = monitor.report()
        print(
            f"machine: {os.cpu_count()} cpus, load average {load['loadavg_start'][0]} -> {load['loadavg_end'][0]}, "
            f"other processes {load['other_processes_cores']} cores, steal {load['steal_cores']} cores "
            f"over {load['elapsed_s']} s"
        )
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps(
                {
                    "phases": results,
                    "load": load,
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "database": "postgresql" if args.postgres else "url" if args.database else "sqlite",
                    "index": str(index_dir),
                },
                indent=2,
            )
            + "\n"
        )
        return 0
    finally:
        redis.close()
        if postgres is not None:
            postgres.stop()
        if tmp is not None:
            tmp.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2], help="the phases, in order (1 2)")
    parser.add_argument("--index", help="index folder (default: ./index if built, else a fresh temporary build)")
    parser.add_argument("--database", help="a database URL the replicas share (default: a fresh SQLite file per phase)")
    parser.add_argument(
        "--postgres", action="store_true", help="a PostgreSQL server of the run's own (tests/postgres.py)"
    )
    parser.add_argument("--retries", type=float, default=0.1, help="fraction of events delivered again (0..1)")
    parser.add_argument("--concurrency", type=int, default=100, help="requests in flight at most")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds a phase may wait for its answers")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "replicas.json"))
    args = parser.parse_args()
    if not 1 <= args.events <= 5000 or not all(1 <= n <= 4 for n in args.replicas) or not 0 <= args.retries <= 1:
        parser.error("--events must be 1..5000, --replicas 1..4 each, --retries 0..1")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
