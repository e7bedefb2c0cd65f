"""Teach from chat (issue 9 item 3): an admin fixes a miss where it happened.

"Teach qabot" on a question (a Slack message shortcut, a Discord message context-menu command) shows the
passages retrieval ranks highest for it, each shortened with its section, as buttons, and "Not covered".
The pick is stored as a taught pair (who, as a keyed hash; when; the question; the passage's text,
document and section) or as "not covered". `/qabot taught` and `qabot taught list|undo` list and undo them.
The pairs steer retrieval for the same and similar questions (bot/core/steering.py, given to the engine).

Everything here is platform-neutral: the adapters only translate the shortcut, the buttons and the replies.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.conversation.models import Action, Button, IncomingMessage, Reply, ReplyKind
from bot.conversation.stores import TaughtPair, TaughtPairs, TeachOffer
from bot.core.errors import IndexProblem
from bot.core.normalize import normalize_question
from bot.core.split import clip
from bot.core.taught import TaughtExample, passage_lookup, reattach, squash

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)

CANDIDATES = 5  # passages shown to the admin
OFFER_KEEP_S = 24 * 3600.0  # an offer not picked from within a day is dropped
SHORT_PASSAGE_CHARS = 240  # a candidate as shown on its button's line
NOT_COVERED_LABEL = "Not covered"

TEXT_TEACH_NOT_ADMIN = "Sorry, only admins can teach me. Ask an admin to teach me the answer to this question."
TEXT_TEACH_EMPTY = "That message has no question in it that I could teach."
TEXT_TEACH_INTRO = "Which passage answers this question? Pick one, or “Not covered” if the knowledge doesn't answer it."
TEXT_TEACH_GONE = "That teaching choice has expired or was already made. Run “Teach qabot” on the question again."
TEXT_TEACH_NOT_SAVED = "I couldn't save that: the database is busy or unavailable. Nothing changed; try again."
TEXT_TAUGHT_NONE = "Nothing has been taught yet. Use “Teach qabot” on a question (message menu ⋯ > Apps)."
TEXT_TAUGHT_USAGE = "Usage: `/qabot taught` lists what admins taught; `/qabot taught undo ID` removes one."

# a taught pair against the index being served
STATUS_IN_INDEX = "in the index"
STATUS_MOVED = "in the index (whitespace differs)"
STATUS_GONE = "passage no longer in the index"
STATUS_NOT_COVERED = "not covered"
STATUS_UNKNOWN = "unknown (no index loaded)"


@dataclass(frozen=True)
class TeachCandidate:
    number: int  # 1-based, as on its button
    passage_id: str
    text: str  # the passage, verbatim
    document: str
    doc_path: str
    section: str

    @property
    def short(self) -> str:
        return clip(" ".join(self.text.split()), SHORT_PASSAGE_CHARS)


@dataclass(frozen=True)
class TeachView:
    """What an admin sees after "Teach qabot": the question and the candidates (adapters render it)."""

    offer_id: str
    question: str
    candidates: tuple[TeachCandidate, ...]


def pick_value(offer_id: str, choice: int | None) -> str:
    """A teach button's value: the offer and the candidate's number, or "none" for "Not covered"."""
    return f"{offer_id}:{'none' if choice is None else choice}"


def parse_pick(value: str) -> tuple[str, int | None] | None:
    offer_id, _, choice = value.partition(":")
    if not offer_id or not choice:
        return None
    if choice == "none":
        return offer_id, None
    return (offer_id, int(choice)) if choice.isdigit() else None


def examples_from(store: TaughtPairs) -> Callable[[], list[TaughtExample]]:
    """The steering's source: the store's taught pairs, as examples."""

    def read() -> list[TaughtExample]:
        return [TaughtExample(p.pair_id, p.question, p.passage_text) for p in store.taught_pairs()]

    return read


def pair_status(pair: TaughtPair, passages: Sequence[dict] | None, lookup: dict[str, int] | None = None) -> str:
    """Where a taught pair's passage stands in the index being served."""
    if pair.not_covered:
        return STATUS_NOT_COVERED
    if passages is None:
        return STATUS_UNKNOWN
    row = reattach(pair.passage_text, passages, by_text=lookup)
    if row is None:
        return STATUS_GONE
    return STATUS_IN_INDEX if passages[row]["text"] == pair.passage_text else STATUS_MOVED


