from __future__ import annotations

from bot.config import Settings
from bot.conversation.feedback import FeedbackStore
from bot.conversation.report import build_report, feedback_report_text, format_report, normalize_question


def _add(store, answer_id, question, kind="abstain", normalized=""):
    store.record_answer(
        answer_id=answer_id,
        question=question,
        normalized_question=normalized,
        passage_ids=["p1"] if kind == "answer" else [],
        index_version="v1",
        kind=kind,
        platform="slack",
        channel_id="C1",
        user_id="U1",
    )


def test_normalize_question():
    assert normalize_question("  What's   the BEST pizza?! ") == normalize_question("what s the best pizza")
    assert normalize_question("¿Qué es ML?") == "qué es ml"


def test_report_groups_abstentions_and_orders_worst(database):
    with database.open() as store:
        for i, q in enumerate(["Best pizza?", "best   PIZZA", "best pizza!", "weather today?"]):
            _add(store, f"x{i}", q)
        _add(store, "good", "what is ml", kind="answer")
        _add(store, "bad", "how do GANs work", kind="answer")
        _add(store, "meh", "what is genai", kind="answer")
        for user in ("U1", "U2", "U3"):
            store.record_vote("bad", -1, platform="slack", user_id=user, channel_id="C1")
        store.record_vote("meh", -1, platform="slack", user_id="U1", channel_id="C1")
        store.record_vote("meh", 1, platform="slack", user_id="U2", channel_id="C1")
        store.record_vote("good", 1, platform="slack", user_id="U1", channel_id="C1")
        report = build_report(store)
    assert [r.answer_id for r in report.worst] == ["bad", "meh"]  # 'good' has no 👎
    assert report.worst[0].net == -3
    # without an encoder (and no stored vectors) the gaps group by their words; a 👎 answer is a gap too
    assert report.grouped_by == "words"
    assert (report.gaps[0].count, normalize_question(report.gaps[0].question)) == (3, "best pizza")
    assert report.gaps[0].abstained == 3 and report.gaps[0].thumbs_down == 0
    assert sorted((g.count, normalize_question(g.question), g.thumbs_down) for g in report.gaps[1:]) == [
        (1, "how do gans work", 1),
        (1, "weather today", 0),
        (1, "what is genai", 1),
    ]
    assert report.abstentions == 4 and report.answers == 3
    assert (report.votes_up, report.votes_down) == (2, 4)
    text = format_report(report)
    assert "how do GANs work" in text and "asked 3x" in text
    assert text.index("how do GANs work") < text.index("what is genai")


def test_report_limit_and_empty(database):
    with database.open() as store:
        assert "none yet" in format_report(build_report(store))
        for i in range(15):
            _add(store, f"q{i}", f"question number {i}")
        assert len(build_report(store, limit=10).gaps) == 10


def test_feedback_report_text(tmp_path):
    settings = Settings(feedback_db=tmp_path / "db.sqlite3")
    assert "No feedback recorded yet" in feedback_report_text(settings)
    assert not settings.feedback_db.exists()  # a report does not create the database
    with FeedbackStore(settings.feedback_db) as store:
        _add(store, "a", "pizza?")
    assert "asked 1x" in feedback_report_text(settings)


def test_feedback_report_text_reads_the_configured_database(database, tmp_path):
    settings = Settings(**({"feedback_db": tmp_path / "unused.sqlite3"} | database.settings_changes()))
    with database.open() as store:
        _add(store, "a", "pizza?")
    assert "asked 1x" in feedback_report_text(settings)


def test_a_front_end_escapes_the_questions_in_its_own_markup(database):
    with database.open() as store:
        _add(store, "x", "what is *ML*?")
        report = build_report(store)
    assert "what is *ML*?" in format_report(report)
    assert "what is [*ML*]?" in format_report(report, escape=lambda q: q.replace("*ML*", "[*ML*]"))


# ---- knowledge gaps grouped by meaning (issue 9, item 5) -------------------------------------------

GAP_QUESTIONS = [  # (question, kind): four topics the article does not cover, phrased differently
    ("how do I reset my password?", "abstain"),
    ("I forgot my password, how can I change it?", "abstain"),
    ("what's the weather in Paris tomorrow?", "abstain"),
    ("will it rain in paris tomorrow", "abstain"),
    ("best pizza topping in Naples?", "abstain"),
    ("which pizza should I order in naples", "answer"),  # answered, then given a 👎
    ("how much does the enterprise plan cost?", "abstain"),
    ("pricing of the enterprise tier?", "abstain"),
]


