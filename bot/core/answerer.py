"""Turns a question into an Answer: normalise, retrieve, decide how much the knowledge covers it, pick quotes.

Three outcomes, not two:
- answer: quotes that answer it, with a calibrated confidence (high or medium);
- mentioned only: the knowledge touches on the topic but nothing says it answers the question: the
  closest quote, labelled as such, with low confidence;
- abstain: the knowledge is about something else; the closest sections are listed.

Every threshold and weight is read from the index (the profile it was built with), see DecisionSettings.
A follow-up in a conversation ("and in finance?") is read together with the question before it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.followup import fragment, knowledge_pairs, slots, substitute
from bot.core.links import fragment_target, passage_link, section_anchors, source_kind
from bot.core.normalize import SmallTalk, about_question, has_words, normalize_question, small_talk
from bot.core.retriever import Candidate, HybridRetriever, Retrieval, settings_from
from bot.core.steering import SteerDecision, Steering, apply_decision
from bot.core.types import Answer, AnswerKind, Confidence, Quote, Turn

log = logging.getLogger(__name__)

HELP_TEXT = (
    "I answer questions about the knowledge I was given by quoting the passages that answer them. "
    "Ask me something like “What is the difference between machine learning and generative AI?”, "
    "or “what do you cover?” for the list of topics."
)
SMALLTALK_REPLIES = {
    SmallTalk.GREETING: "Hi! " + HELP_TEXT,
    SmallTalk.HELP: HELP_TEXT,
    SmallTalk.THANKS: "You're welcome! Ask me anything else about the knowledge.",
}
EMPTY_TEXT = "I didn't catch a question there. " + HELP_TEXT
ABSTAIN_TEXT = "The knowledge I have doesn't cover that, so I won't guess."
MENTIONED_TEXT = "The knowledge only touches on this; it may not answer your question:"
ANSWER_TEXT = "Here is what the knowledge says:"
TAUGHT_NOT_COVERED_TEXT = "An admin marked questions like this as not covered by the knowledge, so I won't guess."
# Documents usually say what they are about in so many words ("This article will discuss ...").
ABOUT_PROBE = "This article will discuss and explain what it is about"
ABOUT_CANDIDATES = 5
MAX_LISTED_SECTIONS = 12

# Openings and words that make a message lean on the one before it ("and in finance?", "what about
# its downsides?", "same but for schools"): such a follow-up is read with the conversation's context.
_ELLIPTICAL_START = re.compile(
    r"^(and|but|also|so|then|or|plus|what about|how about|same|ok and|okay and|why|why not|how come|"
    r"really|examples?|any examples?|for example|like what|such as|more|tell me more|in what way)\b",
    re.IGNORECASE,
)
_REFERRING = re.compile(
    r"\b(it|its|it's|they|them|their|theirs|that|this|those|these|one|ones|same|there|other|former|latter)\b",
    re.IGNORECASE,
)
ELLIPTICAL_MAX_WORDS = 8


@dataclass(frozen=True)
class DecisionSettings:
    """When to answer, only mention, or abstain, and how sure an answer is: read from the manifest."""

    abstain_min_z: float
    abstain_min_maxsim: float
    confidence_features: tuple[str, ...]
    confidence_coef: tuple[float, ...]
    confidence_intercept: float
    high_probability: float
    medium_probability: float
    max_quotes: int
    quote_margin_z: float
    followup_weight: float
    maxsim_default: float = 0.5  # stands in for maxsim when the index has no token vectors
    # slot substitution of elliptical follow-ups (bot/core/followup.py); off in indexes built before it
    followup_rewrite: bool = False
    followup_preposition_bonus: float = 0.0
    followup_neighbour_bonus: float = 0.0  # z added to the passages next to the one quoted for the turn before

    @classmethod
    def from_manifest(cls, retrieval: dict) -> DecisionSettings:
        values = settings_from(cls, retrieval)
        values["confidence_features"] = tuple(values["confidence_features"])
        values["confidence_coef"] = tuple(float(c) for c in values["confidence_coef"])
        return cls(**values)


def features(found: Retrieval, settings: DecisionSettings) -> dict[str, float]:
    """What the decision looks at, for the best candidate."""
    top = found.candidates[0]
    second = found.candidates[1] if len(found.candidates) > 1 else None
    maxsim = top.maxsim if not math.isnan(top.maxsim) else settings.maxsim_default
    maxsim_low = top.maxsim_low if not math.isnan(top.maxsim_low) else settings.maxsim_default
    return {
        "z": top.z,
        "score": top.score,
        "maxsim": maxsim,
        "maxsim_low": maxsim_low,
        "margin": top.score - second.score if second else top.score,
        "lexical": top.lexical,
        "known_fraction": found.known_fraction,
    }


def probability(feats: dict[str, float], settings: DecisionSettings) -> float:
    """The calibrated chance that the first quote answers the question (the profile's logistic model)."""
    x = settings.confidence_intercept + sum(
        c * feats[name] for name, c in zip(settings.confidence_features, settings.confidence_coef, strict=True)
    )
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


def covered(found: Retrieval, settings: DecisionSettings) -> bool:
    """Whether the knowledge has anything on the question at all (if not: abstain)."""
    if not found.candidates:
        return False
    top = found.candidates[0]
    if top.z < settings.abstain_min_z:
        return False
    return math.isnan(top.maxsim) or top.maxsim >= settings.abstain_min_maxsim


def looks_elliptical(question: str) -> bool:
    """A short message that opens like a continuation or points back ("and in finance?", "its downsides?")."""
    if len(question.split()) > ELLIPTICAL_MAX_WORDS:
        return False
    return bool(_ELLIPTICAL_START.match(question.strip()) or _REFERRING.search(question))


def _section_anchors(passages: Sequence[dict]) -> dict[tuple[str, tuple[str, ...]], str]:
    """(document, section path) -> the heading's anchor in that document (repository links)."""
    by_doc: dict[str, list[dict]] = {}
    for p in passages:
        by_doc.setdefault(p["doc_path"], []).append(p)
    anchors: dict[tuple[str, tuple[str, ...]], str] = {}
    for doc, ps in by_doc.items():
        ordered = sorted(ps, key=lambda p: p["position"])
        for path, anchor in section_anchors(tuple(p["section_path"]) for p in ordered).items():
            anchors[(doc, path)] = anchor
    return anchors


class Answerer:
    def __init__(self, retriever: HybridRetriever, *, index_version: str, steering: Steering | None = None):
        """`steering`: what admins taught (bot/core/steering.py); None answers from retrieval alone."""
        self.retriever = retriever
        self.steering = steering
        self.index_version = index_version
        self.settings = DecisionSettings.from_manifest(retriever.index.retrieval)
        self.passages = retriever.index.passages
        documents = retriever.index.manifest.get("documents", [])
        self.doc_urls = {d["path"]: d.get("source_url") for d in documents}
        self.doc_link_kinds = {d["path"]: source_kind(d.get("source_url"), d.get("source_kind")) for d in documents}
        self.section_anchors = _section_anchors(self.passages)
        self._sections: list[str] | None = None
        self._pairs: frozenset[tuple[str, str]] | None = None
        self._positions: dict[str, tuple[str, int]] | None = None

    def answer(self, question: str, *, context: Sequence[Turn] = ()) -> Answer:
        started = time.perf_counter()
        normalized = normalize_question(question)

        def done(kind: AnswerKind, **fields) -> Answer:
            return Answer(
                question=question,
                normalized_question=normalized,
                kind=kind,
                index_version=self.index_version,
                took_ms=(time.perf_counter() - started) * 1000,
                **fields,
            )

        if not normalized or not has_words(normalized):
            return done(AnswerKind.EMPTY, confidence=None, message=EMPTY_TEXT)
        chat = small_talk(normalized)
        if chat is not None:
            return done(AnswerKind.SMALLTALK, confidence=None, message=SMALLTALK_REPLIES[chat])

        if about_question(normalized):
            return self._about(done)

        found, p, context_used = self._retrieve(normalized, context)
        decision = None if context_used else self._steer(found)
        if decision is not None and decision.abstain:
            return done(
                AnswerKind.ABSTAIN,
                confidence=None,
                message=TAUGHT_NOT_COVERED_TEXT,
                closest_sections=self._closest_sections(found),
                extra=self._debug(found, p) | _taught(decision),
            )
        if decision is not None:
            found = apply_decision(found, decision)
            if not decision.already_first:
                p = probability(features(found, self.settings), self.settings)
            if decision.close:  # an admin said this passage answers this question: at least medium confidence
                p = max(p, self.settings.medium_probability)
        debug = self._debug(found, p) | {"context_used": context_used} | _taught(decision)
        if not (decision is not None and decision.close) and not covered(found, self.settings):
            return done(
                AnswerKind.ABSTAIN,
                confidence=None,
                message=ABSTAIN_TEXT,
                closest_sections=self._closest_sections(found),
                extra=debug,
            )
        quotes = tuple(self._quote(c) for c in self._choose(found))
        if p < self.settings.medium_probability:
            # the knowledge touches on the topic, but nothing says it answers this question
            return done(
                AnswerKind.MENTIONED, confidence=Confidence.LOW, quotes=quotes, message=MENTIONED_TEXT, extra=debug
            )
        return done(
            AnswerKind.ANSWER,
            confidence=Confidence.HIGH if p >= self.settings.high_probability else Confidence.MEDIUM,
            quotes=quotes,
            message=ANSWER_TEXT,
            extra=debug,
        )

    def _steer(self, found: Retrieval) -> SteerDecision | None:
        if self.steering is None or not found.candidates:
            return None
        try:
            return self.steering.steer(self.retriever, found)
        except Exception:  # what was taught never costs an answer: answered from retrieval alone
            log.exception("steering by the taught pairs failed; answering without them")
            return None

    def candidates(self, question: str, limit: int = 5) -> list[Quote]:
        """The passages retrieval ranks highest for `question` (before any teaching), best first, without
        passages contained in one already listed: what an admin picks from to teach the answer."""
        normalized = normalize_question(question)
        if not normalized or not has_words(normalized):
            return []
        chosen: list[Candidate] = []
        for cand in self.retriever.retrieve(normalized).candidates:
            if any(self._overlaps(cand.row, c.row) for c in chosen):
                continue
            chosen.append(cand)
            if len(chosen) == limit:
                break
        return [self._quote(c) for c in chosen]

    def _choose(self, found: Retrieval) -> list[Candidate]:
        """The best candidate, and up to max_quotes - 1 more that score nearly as well and are covered."""
        top = found.candidates[0]
        chosen = [top]
        for cand in found.candidates[1:]:
            if len(chosen) == self.settings.max_quotes or cand.score < top.score - self.settings.quote_margin_z:
                break
            if cand.z < self.settings.abstain_min_z or any(self._overlaps(cand.row, c.row) for c in chosen):
                continue
            chosen.append(cand)
        return chosen

    def _retrieve(self, question: str, context: Sequence[Turn]) -> tuple[Retrieval, float, bool]:
        """Retrieve on the question alone or, for a follow-up that leans on what came before, with the
        conversation's previous question mixed in. Returns (retrieval, probability, context used)."""
        earlier = [t.question for t in context if t.question.strip()][-1:]
        if earlier and self.settings.followup_weight > 0 and self.settings.followup_rewrite:
            resolved = self.resolve(question, earlier[0])
            if resolved is not None:  # a bare fragment: the substituted question, on its own
                found = self.retriever.retrieve(resolved)
                if found.candidates:
                    return found, probability(features(found, self.settings), self.settings), True
        alone = self.retriever.retrieve(question)
        p_alone = probability(features(alone, self.settings), self.settings) if alone.candidates else 0.0
        if not earlier or self.settings.followup_weight <= 0:
            return alone, p_alone, False
        elliptical = looks_elliptical(question)
        if not elliptical and covered(alone, self.settings) and p_alone >= self.settings.high_probability:
            return alone, p_alone, False  # a new, self-contained question: answered on its own
        joint = self.retriever.retrieve(question, context=earlier, context_weight=self.settings.followup_weight)
        if not joint.candidates:
            return alone, p_alone, False
        joint = self._near_previous(joint, context[-1].passage_ids[:1])
        p_joint = probability(features(joint, self.settings), self.settings)
        if elliptical or p_joint > p_alone:
            return joint, p_joint, True
        return alone, p_alone, False

    def _near_previous(self, found: Retrieval, previous: Sequence[str]) -> Retrieval:
        """A follow-up that points back ("who is working on it?", "how do we deal with them?") is often
        answered by the passage next to the one quoted before it: those get `followup_neighbour_bonus`."""
        bonus = self.settings.followup_neighbour_bonus
        if bonus <= 0 or not previous:
            return found
        if self._positions is None:
            self._positions = {p["id"]: (p["doc_path"], p["position"]) for p in self.passages}
        at = self._positions.get(previous[0])
        if at is None:
            return found
        near = {(at[0], at[1] - 1), (at[0], at[1] + 1)}
        rescored = [
            dataclasses.replace(c, score=c.score + bonus)
            if (self.passages[c.row]["doc_path"], self.passages[c.row]["position"]) in near
            else c
            for c in found.candidates
        ]
        rescored.sort(key=lambda c: c.score, reverse=True)
        return dataclasses.replace(found, candidates=rescored)

    def resolve(self, question: str, earlier: str) -> str | None:
        """The earlier question with the follow-up's fragment in place of its closest phrase ("how is ML
        used in healthcare?" + "and in finance?" -> "how is ML used in finance"), or None when the
        follow-up is not a bare fragment."""
        frag = fragment(question)
        if frag is None:
            return None
        if self._pairs is None:
            self._pairs = knowledge_pairs(p["text"] for p in self.passages)
        words, found = slots(normalize_question(earlier), self._pairs)  # a thread's turn keeps its markup
        found = [s for s in found if s.text.lower() != frag.text.lower()]
        if not found:
            return None
        vectors = self.retriever.encoders[0].encode_queries([frag.text] + [s.text for s in found])
        bonus = self.settings.followup_preposition_bonus
        scores = [
            float(v @ vectors[0]) + (bonus if frag.after_preposition and s.after_preposition else 0.0)
            for s, v in zip(found, vectors[1:], strict=True)
        ]
        best = max(range(len(found)), key=scores.__getitem__)
        return substitute(words, found[best], frag.text)

    def _about(self, done) -> Answer:
        """What the knowledge covers: its documents and sections, and the passage that says what it is about."""
        documents = self.retriever.index.manifest.get("documents", [])
        sections = self._top_sections()
        titles = "; ".join(f"“{d['title']}”" for d in documents[:MAX_LISTED_SECTIONS])
        if len(documents) > MAX_LISTED_SECTIONS:
            titles += f" and {len(documents) - MAX_LISTED_SECTIONS:,} more"
        listed = " · ".join(sections[:MAX_LISTED_SECTIONS]) + (" · …" if len(sections) > MAX_LISTED_SECTIONS else "")
        message = f"I answer from {len(documents)} document(s): {titles}."
        if listed:
            message += f" Sections: {listed}."
        found = self.retriever.retrieve(ABOUT_PROBE)
        # documents say what they are about near their start: of the passages closest to the probe, the
        # earliest in its document
        near = found.candidates[:ABOUT_CANDIDATES]
        quotes = tuple(self._quote(c) for c in sorted(near, key=lambda c: self.passages[c.row]["position"])[:1])
        return done(AnswerKind.ANSWER, confidence=Confidence.HIGH, quotes=quotes, message=message)

    def _top_sections(self) -> list[str]:
        """The knowledge's top-level sections in order (up to one more than are listed); found once."""
        if self._sections is None:
            seen: dict[str, None] = {}
            for p in self.passages:
                if p["section_path"]:
                    seen.setdefault(p["section_path"][0])
                    if len(seen) > MAX_LISTED_SECTIONS:
                        break
            self._sections = list(seen)
        return self._sections

    def _overlaps(self, a: int, b: int) -> bool:
        ta, tb = self.passages[a]["text"], self.passages[b]["text"]
        return ta in tb or tb in ta

    def _quote(self, c: Candidate) -> Quote:
        p = self.passages[c.row]
        sentences = p["sentences"]
        highlight = tuple(sentences[c.best_sentence]) if len(sentences) > 1 else None
        section_path = tuple(p["section_path"])
        return Quote(
            text=p["text"],
            document=p["doc_title"],
            doc_path=p["doc_path"],
            section=" > ".join(section_path) if section_path else p["doc_title"],
            section_path=section_path,
            score=round(float(c.score), 4),
            passage_id=p["id"],
            source_url=self.doc_urls.get(p["doc_path"]),
            highlight=highlight,  # type: ignore[arg-type]
            link=passage_link(
                self.doc_urls.get(p["doc_path"]),
                self.doc_link_kinds.get(p["doc_path"]),
                text=fragment_target(p["text"], highlight),  # type: ignore[arg-type]
                anchor=self.section_anchors.get((p["doc_path"], section_path), ""),
            ),
        )

    def _closest_sections(self, found: Retrieval) -> tuple[str, ...]:
        seen: list[str] = []
        for cand in found.candidates:
            p = self.passages[cand.row]
            name = " > ".join(p["section_path"]) or p["doc_title"]
            if name not in seen:
                seen.append(name)
            if len(seen) == 3:
                break
        return tuple(seen)

    def _debug(self, found: Retrieval, p: float) -> dict:
        if not found.candidates:
            return {"probability": 0.0}
        return {"probability": round(p, 4)} | {
            k: round(v, 4) for k, v in features(found, self.settings).items() if not math.isnan(v)
        }


def _taught(decision: SteerDecision | None) -> dict:
    """The answer's record of the taught pair that steered it."""
    if decision is None:
        return {}
    return {"taught_pair": decision.pair_id, "taught_similarity": round(decision.similarity, 4)}
