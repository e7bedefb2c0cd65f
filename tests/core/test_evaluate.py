"""The evaluator: per-style figures, follow-up lines asked after their context, uncovered vs off-topic,
calibration per confidence level, and the paired comparison of two engines."""

from __future__ import annotations

import json

import pytest

from bot.core.evaluate import EvalFileError, EvalItem, compare, evaluate, load_eval_file
from bot.core.types import Answer, AnswerKind, Confidence, Quote, Turn

PASSAGES = {
    "ml": "Machine learning learns from data.",
    "gan": "GANs create new images.",
    "fin": "ML spots fraud in finance.",
}


def quote(key: str) -> Quote:
    return Quote(PASSAGES[key], "Doc", "doc.md", "S", ("S",), 1.0, key)


def scripted(table: dict[str, tuple[str, Confidence | None, list[str]]], seen: list | None = None):
    """An answer function from a table: question -> (kind, confidence, passage keys); context recorded."""

    def answer(q: str, context=()) -> Answer:
        if seen is not None:
            seen.append((q, tuple(context)))
        kind, conf, keys = table.get(q, ("abstain", None, []))
        if context and q == "and in finance?":  # reads its context: the finance passage
            kind, conf, keys = "answer", Confidence.HIGH, ["fin"]
        return Answer(q, q, AnswerKind(kind), conf, tuple(quote(k) for k in keys))

    return answer


ITEMS = [
    EvalItem("what is ml", ["learns from data"], "chat"),
    EvalItem("what do gans do", ["create new images"], "paraphrase"),
    EvalItem("gans again", ["create new images"], "paraphrase"),
    EvalItem("best pizza?", [], "off_topic"),
    EvalItem("gan loss formula?", [], "uncovered"),
    EvalItem("and in finance?", ["fraud in finance"], "followup", ["how is ml used?"]),
]
TABLE = {
    "what is ml": ("answer", Confidence.HIGH, ["ml"]),
    "what do gans do": ("mentioned", Confidence.LOW, ["ml", "gan"]),  # right at rank 2, low
    "gans again": ("answer", Confidence.MEDIUM, ["ml"]),  # wrong, medium
    "gan loss formula?": ("answer", Confidence.HIGH, ["gan"]),  # an uncovered question answered confidently
    "how is ml used?": ("answer", Confidence.HIGH, ["ml"]),
}


def test_metrics_by_kind_of_question():
    seen: list = []
    r = evaluate(ITEMS, scripted(TABLE, seen))
    assert (r.answerable, r.off_topic, r.uncovered) == (4, 1, 1)
    assert r.hit_at_1 == pytest.approx(2 / 4) and r.hit_at_3 == pytest.approx(3 / 4)
    assert r.mentioned_only == pytest.approx(1 / 4) and r.false_abstention == 0
    assert r.off_topic_abstention == 1.0 and r.off_topic_confident == 0.0
    assert r.uncovered_abstention == 0.0 and r.uncovered_confident == 1.0
    assert r.followup_hit_at_1 == 1.0
    # the follow-up was asked after its context, with the passages the context's answer quoted
    assert ("and in finance?", (Turn("how is ml used?", ("ml",)),)) in seen


def test_per_style_and_calibration():
    r = evaluate(ITEMS, scripted(TABLE))
    assert r.by_style["paraphrase"] == {"n": 2, "hit_at_1": 0.0, "hit_at_3": 0.5, "false_abstention": 0.0}
    assert r.by_style["chat"]["hit_at_1"] == 1.0
    # high: "what is ml" right, the uncovered one wrong, the follow-up (and its context is not counted) right
    assert r.calibration["high"] == {"n": 3, "right": pytest.approx(2 / 3)}
    assert r.calibration["medium"] == {"n": 1, "right": 0.0}
    assert r.calibration["low"] == {"n": 1, "right": 0.0}
    text = r.format()
    assert "paraphrase" in text and "high" in text and "follow-up hit@1" in text


def test_compare_counts_questions_won_and_lost():
    better = dict(TABLE) | {"gans again": ("answer", Confidence.HIGH, ["gan"]), "what is ml": ("abstain", None, [])}
    c = compare(ITEMS, scripted(TABLE), scripted(better))
    assert (c.won, c.lost) == (1, 1)  # B fixes "gans again", loses "what is ml"
    assert c.both + c.neither + c.won + c.lost == 4
    assert "paired hit@1" in c.format("a", "b")


def test_eval_file_lines(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text(
        json.dumps({"q": "x", "gold": ["y"], "style": "chat"})
        + "\n"
        + json.dumps({"context": ["earlier"], "q": "and?", "gold": ["z"]})
        + "\n",
        encoding="utf-8",
    )
    a, b = load_eval_file(path)
    assert (a.style, b.context) == ("chat", ["earlier"])
    path.write_text(json.dumps({"q": "x", "context": "not a list"}) + "\n", encoding="utf-8")
    with pytest.raises(EvalFileError, match=r"set\.jsonl:1"):
        load_eval_file(path)