def _record(store, answer_id, question, kind, *, vector="", sections=(), created=None):
    import json as _json

    answer_json = _json.dumps({"kind": kind, "closest_sections": list(sections), "quotes": []})
    store.record_answer(
        answer_id=answer_id,
        question=question,
        passage_ids=["p1"] if kind == "answer" else [],
        index_version="v1",
        kind=kind,
        platform="slack",
        channel_id="C1",
        user_id="U1",
        answer_json=answer_json,
        question_vector=vector,
    )


def test_gaps_group_by_meaning_with_the_real_encoder(database, engine_holder):
    from bot.conversation.report import report_json
    from bot.conversation.similarity import pack_vector

    encoder, vectors = engine_holder.embed_questions([q for q, _ in GAP_QUESTIONS])
    with database.open() as store:
        for i, ((q, kind), v) in enumerate(zip(GAP_QUESTIONS, vectors, strict=True)):
            # one question stored without its vector (an older row): embedded when the report is made
            packed = "" if i == 1 else pack_vector(encoder, v)
            _record(store, f"g{i}", q, kind, vector=packed, sections=("Healthcare", "Finance") if i < 2 else ())
        store.record_vote("g5", -1, platform="slack", user_id="U2", channel_id="C1")
        with_encoder = build_report(store, embed=engine_holder.embed_questions)
        stored_only = build_report(store)  # no encoder at hand: the stored vectors still group
    assert with_encoder.grouped_by == encoder
    groups = {frozenset(normalize_question(q) for q in (g.question, *g.variants)): g for g in with_encoder.gaps}
    assert set(groups) == {
        frozenset({"how do i reset my password", "i forgot my password how can i change it"}),
        frozenset({"what s the weather in paris tomorrow", "will it rain in paris tomorrow"}),
        frozenset({"best pizza topping in naples", "which pizza should i order in naples"}),
        frozenset({"how much does the enterprise plan cost", "pricing of the enterprise tier"}),
    }
    password = next(g for g in with_encoder.gaps if "password" in g.question)
    assert password.count == 2 and password.abstained == 2 and password.sections == ("Healthcare", "Finance")
    assert password.first_asked <= password.last_asked
    pizza = next(g for g in with_encoder.gaps if "pizza" in g.question)
    assert (pizza.abstained, pizza.thumbs_down) == (1, 1)
    # without the encoder, the question stored without a vector stands alone; the rest still group
    assert len(stored_only.gaps) == 5
    text = format_report(with_encoder)
    assert "grouped by meaning" in text and "asked 2x: 1 not answered, 1 👎" in text
    assert "closest sections: Healthcare; Finance" in text
    data = report_json(with_encoder)
    assert {g["count"] for g in data["gaps"]} == {2} and data["gaps_grouped_by"] == encoder
    assert set(data["gaps"][0]) >= {"question", "count", "examples", "first_asked", "last_asked", "closest_sections"}


def test_gaps_since_and_erased_questions(database):
    import time as _time

    from tests.conversation.conftest import ManualClock

    clock = ManualClock(_time.time() - 10 * 86400)
    with database.open(retention_days=5, clock=clock) as store:
        _record(store, "old", "zebra lasagne recipe?", "abstain")
        clock.advance(10 * 86400)
        _record(store, "new", "how do I reset my password?", "abstain")
        store.erase_old_questions()
        report = build_report(store)
        recent = build_report(store, since=_time.time() - 86400)
    assert [g.question for g in report.gaps] == ["how do I reset my password?"]
    assert report.erased == 1 and "1 question(s) not grouped" in format_report(report)
    assert recent.erased == 0 and recent.abstentions == 1 and recent.since is not None


def test_parse_since():
    import pytest as _pytest

    from bot.conversation.report import parse_since

    assert parse_since("7d", now=1_000_000.0) == 1_000_000.0 - 7 * 86400
    assert parse_since("24h", now=100_000.0) == 100_000.0 - 86400
    assert parse_since("2026-11-01") == 1_793_491_200
    with _pytest.raises(ValueError, match="--since must be"):
        parse_since("last tuesday")