def pairs_data(pairs: Sequence[TaughtPair], passages: Sequence[dict] | None) -> list[dict[str, Any]]:
    """The taught pairs as dicts (the CLI's --json, the listing), with their status in the index."""
    lookup = passage_lookup(passages) if passages is not None else None
    out = []
    for p in pairs:
        out.append(
            {
                "id": p.pair_id,
                "question": p.question,
                "not_covered": p.not_covered,
                "passage": p.passage_text,
                "document": p.doc_path,
                "section": p.section,
                "status": pair_status(p, passages, lookup),
                "taught_by": p.user_hash[:12],
                "platform": p.platform,
                "taught_at": _iso(p.created_at),
                "index_version": p.index_version,
            }
        )
    return out


def format_pairs(data: Sequence[dict[str, Any]]) -> str:
    """The listing as plain text (chat and the CLI)."""
    if not data:
        return TEXT_TAUGHT_NONE
    lines = [f"Taught pairs ({len(data)}):"]
    for d in data:
        what = (
            "not covered"
            if d["not_covered"]
            else f"{d['section'] or d['document']}: “{clip(squash(d['passage']), 80)}”"
        )
        flag = " ⚠ passage no longer in the index" if d["status"] == STATUS_GONE else ""
        lines.append(
            f"#{d['id']} “{clip(squash(d['question']), 100)}” → {what}{flag} "
            f"(by {d['taught_by']} on {d['platform']}, {d['taught_at'][:16].replace('T', ' ')} UTC)"
        )
    gone = [d for d in data if d["status"] == STATUS_GONE]
    if gone:
        lines.append(
            f"{len(gone)} pair(s) point at a passage the index no longer has and are not used: teach them again, "
            "or remove them with `undo ID`."
        )
    return "\n".join(lines)


def missing_note(pairs: Sequence[TaughtPair], passages: Sequence[dict]) -> str:
    """A line for the build/reindex output naming the taught pairs whose passage the index lost ('' if none)."""
    lookup = passage_lookup(passages)
    gone = [
        p.pair_id for p in pairs if not p.not_covered and reattach(p.passage_text, passages, by_text=lookup) is None
    ]
    if not gone:
        return ""
    ids = ", ".join(f"#{i}" for i in gone)
    return (
        f"{len(gone)} taught pair(s) point at a passage this index no longer has ({ids}); they are not used. "
        "`qabot taught list` shows them; teach those questions again or undo them."
    )


