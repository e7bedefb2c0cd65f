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
    assert [(g.count, normalize_question(g.question)) for g in report.abstained] == [
        (3, "best pizza"),
        (1, "weather today"),
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
        assert len(build_report(store, limit=10).abstained) == 10


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
