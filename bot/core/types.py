"""Core data types shared by the answering core, the conversation layer and every adapter."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class Confidence(str, Enum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class AnswerKind(str, Enum):
    ANSWER = "answer"  # quotes that answer the question
    MENTIONED = "mentioned"  # the knowledge only touches on it: the closest quote, low confidence
    ABSTAIN = "abstain"  # the knowledge does not cover the question
    SMALLTALK = "smalltalk"  # greeting / help / thanks: a short help reply, no passage
    EMPTY = "empty"  # nothing usable was asked (empty, only emoji, only a mention)


@dataclass(frozen=True)
class Quote:
    """One verbatim passage of the knowledge, with where it comes from."""

    text: str  # the passage, verbatim as it stands in the document
    document: str  # document title
    doc_path: str  # path of the document relative to the knowledge folder
    section: str  # heading path joined with " > "
    section_path: tuple[str, ...]
    score: float  # fused relevance: standard deviations above what an unrelated question scores
    passage_id: str
    source_url: str | None = None
    # character span [start, end) in `text` of the sentence that best answers the question
    highlight: tuple[int, int] | None = None

    @property
    def best_sentence(self) -> str | None:
        if self.highlight is None:
            return None
        return self.text[self.highlight[0] : self.highlight[1]]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["section_path"] = list(self.section_path)
        d["highlight"] = list(self.highlight) if self.highlight else None
        d["best_sentence"] = self.best_sentence
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Quote:
        """The inverse of to_dict (derived keys such as best_sentence are ignored)."""
        highlight = data.get("highlight")
        return cls(
            text=str(data["text"]),
            document=str(data["document"]),
            doc_path=str(data["doc_path"]),
            section=str(data["section"]),
            section_path=tuple(str(s) for s in data.get("section_path") or ()),
            score=float(data["score"]),
            passage_id=str(data["passage_id"]),
            source_url=data.get("source_url"),
            highlight=(int(highlight[0]), int(highlight[1])) if highlight else None,
        )


@dataclass(frozen=True)
class Answer:
    """The platform-neutral result of answering one question; adapters render it."""

    question: str  # as asked
    normalized_question: str
    kind: AnswerKind
    confidence: Confidence | None
    quotes: tuple[Quote, ...] = ()
    # for an abstention: the sections that came closest, so the user knows what *is* covered
    closest_sections: tuple[str, ...] = ()
    message: str = ""  # one plain sentence that leads the reply
    index_version: str = ""
    took_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def abstained(self) -> bool:
        """No quote offered as an answer (abstention, small talk, nothing asked)."""
        return self.kind not in (AnswerKind.ANSWER, AnswerKind.MENTIONED)

    @property
    def passage_ids(self) -> tuple[str, ...]:
        return tuple(q.passage_id for q in self.quotes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "normalized_question": self.normalized_question,
            "kind": self.kind.value,
            "abstained": self.abstained,
            "confidence": self.confidence.value if self.confidence else None,
            "message": self.message,
            "quotes": [q.to_dict() for q in self.quotes],
            "closest_sections": list(self.closest_sections),
            "index_version": self.index_version,
            "took_ms": round(self.took_ms, 3),
            **({"context_used": self.extra["context_used"]} if "context_used" in self.extra else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        """The inverse of to_dict, for an answer shown again (derived keys such as abstained are ignored);
        a missing question is ''."""
        confidence = data.get("confidence")
        return cls(
            question=str(data.get("question") or ""),
            normalized_question=str(data.get("normalized_question") or ""),
            kind=AnswerKind(data["kind"]),
            confidence=Confidence(confidence) if confidence else None,
            quotes=tuple(Quote.from_dict(q) for q in data.get("quotes") or ()),
            closest_sections=tuple(str(s) for s in data.get("closest_sections") or ()),
            message=str(data.get("message") or ""),
            index_version=str(data.get("index_version") or ""),
            took_ms=float(data.get("took_ms") or 0.0),
        )


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation: what was asked and which passages were quoted."""

    question: str
    passage_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "passage_ids": list(self.passage_ids)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        return cls(str(data.get("question", "")), tuple(str(p) for p in data.get("passage_ids", ())))
