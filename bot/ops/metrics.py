"""Prometheus metrics of one bot process (prometheus-client), in a registry of its own.

    qabot_questions_total{platform, outcome}     outcome: answer, mentioned, abstain, refused, rate_limited, error
    qabot_answer_seconds{platform}               histogram: a question in -> its reply ready (answers and abstentions)
    qabot_retries_deduplicated_total{platform}   events answered once although delivered again (Slack retries)
    qabot_rebuilds_total{operation, status}      operation: reindex, rollback; status: rebuilt, unchanged, busy, ...
    qabot_rebuild_seconds{operation}             histogram of the rebuilds and rollbacks that ran
    qabot_index_info{version}                    the index version this process serves (an info metric)
    qabot_redis_up                               1 when the shared state in Redis answers, 0 when this replica is
                                                 on its own state (absent without QABOT_REDIS_URL)

Labels are only platform names, outcomes and statuses: never a user, channel or message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from bot.conversation.models import ReplyKind
from bot.core.types import AnswerKind

if TYPE_CHECKING:
    from bot.conversation.models import IncomingMessage, Reply

OUTCOMES = ("answer", "mentioned", "abstain", "refused", "rate_limited", "error")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# a warm answer takes ~5 ms, a loaded replica seconds
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
REBUILD_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)


def outcome_of(reply: Reply) -> str | None:
    """The question outcome a reply stands for; None when it is not the outcome of a question
    (help and small talk, an ignored bot message or thread chatter)."""
    kind = reply.kind
    if kind is ReplyKind.ANSWER:
        answer = reply.answer
        return "mentioned" if answer is not None and answer.kind is AnswerKind.MENTIONED else "answer"
    if kind is ReplyKind.ABSTAIN:
        return "abstain"
    if kind is ReplyKind.REFUSED:
        return "refused"
    if kind is ReplyKind.RATE_LIMITED:
        return "rate_limited"
    if kind is ReplyKind.ERROR:
        return "error"
    if kind is ReplyKind.IGNORED and reply.extra.get("why") == "rate limited, already told":
        return "rate_limited"
    return None


class _Live(Collector):
    """Values read when Prometheus scrapes: the index version served, whether Redis answers."""

    def __init__(self, version: Callable[[], str | None], redis_up: Callable[[], bool | None]):
        self._version = version
        self._redis_up = redis_up

    def collect(self) -> Iterator[Any]:
        version = self._version()
        if version:
            info = InfoMetricFamily("qabot_index", "The index version this process serves.")
            info.add_metric([], {"version": version})
            yield info
        up = self._redis_up()
        if up is not None:
            yield GaugeMetricFamily(
                "qabot_redis_up", "1 when the shared state in Redis answers, 0 when on in-process state.", value=int(up)
            )


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.questions = Counter(
            "qabot_questions", "Questions by platform and outcome.", ["platform", "outcome"], registry=self.registry
        )
        self.answer_seconds = Histogram(
            "qabot_answer_seconds",
            "Time from a question to its reply (answers and abstentions).",
            ["platform"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.retries_deduplicated = Counter(
            "qabot_retries_deduplicated",
            "Events delivered again (platform retries) and not answered again.",
            ["platform"],
            registry=self.registry,
        )
        self.rebuilds = Counter(
            "qabot_rebuilds", "Rebuilds and rollbacks by outcome.", ["operation", "status"], registry=self.registry
        )
        self.rebuild_seconds = Histogram(
            "qabot_rebuild_seconds",
            "Duration of rebuilds and rollbacks.",
            ["operation"],
            buckets=REBUILD_BUCKETS,
            registry=self.registry,
        )
        self._live: _Live | None = None

    def watch(self, *, version: Callable[[], str | None], redis_up: Callable[[], bool | None]) -> None:
        """Report the served index version and the state of Redis at every scrape (once per registry)."""
        if self._live is None:
            self._live = _Live(version, redis_up)
            self.registry.register(self._live)

    def observe(self, msg: IncomingMessage, reply: Reply, seconds: float) -> None:
        """One message handled by the conversation service."""
        if reply.kind is ReplyKind.IGNORED and reply.extra.get("why") == "duplicate":
            self.retries_deduplicated.labels(msg.platform).inc()
            return
        outcome = outcome_of(reply)
        if outcome is None:
            return
        self.questions.labels(msg.platform, outcome).inc()
        if outcome in ("answer", "mentioned", "abstain"):
            self.answer_seconds.labels(msg.platform).observe(seconds)

    def observe_rebuild(self, operation: str, status: str, seconds: float) -> None:
        self.rebuilds.labels(operation, status).inc()
        if status not in ("busy",):
            self.rebuild_seconds.labels(operation).observe(seconds)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
