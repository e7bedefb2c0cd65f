"""Turns a question into an Answer: normalise, retrieve, decide whether the knowledge covers it, pick quotes."""

from __future__ import annotations

import time

from bot.core.normalize import SmallTalk, about_question, has_words, normalize_question, small_talk
from bot.core.retriever import Candidate, HybridRetriever, Retrieval
from bot.core.types import Answer, AnswerKind, Confidence, Quote

MAX_QUOTES = 3
# Abstention: below this similarity the best passage is about something else.
MIN_SIMILARITY = 0.30
# Between MIN and this, every content word of the question must occur in the knowledge (after typo
# correction).
# A weak match on a question about a term the knowledge never uses ("context window", "DBSCAN") is
# a question about something else.
WEAK_SIMILARITY = 0.40
HIGH_SIMILARITY = 0.60
MEDIUM_SIMILARITY = 0.45
# Further quotes must score close to the first one: a quote that is clearly worse is noise.
QUOTE_MARGIN = 0.10
SECONDARY_SIMILARITY_DROP = 0.10

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
# Documents usually say what they are about in so many words ("This article will discuss ...").
ABOUT_PROBE = "This article will discuss and explain what it is about"
MAX_LISTED_SECTIONS = 12


def _similarity(c: Candidate) -> float:
    return max(c.dense, c.sentence)


class Answerer:
    def __init__(self, retriever: HybridRetriever, *, index_version: str):
        self.retriever = retriever
        self.index_version = index_version
        self.passages = retriever.index.passages
        self.doc_urls = {d["path"]: d.get("source_url") for d in retriever.index.manifest.get("documents", [])}

    def answer(self, question: str) -> Answer:
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

        found = self.retriever.retrieve(normalized)
        if not found.candidates or not self._covered(found):
            return done(
                AnswerKind.ABSTAIN,
                confidence=None,
                message=ABSTAIN_TEXT,
                closest_sections=self._closest_sections(found),
                extra=self._debug(found),
            )
        top = found.candidates[0]
        chosen = [top]
        for cand in found.candidates[1:]:
            if len(chosen) == MAX_QUOTES:
                break
            floor = max(MIN_SIMILARITY, _similarity(top) - SECONDARY_SIMILARITY_DROP)
            if cand.score < top.score - QUOTE_MARGIN or _similarity(cand) < floor:
                break
            if any(self._overlaps(cand.row, c.row) for c in chosen):
                continue
            chosen.append(cand)
        quotes = tuple(self._quote(c) for c in chosen)
        return done(
            AnswerKind.ANSWER,
            confidence=self._confidence(found),
            quotes=quotes,
            message="Here is what the knowledge says:",
            extra=self._debug(found),
        )

    def _about(self, done) -> Answer:
        """What the knowledge covers: its documents and sections, and the passage that says what it is about."""
        documents = self.retriever.index.manifest.get("documents", [])
        sections: list[str] = []
        for p in self.passages:
            if p["section_path"] and p["section_path"][0] not in sections:
                sections.append(p["section_path"][0])
        titles = "; ".join(f"“{d['title']}”" for d in documents)
        listed = " · ".join(sections[:MAX_LISTED_SECTIONS]) + (" · …" if len(sections) > MAX_LISTED_SECTIONS else "")
        message = f"I answer from {len(documents)} document(s): {titles}."
        if listed:
            message += f" Sections: {listed}."
        found = self.retriever.retrieve(ABOUT_PROBE)
        quotes = tuple(self._quote(c) for c in found.candidates[:1])
        return done(AnswerKind.ANSWER, confidence=Confidence.HIGH, quotes=quotes, message=message)

    def _covered(self, found: Retrieval) -> bool:
        sim = _similarity(found.candidates[0])
        if sim < MIN_SIMILARITY:
            return False
        return not (sim < WEAK_SIMILARITY and found.known_fraction < 1.0)

    def _confidence(self, found: Retrieval) -> Confidence:
        top = found.candidates[0]
        sim = _similarity(top)
        if sim >= HIGH_SIMILARITY and top.lexical > 0:
            return Confidence.HIGH
        if sim >= MEDIUM_SIMILARITY:
            return Confidence.MEDIUM
        return Confidence.LOW

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

    @staticmethod
    def _debug(found: Retrieval) -> dict:
        top = found.candidates[0] if found.candidates else None
        return {
            "similarity": round(_similarity(top), 4) if top else 0.0,
            "known_fraction": round(found.known_fraction, 3),
        }