class Teaching:
    """The shared logic behind "Teach qabot", its buttons and `/qabot taught` (the adapters stay thin)."""

    def __init__(
        self,
        engine: Any,
        store: TaughtPairs,
        *,
        invalidate: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ):
        """`engine`: candidates() and passages (the EngineHolder); `invalidate`: tells the steering that
        the taught pairs changed (TaughtSteering.invalidate)."""
        self.engine = engine
        self.store = store
        self.invalidate = invalidate
        self._clock = clock

    # ---- "Teach qabot" on a question ----------------------------------------------------------

    def offer(self, msg: IncomingMessage) -> Reply:
        """The candidates for the question in `msg` (the message the admin picked), as buttons."""
        if not msg.is_admin:
            return Reply(ReplyKind.REFUSED, TEXT_TEACH_NOT_ADMIN, private=True)
        question = msg.text.strip()
        if not normalize_question(question):
            return Reply(ReplyKind.HELP, TEXT_TEACH_EMPTY, private=True)
        try:
            quotes = self.engine.candidates(question, CANDIDATES)
            version = str(self.engine.version)
        except IndexProblem as err:
            return Reply(ReplyKind.ERROR, f"I can't search the knowledge right now: {err.message}", private=True)
        candidates = tuple(
            TeachCandidate(n, q.passage_id, q.text, q.document, q.doc_path, q.section)
            for n, q in enumerate(quotes, start=1)
        )
        offer = TeachOffer(
            offer_id=uuid.uuid4().hex[:20],
            platform=msg.platform,
            question=question,
            candidates=tuple(
                {"passage_id": c.passage_id, "text": c.text, "doc_path": c.doc_path, "section": c.section}
                for c in candidates
            ),
            index_version=version,
            created_at=self._clock(),
        )
        try:
            self.store.save_teach_offer(offer, keep_s=OFFER_KEEP_S)
        except Exception:
            log.exception("could not save a teaching offer")
            return Reply(ReplyKind.ERROR, TEXT_TEACH_NOT_SAVED, private=True)
        view = TeachView(offer.offer_id, question, candidates)
        buttons = tuple(
            Button(Action.TEACH_PICK, f"{c.number}. {clip(c.section, 60)}", pick_value(offer.offer_id, c.number))
            for c in candidates
        ) + (Button(Action.TEACH_NOT_COVERED, NOT_COVERED_LABEL, pick_value(offer.offer_id, None)),)
        return Reply(
            ReplyKind.ADMIN, _offer_text(view), buttons=buttons, private=True, index_version=version, teach=view
        )

    def pick(self, value: str, *, platform: str, user_id: str, is_admin: bool) -> Reply:
        """A teach button: store the pair (or "not covered"), tell the steering."""
        if not is_admin:
            return Reply(ReplyKind.REFUSED, TEXT_TEACH_NOT_ADMIN, private=True)
        parsed = parse_pick(value)
        if parsed is None:
            return Reply(ReplyKind.ERROR, TEXT_TEACH_GONE, private=True)
        offer_id, choice = parsed
        try:
            offer = self.store.take_teach_offer(offer_id)
        except Exception:
            log.exception("could not read a teaching offer")
            return Reply(ReplyKind.ERROR, TEXT_TEACH_NOT_SAVED, private=True)
        if offer is None or (choice is not None and not 1 <= choice <= len(offer.candidates)):
            return Reply(ReplyKind.ERROR, TEXT_TEACH_GONE, private=True)
        chosen = offer.candidates[choice - 1] if choice is not None else None
        try:
            pair, replaced = self.store.add_taught(
                question=offer.question,
                normalized_question=normalize_question(offer.question).lower(),
                passage_text=chosen["text"] if chosen else "",
                doc_path=chosen["doc_path"] if chosen else "",
                section=chosen["section"] if chosen else "",
                passage_id=chosen["passage_id"] if chosen else "",
                index_version=offer.index_version,
                platform=platform,
                user_id=user_id,
            )
        except Exception:
            log.exception("could not store a taught pair")
            try:  # the choice can be made again
                self.store.save_teach_offer(offer, keep_s=OFFER_KEEP_S)
            except Exception:
                pass
            return Reply(ReplyKind.ERROR, TEXT_TEACH_NOT_SAVED, private=True)
        self.invalidate()
        log.info("taught pair #%d stored (%s)", pair.pair_id, "not covered" if pair.not_covered else "a passage")
        question = clip(squash(offer.question), 200)
        if pair.not_covered:
            text = (
                f"Marked as not covered (#{pair.pair_id}): I'll say the knowledge doesn't cover questions like "
                f"“{question}” instead of guessing."
            )
        else:
            text = (
                f"Taught (#{pair.pair_id}): questions like “{question}” now get the passage from "
                f"{pair.section or pair.doc_path}, unless another passage matches them clearly better."
            )
        if replaced:
            text += " (This replaces " + ", ".join(f"#{p.pair_id}" for p in replaced) + ".)"
        text += f" Undo: `/qabot taught undo {pair.pair_id}`."
        return Reply(ReplyKind.ADMIN, text, private=True, extra={"taught": str(pair.pair_id)})

    # ---- listing and undo -----------------------------------------------------------------------

    def passages(self) -> list[dict] | None:
        try:
            return list(self.engine.passages)
        except Exception:  # no usable index: the listing says "unknown"
            return None

    def data(self) -> list[dict[str, Any]]:
        return pairs_data(self.store.taught_pairs(), self.passages())

    def undo(self, pair_id: int) -> str:
        removed = self.store.remove_taught(pair_id)
        if removed is None:
            return f"There is no taught pair #{pair_id} (`/qabot taught` lists them)."
        self.invalidate()
        log.info("taught pair #%d undone", pair_id)
        return f"Undone: taught pair #{pair_id} (“{clip(squash(removed.question), 100)}”) no longer steers answers."

    def admin(self, text: str) -> str:
        """`/qabot taught` and `/qabot taught undo ID` (the words of the command, `taught` first or not)."""
        words = text.split()
        if words and words[0].lstrip("/").lower() == "qabot":
            words = words[1:]
        if words and words[0].lstrip("/").lower() == "taught":  # "/taught ..." in the terminal
            words = words[1:]
        if not words or words[0].lower() == "list":
            return format_pairs(self.data())
        if words[0].lower() == "undo" and len(words) == 2 and words[1].lstrip("#").isdigit():
            return self.undo(int(words[1].lstrip("#")))
        return TEXT_TAUGHT_USAGE

    def missing_note(self) -> str:
        """After a rebuild: the taught pairs whose passage the new index lost ('' if none)."""
        passages = self.passages()
        if passages is None:
            return ""
        try:
            return missing_note(self.store.taught_pairs(), passages)
        except Exception:
            log.exception("could not check the taught pairs against the new index")
            return ""


