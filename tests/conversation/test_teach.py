"""The shared logic behind "Teach qabot" (bot/conversation/teach.py) through ConversationService, on SQLite and
PostgreSQL: the offer (admins only, the candidates as buttons), the pick (stored once, who as a hash), "not
covered", `/qabot taught` and `taught undo`, the note after a rebuild when a taught passage is gone, and
`/qabot report --since`. The engine is a small fake with candidates; steering is tested with the real
engine in tests/core/test_teach_steering.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.conversation.models import Action, ReplyKind
from bot.conversation.teach import Teaching, missing_note
from bot.core.types import Quote
from tests.conversation.conftest import ML_PASSAGE, QUANTUM_PASSAGE, FakeBuildResult, FakeEngine, msg

MARKET = "The AI market is projected to reach 740 billion by 2030."


@dataclass
class TeachEngine(FakeEngine):
    """FakeEngine plus what teaching reads: the top passages for a question, and the passages served."""

    texts: list[str] = field(default_factory=lambda: [ML_PASSAGE, QUANTUM_PASSAGE, MARKET])

    def candidates(self, question: str, limit: int = 5) -> list[Quote]:
        return [
            Quote(t, "ML vs GenAI", "ml.md", f"Section {n}", (f"Section {n}",), 1.0 - n / 10, f"p{n}")
            for n, t in enumerate(self.texts[:limit], start=1)
        ]

    @property
    def passages(self) -> list[dict]:
        return [{"id": f"p{n}", "text": t} for n, t in enumerate(self.texts, start=1)]


def _admin(text: str, **kw):
    return msg(text, is_admin=True, private=True, **kw)


def test_an_admin_is_offered_the_candidates_and_a_pick_is_stored_once(make_service, store):
    invalidated = []
    engine = TeachEngine()
    service = make_service(engine=engine)
    service.teaching = Teaching(engine, store, invalidate=lambda: invalidated.append(1))
    offer = service.teach_offer(_admin("what does ML do?"))
    assert offer.kind is ReplyKind.ADMIN and offer.private and offer.teach is not None
    assert [c.number for c in offer.teach.candidates] == [1, 2, 3]
    assert [b.action_id for b in offer.buttons] == [Action.TEACH_PICK] * 3 + [Action.TEACH_NOT_COVERED]
    assert "Section 2" in offer.text and MARKET[:40] in offer.text
    value = offer.buttons[2].value  # the market passage

    done = service.teach_pick(value, platform="slack", user_id="UADMIN", is_admin=True)
    assert done.kind is ReplyKind.ADMIN and "Taught (#" in done.text and "/qabot taught undo" in done.text
    assert invalidated == [1]  # the steering re-reads the pairs at once
    (pair,) = store.taught_pairs()
    assert pair.passage_text == MARKET and pair.section == "Section 3" and pair.passage_id == "p3"
    assert pair.question == "what does ML do?" and pair.user_hash == store.hash_user("slack", "UADMIN")
    assert pair.index_version == engine.version

    again = service.teach_pick(value, platform="slack", user_id="UADMIN", is_admin=True)
    assert again.kind is ReplyKind.ERROR and "expired or was already made" in again.text
    assert len(store.taught_pairs()) == 1
    for broken in ("", "nothing", "x:", "abc:9", offer.buttons[0].value.split(":")[0] + ":99"):
        assert service.teach_pick(broken, platform="slack", user_id="UADMIN", is_admin=True).kind is ReplyKind.ERROR


def test_not_covered_and_teaching_the_same_question_again(make_service, store):
    service = make_service(engine=TeachEngine())
    first = service.teach_offer(_admin("What's the weather in Paris?"))
    service.teach_pick(first.buttons[0].value, platform="slack", user_id="UADMIN", is_admin=True)
    second = service.teach_offer(_admin("what's the weather in paris?"))
    done = service.teach_pick(second.buttons[-1].value, platform="discord", user_id="42", is_admin=True)
    assert "Marked as not covered" in done.text and "replaces #1" in done.text
    (pair,) = store.taught_pairs()
    assert pair.not_covered and pair.platform == "discord"


def test_only_admins_teach(make_service, store):
    service = make_service(engine=TeachEngine())
    refused = service.teach_offer(msg("what does ML do?", private=True))
    assert refused.kind is ReplyKind.REFUSED and not refused.buttons
    offer = service.teach_offer(_admin("what does ML do?"))
    no = service.teach_pick(offer.buttons[0].value, platform="slack", user_id="U1", is_admin=False)
    assert no.kind is ReplyKind.REFUSED and store.taught_pairs() == []
    empty = service.teach_offer(_admin("   "))
    assert empty.kind is ReplyKind.HELP and "no question" in empty.text


def test_taught_command_lists_and_undoes(make_service, store):
    engine = TeachEngine()
    service = make_service(engine=engine)
    assert "Nothing has been taught yet" in service.handle_admin(_admin("taught"), "taught").text
    for q, choice in (("what does ML do?", 0), ("how big is the AI market?", 2), ("gym hours?", -1)):
        offer = service.teach_offer(_admin(q))
        service.teach_pick(offer.buttons[choice].value, platform="slack", user_id="UADMIN", is_admin=True)
    listed = service.handle_admin(_admin("taught"), "taught").text
    assert "#1 “what does ML do?”" in listed and "#3 “gym hours?” → not covered" in listed
    assert "UADMIN" not in listed and store.hash_user("slack", "UADMIN")[:12] in listed

    engine.texts = [ML_PASSAGE, QUANTUM_PASSAGE]  # a rebuild dropped the market passage
    listed = service.handle_admin(_admin("taught"), "taught").text
    assert "#2 “how big is the AI market?”" in listed and "⚠ passage no longer in the index" in listed
    assert "1 pair(s) point at a passage the index no longer has" in listed

    assert "Undone: taught pair #2" in service.handle_admin(_admin("taught undo 2"), "taught").text
    assert "no taught pair #2" in service.handle_admin(_admin("/qabot taught undo #2"), "taught").text
    assert "no taught pair #2" in service.handle_admin(_admin("/taught undo 2"), "taught").text  # the terminal
    assert "Usage" in service.handle_admin(_admin("taught remove 1"), "taught").text
    assert [p.pair_id for p in store.taught_pairs()] == [1, 3]
    refused = service.handle_admin(msg("taught undo 1"), "taught")
    assert refused.kind is ReplyKind.REFUSED and len(store.taught_pairs()) == 2


def test_a_reindex_that_loses_a_taught_passage_says_so(make_service, store):
    engine = TeachEngine()

    def builder(*_a, **_k):
        engine.texts = [ML_PASSAGE]  # the new version lost the market passage
        return FakeBuildResult("v2", 1, 1, 0.1)

    service = make_service(engine=engine, builder=builder)
    offer = service.teach_offer(_admin("how big is the AI market?"))
    service.teach_pick(offer.buttons[2].value, platform="slack", user_id="UADMIN", is_admin=True)
    reply = service.handle_admin(_admin("reindex"), "reindex")
    assert reply.kind is ReplyKind.ADMIN, reply.text
    assert "1 taught pair(s) point at a passage this index no longer has (#1)" in reply.text


def test_missing_note_reattaches_by_normalised_whitespace():
    from bot.conversation.stores import TaughtPair

    def pair(i: int, text: str) -> TaughtPair:
        return TaughtPair(i, "q", "q", text, "ml.md", "S", "p", "v1", "slack", "h", 0.0)

    passages = [{"text": "Machine Learning (ML) focuses on\ndeveloping  algorithms."}]
    assert missing_note([pair(1, "Machine Learning (ML) focuses on developing algorithms.")], passages) == ""
    assert "(#2)" in missing_note([pair(2, "Something else entirely.")], passages)


def test_report_since_in_chat(make_service, store, clock):
    service = make_service(engine=TeachEngine())
    reply = service.handle_admin(_admin("report --since 7d"), "report")
    assert reply.kind is ReplyKind.ADMIN and reply.report is not None and reply.report.since is not None
    assert service.handle_admin(_admin("report"), "report").report.since is None
    bad = service.handle_admin(_admin("report --since someday"), "report")
    assert bad.kind is ReplyKind.HELP and "--since must be a duration" in bad.text
    assert "needs a value" in service.handle_admin(_admin("report --since"), "report").text
