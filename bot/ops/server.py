"""/metrics, /healthz and /readyz: on a port of their own (QABOT_METRICS_PORT), or beside Slack's events.

- `/healthz`: the process is alive and its event loop answers (200, always).
- `/readyz`: 200 when the index is loaded, the database answers and (with QABOT_REDIS_URL) Redis answers;
  503 otherwise, with every check and why in a JSON body. A replica that cannot reach Redis keeps
  answering from its in-process state: /readyz says so (`"redis": "unreachable ..."`) so an operator
  or an orchestrator sees it.
- `/metrics`: Prometheus' text format (bot/ops/metrics.py).

`OpsServer` runs them in a thread with its own event loop, so they answer whatever the front end does
(Socket Mode, Discord, the terminal); `ops_routes` adds the same routes to another aiohttp app (Slack's
HTTP mode).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.ops.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from bot.conversation.service import ConversationService

log = logging.getLogger("qabot.ops")


class Probes:
    """What /healthz, /readyz and /metrics report about one ConversationService."""

    def __init__(self, service: ConversationService):
        self.service = service

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """(ready, body): every check by name, "ok" or why not. Blocking: call it off the event loop."""
        checks: dict[str, str] = {}
        engine = self.service.engine
        version = ""
        if getattr(engine, "loaded", True):
            try:
                version = str(engine.version)
                checks["index"] = "ok"
            except Exception as err:
                checks["index"] = f"cannot be loaded: {getattr(err, 'message', type(err).__name__)}"
        else:
            checks["index"] = "not loaded"
        checks["database"] = self._database()
        shared = self.service.shared
        reachable = shared.redis_reachable()
        if reachable is not None:
            checks["redis"] = "ok" if reachable else f"{shared.redis_status()}"
        ready = all(value == "ok" for value in checks.values())
        body: dict[str, Any] = {"ready": ready, "checks": checks, "index_version": version}
        body["replica"] = shared.replica_id
        return ready, body

    def _database(self) -> str:
        feedback = self.service.feedback
        try:
            ping = getattr(feedback, "ping", None)
            if ping is not None:
                ping()
            else:
                feedback.answer_count()
        except Exception as err:
            return f"unreachable ({type(err).__name__})"
        return "ok"

    def metrics(self) -> bytes:
        return self.service.metrics.exposition()


def ops_routes(probes: Probes) -> list[web.RouteDef]:
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(_request: web.Request) -> web.Response:
        ready, body = await asyncio.to_thread(probes.ready)
        return web.json_response(body, status=200 if ready else 503)

    async def metrics(_request: web.Request) -> web.Response:
        body = await asyncio.to_thread(probes.metrics)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    return [web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics)]


class OpsServer:
    """The three routes on HOST:PORT (port 0: any free one, `port` tells which), in a thread of their own."""

    def __init__(self, probes: Probes, *, host: str = "127.0.0.1", port: int = 0):
        self.probes = probes
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> OpsServer:
        """Start serving; raises OSError when the port cannot be bound."""
        self._thread = threading.Thread(target=self._run, name="qabot-ops", daemon=True)
        self._thread.start()
        self._started.wait(timeout)
        if self._error is not None:
            raise self._error
        log.info("metrics, /healthz and /readyz on http://%s:%s", self.host, self.port)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.add_routes(ops_routes(self.probes))
        runner = web.AppRunner(app, access_log=None)
        try:
            await runner.setup()
            site = web.TCPSite(runner, self.host, self.requested_port)
            await site.start()
            self.port = runner.addresses[0][1]
        except BaseException as err:  # the port is taken, the address is wrong
            self._error = err
            self._started.set()
            await runner.cleanup()
            return
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()
