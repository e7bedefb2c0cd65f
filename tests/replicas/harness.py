"""Real replica processes: `qabot run slack` started N times against one Redis, one database, one index
folder and one loopback FakeSlack, as a deployment with several replicas runs them.

    replicas = ReplicaSet(fake, database=..., redis_url=..., index_dir=..., knowledge_dir=..., workdir=...)
    a, b = await replicas.start(2)             # HTTP mode on ports the OS picks (read from their logs)
    await a.event(app_mention("what is ML?"))  # a signed Events API request, as Slack sends it

`database` is the one parameter that says where the replicas keep their data: a file path (SQLite,
QABOT_FEEDBACK_DB) or a database URL (QABOT_DATABASE_URL, e.g. postgresql+psycopg://...).
Each replica's log (stderr) is kept in memory and in WORKDIR/replica-N.log.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.slack.fake_slack import FakeSlack, block_action, event_callback, sign, slash_command

ROOT = Path(__file__).resolve().parents[2]
SIGNING_SECRET = "replica-signing-secret"
SECRET_KEY = "replicas-share-this-secret-key"
BOT_TOKEN = "xoxb-replica-token"
APP_TOKEN = "xapp-replica-token"
ADMIN = "UADMIN"
START_TIMEOUT_S = 180.0
_LISTENING = re.compile(r"Slack HTTP mode listening on [\d.]+:(\d+)")
_OPS = re.compile(r"metrics, /healthz and /readyz on http://[\d.]+:(\d+)")


@dataclass
class Delivery:
    """One request as the load balancer in front of the replicas delivered it."""

    replica: str
    status: int | None  # None: the connection failed (refused, reset): Slack would retry
    sent_at: float
    elapsed_s: float
    error: str = ""


@dataclass
class Replica:
    name: str
    env: dict[str, str]
    log_path: Path
    args: list[str]
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    port: int | None = None
    ops_port: int | None = None  # QABOT_METRICS_PORT (0: the port the OS picked, read from the log)
    lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None
    _session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def spawn(self) -> None:
        self.lines.clear()
        self.port = None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run", "slack", *self.args],
            cwd=self.workdir,  # no .env of the repository
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._reader = threading.Thread(target=self._read, name=f"log-{self.name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        with open(self.log_path, "a", encoding="utf-8") as out:
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append(line)
                out.write(line + "\n")
                out.flush()
                match = _LISTENING.search(line)
                if match:
                    self.port = int(match.group(1))
                ops = _OPS.search(line)
                if ops:
                    self.ops_port = int(ops.group(1))

    async def wait_started(self, *, http: bool = True, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        marker = "Slack HTTP mode listening" if http else "Slack Socket Mode connected"
        while not any(marker in line for line in self.lines):
            if self.proc is None or self.proc.poll() is not None:
                raise AssertionError(f"replica {self.name} exited while starting:\n{self.log[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"replica {self.name} did not start in {timeout:.0f} s:\n{self.log[-3000:]}")
            await asyncio.sleep(0.1)
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    def kill(self) -> None:
        """SIGKILL: the replica dies at once, as in a crash (nothing drained, nothing said)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait, 30)
        if self._reader is not None:
            self._reader.join(5)

    # ---- requests, as Slack (through a load balancer) sends them ------------------------------

    async def post(self, body: str, content_type: str, headers: dict[str, str] | None = None) -> Delivery:
        assert self._session is not None, "start the replica first"
        h = {"Content-Type": content_type, **sign(SIGNING_SECRET, body), **(headers or {})}
        started = time.perf_counter()
        try:
            async with self._session.post(f"{self.url}/slack/events", data=body.encode(), headers=h) as resp:
                await resp.read()
                return Delivery(self.name, resp.status, started, time.perf_counter() - started)
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            return Delivery(self.name, None, started, time.perf_counter() - started, type(err).__name__)

    async def event(self, event: dict[str, Any], *, event_id: str, retry_num: int | None = None) -> Delivery:
        body = json.dumps(event_callback(event, event_id=event_id))
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return await self.post(body, "application/json", headers)

    async def command(self, body: str) -> Delivery:
        return await self.post(body, "application/x-www-form-urlencoded")

    async def click(self, fake: FakeSlack, action_id: str, value: str, **where: Any) -> tuple[Delivery, str]:
        """A button click (block_actions), as Slack posts it; returns the delivery and its response_url."""
        response_url = fake.response_url()
        body = block_action(action_id, value, response_url=response_url, **where)
        return await self.post(body, "application/x-www-form-urlencoded"), response_url

    async def get(self, path: str, *, port: int | None = None) -> tuple[int, str]:
        """GET on the HTTP mode's port, or on `port` (e.g. ops_port)."""
        assert self._session is not None
        async with self._session.get(f"http://127.0.0.1:{port or self.port}{path}") as resp:
            return resp.status, await resp.text()

    async def ready(self) -> tuple[int, dict[str, Any]]:
        status, text = await self.get("/readyz")
        return status, json.loads(text)


class ReplicaSet:
    def __init__(
        self,
        fake: FakeSlack,
        *,
        database: str | Path,
        redis_url: str | None,
        index_dir: Path,
        knowledge_dir: Path,
        workdir: Path,
        **env: str,
    ):
        self.fake = fake
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_", "QABOT_"))}
        base.update(
            PYTHONPATH=str(ROOT),
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            QABOT_INDEX_DIR=str(index_dir),
            QABOT_KNOWLEDGE_DIR=str(knowledge_dir),
            QABOT_SECRET_KEY=SECRET_KEY,
            QABOT_LOG_LEVEL="INFO",
            QABOT_USER_RATE_LIMIT="1000",
            QABOT_CHANNEL_RATE_LIMIT="1000",
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_APP_TOKEN=APP_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=fake.api_url,
            SLACK_ADMIN_USER_IDS=ADMIN,
            SLACK_WORKSPACE_ADMINS_ARE_ADMINS="false",
        )
        database = str(database)
        if "://" in database:
            base["QABOT_DATABASE_URL"] = database
        else:
            base["QABOT_FEEDBACK_DB"] = database
        if redis_url:
            base["QABOT_REDIS_URL"] = redis_url
        base.update(env)
        self.env = base
        self.replicas: list[Replica] = []

    def add(self, *, http: bool = True, **env: str) -> Replica:
        name = "abcdefgh"[len(self.replicas)]
        args = ["--http", "0", "--host", "127.0.0.1"] if http else []
        replica = Replica(name, {**self.env, **env}, self.workdir / f"replica-{name}.log", args, self.workdir)
        self.replicas.append(replica)
        return replica

    async def start(self, n: int, *, http: bool = True, **env: str) -> list[Replica]:
        started = [self.add(http=http, **env) for _ in range(n)]
        for replica in started:
            replica.spawn()
        for replica in started:
            await replica.wait_started(http=http)
        return started

    async def stop(self) -> None:
        for replica in self.replicas:
            await replica.stop()

    async def __aenter__(self) -> ReplicaSet:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def answers_to(fake: FakeSlack, ts: str) -> list[Any]:
    """The answers delivered in the thread of the asking message `ts`."""
    return [c for c in fake.calls_to("chat.postMessage") if c.error is None and c.args.get("thread_ts") == ts]


def command_body(
    text: str, *, user: str, channel: str = "C1", command: str = "/qabot", fake: FakeSlack
) -> tuple[str, str]:
    """(body, response_url) of a slash command."""
    url = fake.response_url()
    return slash_command(command, text, user=user, channel=channel, response_url=url), url


async def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> float:
    """Poll until predicate() is true; returns when (perf_counter); AssertionError naming `what` at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)
