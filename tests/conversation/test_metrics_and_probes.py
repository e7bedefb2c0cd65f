"""/metrics, /healthz and /readyz (bot/ops): what the conversation service counts, under which names and
labels (never a user, channel or message), and the probes on a port of their own (QABOT_METRICS_PORT), as
Socket Mode and Discord serve them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from bot.conversation.service import ConversationService
from bot.ops.metrics import Metrics
from bot.ops.server import OpsServer, Probes
from bot.state.shared import SharedState
from bot.storage import FeedbackStore
from tests.conversation.conftest import FakeEngine, msg
from tests.postgres import PostgresServer

SECRET_USER = "USECRETPERSON42"
SECRET_CHANNEL = "CSECRETROOM77"


def _samples(exposition: str) -> dict[str, float]:
    """'name{labels}' -> value, for every sample line."""
    out = {}
    for line in exposition.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_questions_are_counted_by_platform_and_outcome_and_no_label_names_a_person(make_service, clock):
    service = make_service(user_rate_limit=5)
    ask = lambda text, user=SECRET_USER, **kw: service.handle(  # noqa: E731
        msg(text, user_id=user, channel_id=SECRET_CHANNEL, **kw)
    )
    ask("what is machine learning?", event_id="Ev1")  # answer
    ask("what is machine learning?", event_id="Ev1")  # Slack's retry: answered once
    ask("tell me about quantum computing")  # mentioned only
    ask("how do I bake bread")  # abstain
    ask("boom")  # error
    ask("hello?", user="U2", in_allowed_channel=False)  # refused
    ask("what is machine learning?", user="U3", platform="discord")
    ask("hi")  # small talk: not a question outcome
    assert ask("what is machine learning?").kind.value == "rate_limited"  # the user's 6th message in the window
    ask("what is machine learning?")  # already told: still counted as rate limited

    text = service.metrics.exposition().decode()
    samples = _samples(text)
    q = 'qabot_questions_total{outcome="%s",platform="%s"}'
    assert samples[q % ("answer", "slack")] == 1
    assert samples[q % ("mentioned", "slack")] == 1
    assert samples[q % ("abstain", "slack")] == 1
    assert samples[q % ("error", "slack")] == 1
    assert samples[q % ("refused", "slack")] == 1
    assert samples[q % ("rate_limited", "slack")] == 2
    assert samples[q % ("answer", "discord")] == 1
    assert samples['qabot_retries_deduplicated_total{platform="slack"}'] == 1
    # latency of the questions answered (answer, mentioned, abstain), per platform
    assert samples['qabot_answer_seconds_count{platform="slack"}'] == 3
    assert samples['qabot_answer_seconds_count{platform="discord"}'] == 1
    assert 'qabot_answer_seconds_bucket{le="0.005",platform="slack"}' in samples
    # labels: platform names and outcomes only
    for secret in (SECRET_USER, SECRET_CHANNEL, "U2", "U3", "bread", "quantum", "machine"):
        assert secret not in text
    labels = {
        label.split("=")[0] for name in samples for label in name.partition("{")[2].rstrip("}").split(",") if label
    }
    assert labels <= {"platform", "outcome", "le", "operation", "status", "version"}, labels


def test_rebuilds_the_index_version_and_redis_are_reported():
    metrics = Metrics()
    redis_up: list[bool | None] = [None]
    metrics.watch(version=lambda: "v20261125-abc", redis_up=lambda: redis_up[0])
    metrics.observe_rebuild("reindex", "rebuilt", 42.0)
    metrics.observe_rebuild("reindex", "busy", 0.01)  # refused at once: counted, not timed
    metrics.observe_rebuild("rollback", "rolled_back", 0.3)
    samples = _samples(metrics.exposition().decode())
    assert samples['qabot_rebuilds_total{operation="reindex",status="rebuilt"}'] == 1
    assert samples['qabot_rebuilds_total{operation="reindex",status="busy"}'] == 1
    assert samples['qabot_rebuild_seconds_count{operation="reindex"}'] == 1
    assert samples['qabot_rebuild_seconds_sum{operation="reindex"}'] == 42.0
    assert samples['qabot_rebuild_seconds_count{operation="rollback"}'] == 1
    assert samples['qabot_index_info{version="v20261125-abc"}'] == 1
    assert not any(name.startswith("qabot_redis_up") for name in samples)  # no Redis configured: no gauge
    redis_up[0] = False
    assert _samples(metrics.exposition().decode())["qabot_redis_up"] == 0
    redis_up[0] = True
    assert _samples(metrics.exposition().decode())["qabot_redis_up"] == 1


def _get(port: int, path: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


@pytest.fixture
def serve():
    servers: list[OpsServer] = []

    def start(service: ConversationService) -> int:
        server = OpsServer(Probes(service), port=0).start()
        servers.append(server)
        assert server.port
        return server.port

    yield start
    for server in servers:
        server.stop()


def test_the_probes_on_a_port_of_their_own(make_service, serve):
    service = make_service()
    service.handle(msg("what is machine learning?"))
    port = serve(service)
    assert _get(port, "/healthz")[0] == 200
    status, _, body = _get(port, "/readyz")
    assert status == 200, body
    ready = json.loads(body)
    assert ready["checks"] == {"index": "ok", "database": "ok"} and ready["index_version"] == "v1"
    status, content_type, text = _get(port, "/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    assert 'qabot_questions_total{outcome="answer",platform="slack"} 1.0' in text


def test_not_ready_while_the_index_is_missing(make_service, serve):
    class NotLoaded:
        loaded = False

    port = serve(make_service(engine=NotLoaded()))
    status, _, body = _get(port, "/readyz")
    assert status == 503 and json.loads(body)["checks"]["index"] == "not loaded"
    assert _get(port, "/healthz")[0] == 200  # alive all the same: no restart needed, the index may come


def test_not_ready_while_postgresql_is_away_and_ready_again_when_it_is_back(settings, serve):
    server = PostgresServer().start()
    try:
        url = server.create_database()
        with FeedbackStore(url, busy_timeout_s=1.0) as store:
            service = ConversationService(FakeEngine(), settings=settings.replace(database_url=url), feedback=store)
            port = serve(service)
            status, _, body = _get(port, "/readyz")
            assert status == 200 and json.loads(body)["checks"]["database"] == "ok", body
            server.stop(keep_data=True)
            status, _, body = _get(port, "/readyz")
            checks = json.loads(body)["checks"]
            assert status == 503 and checks["database"].startswith("unreachable") and checks["index"] == "ok"
            assert _get(port, "/healthz")[0] == 200
            server.restart()
            status, _, body = _get(port, "/readyz")
            assert status == 200 and json.loads(body)["checks"]["database"] == "ok", body
    finally:
        server.stop()


def test_not_ready_while_redis_is_away_and_ready_again_when_it_is_back(make_service, settings, own_redis, serve):
    shared_settings = settings.replace(redis_url=own_redis.url, secret_key="k" * 32)
    shared = SharedState.from_settings(shared_settings)
    service = make_service()
    service.shared = shared
    port = serve(service)
    try:
        status, _, body = _get(port, "/readyz")
        assert status == 200 and json.loads(body)["checks"]["redis"] == "ok"
        own_redis.stop()
        status, _, body = _get(port, "/readyz")
        checks = json.loads(body)["checks"]
        assert status == 503 and checks["redis"].startswith("unreachable") and checks["index"] == "ok"
        own_redis.restart()
        status, _, body = _get(port, "/readyz")
        assert status == 200 and json.loads(body)["checks"]["redis"] == "ok"
    finally:
        shared.close()