def _offer_text(view: TeachView) -> str:
    lines = [TEXT_TEACH_INTRO, f"Question: “{clip(squash(view.question), 300)}”"]
    for c in view.candidates:
        lines.append(f"{c.number}. {c.section}: “{c.short}”")
    if not view.candidates:
        lines.append("(retrieval found no passage at all: “Not covered” is the choice)")
    return "\n".join(lines)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="seconds")


# ---- the command line (`qabot taught list|undo`, and the note after `qabot index build`) ----------------


def index_passages(index_dir: Path) -> list[dict] | None:
    """The passages of the index `index_dir` serves (read without loading any model), None without one."""
    from bot.core.index_store import current_version_dir

    try:
        folder = current_version_dir(Path(index_dir))
        return json.loads((folder / "passages.json").read_text(encoding="utf-8"))["passages"]
    except Exception:  # no index, or a damaged one: the listing says "unknown"
        return None


def _existing_store(settings: Settings) -> Any:
    """The feedback database, or None when its SQLite file does not exist yet (nothing was taught)."""
    from bot.conversation.factory import database_of, open_feedback_store

    where = database_of(settings)
    if isinstance(where, Path) and not where.exists():
        return None
    return open_feedback_store(settings)


def taught_list(settings: Settings, index_dir: Path) -> list[dict[str, Any]]:
    """`qabot taught list`: every taught pair with its status in the index."""
    store = _existing_store(settings)
    if store is None:
        return []
    try:
        return pairs_data(store.taught_pairs(), index_passages(index_dir))
    finally:
        store.close()


def taught_undo(settings: Settings, pair_id: int) -> TaughtPair | None:
    """`qabot taught undo ID`: the pair removed, or None when there is none with that id. A running bot
    notices within QABOT's refresh time (30 s)."""
    store = _existing_store(settings)
    if store is None:
        return None
    try:
        return store.remove_taught(pair_id)
    finally:
        store.close()


def build_note(settings: Settings, index_dir: Path) -> str:
    """After `qabot index build`: the taught pairs whose passage the new index lost ('' if none, or when the
    database cannot be read: the build itself succeeded and says so)."""
    passages = index_passages(index_dir)
    if passages is None:
        return ""
    try:
        store = _existing_store(settings)
        if store is None:
            return ""
        try:
            return missing_note(store.taught_pairs(), passages)
        finally:
            store.close()
    except Exception as err:
        log.warning("could not check the taught pairs against the new index: %s", type(err).__name__)
        return ""
