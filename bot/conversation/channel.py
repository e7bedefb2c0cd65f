"""Watched channels: which messages that do not mention the bot are questions for it.

In a watched channel (an admin's `/qabot watch`, or the adapter's `*_WATCHED_CHANNEL_IDS` setting)
the bot answers questions nobody addressed to it, the way kapa.ai suggests an `#ask-ai` channel. The
first complaint about such bots is that they talk too much, so two gates stand between a message and
a reply, and the bot stays silent (no abstention, no "mentioned only") unless both pass:

1. `question_for_bot` (here, platform-neutral): the message reads as a question and is not addressed
   to someone else. Chatter, greetings, statements, shared links, pasted code or logs, and anything
   that mentions a person are not.
2. `confident` (ConversationService): the knowledge answers it with confidence high or medium.

Only top-level messages are candidates: a reply in a thread belongs to the people in that thread
(in the bot's own threads the usual follow-up rule applies). Adapters clean their platform's markup
first and say whether the message mentions someone (`IncomingMessage.mentions_someone`); a typed
`@name` counts too.

How often this speaks on ordinary channel chatter, and how many real questions it still answers, is
measured by `benchmarks/channel_chatter.py` on tests/eval/channel_dev.jsonl (tuned on) and
channel_test.jsonl (reported only); see docs/features.md.
"""

from __future__ import annotations

import re
from enum import StrEnum

from bot.core.types import Answer, AnswerKind, Confidence


class Silence(StrEnum):
    """Why an unmentioned message in a watched channel gets no reply."""

    ADDRESSED_TO_SOMEONE = "addressed to someone else"
    NOT_A_QUESTION = "not a question"
    TOO_SHORT = "too short to be a question"
    IN_A_THREAD = "a reply in someone else's thread"
    NOT_CONFIDENT = "no confident answer"


# Fewer words than this (after links and code are left out) is a reaction, not a question: "why?", "wait what?"
MIN_QUESTION_WORDS = 3

# what a person is asking about is what is left once links, code and quoted lines are out
_CODE_BLOCK = re.compile(r"```.*?(```|$)", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
_QUOTED_LINE = re.compile(r"(?m)^\s*>.*$")
# a typed "@name" (the terminal, a plain-text bridge): addressed to that person. "@qabot" is the bot,
# "@everyone"/"@here"/"@channel" address everyone, which includes the bot; an e-mail address is no one.
_TYPED_MENTION = re.compile(r"(?<![\w.@])@(?!(?:qabot|everyone|here|channel)\b)[^\W\d_][\w.-]*", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_][\w'’-]*|\d+[\w'’-]*")
# a question mark that ends a sentence (not "?!" inside a URL, which is already out, nor "?." in code)
_QUESTION_MARK = re.compile(r"\?(?=[\s\"'’”)\]!?.…]*(?:\s|$))")
# openings that ask without a question mark ("how do I fine-tune a model"), after fillers such as
# "ok so", "hey", "quick question:"
_FILLER = re.compile(
    r"^(?:(?:ok(?:ay)?|so|hey|hi|hello|yo|um+|uh+|hmm+|well|btw|also|and|but|guys|folks|all|everyone|team|"
    r"quick|noob|dumb|silly|basic|random|stupid|beginner|honest)\b[\s,.:;!-]*|"
    r"(?:quick |noob |dumb |silly |basic |random |stupid |beginner |honest )?q(?:uestion)?\s*[:,-]\s*)+",
    re.IGNORECASE,
)
_ASKING_OPENING = re.compile(
    r"^(?:what|what's|whats|how|how's|why|when|where|which|who|whom|whose|is|are|isn't|aren't|can|could|"
    r"does|did|doesn't|should|anyone|anybody|explain|define|eli5)\b",
    re.IGNORECASE,
)
# ... but not an exclamation: "what a day", "how cool is that!"
_EXCLAMATION = re.compile(
    r"^(?:what an?\b|how (?:cool|nice|great|awesome|fun|funny|sweet|cute|sad|weird)\b)|!\W*$", re.I
)


def _asked_text(text: str) -> str:
    """The words a person wrote themselves: code, pasted logs in code blocks, links and quoted lines out."""
    text = _CODE_BLOCK.sub(" ", text)
    text = _INLINE_CODE.sub(" ", text)
    text = _URL.sub(" ", text)
    text = _QUOTED_LINE.sub(" ", text)
    return text


def question_for_bot(text: str, *, mentions_someone: bool = False) -> Silence | None:
    """None when an unmentioned channel message reads as a question for the bot; otherwise why not.

    `text` is the message as the adapter cleaned it (its platform's markup out); `mentions_someone`
    is the adapter's word that it mentions a person or a group (the bot's own mention aside).
    """
    if mentions_someone or _TYPED_MENTION.search(text):
        return Silence.ADDRESSED_TO_SOMEONE
    asked = _asked_text(text)
    words = _WORD.findall(asked)
    if len(words) < MIN_QUESTION_WORDS:
        return Silence.TOO_SHORT
    if _QUESTION_MARK.search(asked):
        return None
    opening = _FILLER.sub("", asked.strip())
    if _ASKING_OPENING.match(opening) and not _EXCLAMATION.search(opening):
        return None
    return Silence.NOT_A_QUESTION


def confident(answer: Answer) -> bool:
    """An answer worth giving unasked: quotes that answer it, with confidence high or medium."""
    return answer.kind is AnswerKind.ANSWER and answer.confidence in (Confidence.HIGH, Confidence.MEDIUM)
