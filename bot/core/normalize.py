"""Question normalisation: a typed @mention, Markdown, control characters and whitespace out; words kept.

Platform markup (Slack's <@U123> and <https://…|label>, Discord's <@123> and <#456>, ...) never gets
here: each adapter removes its own when it builds the IncomingMessage (Adapter.clean_text).
"""

from __future__ import annotations

import re
import unicodedata
from enum import Enum

MAX_QUESTION_CHARS = 2000  # longer input is cut here (the encoder reads 256 tokens anyway)

_AT_NAME = re.compile(r"(?<![\w.])@qabot\b[:,]?", re.IGNORECASE)  # the bot's name, typed
_LEADING_AT = re.compile(r"^\s*@[\w.-]+[:,]?\s+")  # "@someone what is ..." addresses someone
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]+\)")
_MD_CODE_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\n?|```")
_MD_MARKS = re.compile(r"(?<!\w)[*_~`]+|[*_~`]+(?!\w)|^\s{0,3}(?:>|#{1,6}|[-*+]\s)\s*", re.MULTILINE)
_WS = re.compile(r"\s+")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]")

_GREETING = re.compile(
    r"^(hi|hii+|hello|hey+|yo|hola|howdy|good (morning|afternoon|evening)|gm|sup|what'?s up)( there)?( bot| qabot)?[!. ]*$",
    re.IGNORECASE,
)
_HELP = re.compile(
    r"^(help|\?|/help|commands|usage|how (do|can) i use (you|this|this bot|qabot)|what can you do|"
    r"who are you|what are you|what do you do)[?!. ]*$",
    re.IGNORECASE,
)
_THANKS = re.compile(
    r"^(thanks?( you)?|thx|ty|tysm|cheers|great|awesome|cool|nice|ok(ay)?|got it|perfect|thank u)"
    r"( (so much|a lot|bot|qabot|!+))*[!. ]*$",
    re.IGNORECASE,
)


_ABOUT = re.compile(
    r"^(so )?(what('?s| is| are)|whats) (this|the|these|your) (article|doc|docs|document|documents|knowledge|"
    r"knowledge base|page|text|bot|stuff)( even| all)? (about|on|covering)|"
    r"^what (topics|subjects|things|questions) (do|can) you (cover|know|answer|help with)|"
    r"^what do you (know|cover)( about)?$|^(give me )?(a |an )?(summary|overview)( of (it|this|the article))?$|"
    r"^(summari[sz]e|tl;?dr)( (it|this|the article|the doc))?$",
    re.IGNORECASE,
)


def about_question(question: str) -> bool:
    """'What is this article about?', 'what topics do you cover', 'summary': a question about the knowledge itself."""
    return bool(_ABOUT.match(question.strip().rstrip("?!. ")))


class SmallTalk(str, Enum):
    GREETING = "greeting"
    HELP = "help"
    THANKS = "thanks"


def normalize_question(raw: str) -> str:
    """The question as words: mentions, markup, control characters and extra spaces removed."""
    text = unicodedata.normalize("NFKC", raw)
    text = _ANSI.sub("", text)
    text = "".join(ch if (ch in "\n\t" or unicodedata.category(ch)[0] != "C") else " " for ch in text)
    text = text[: MAX_QUESTION_CHARS * 2]
    text = _AT_NAME.sub(" ", text)
    text = _LEADING_AT.sub(" ", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_CODE_FENCE.sub(" ", text)
    text = _MD_MARKS.sub(" ", text)
    text = _WS.sub(" ", text).strip()
    return text[:MAX_QUESTION_CHARS].strip()


def small_talk(question: str) -> SmallTalk | None:
    """Greetings, help requests and thanks get a short help reply, not a passage."""
    q = question.strip()
    if _HELP.match(q):
        return SmallTalk.HELP
    if _GREETING.match(q):
        return SmallTalk.GREETING
    if _THANKS.match(q):
        return SmallTalk.THANKS
    return None


def has_words(question: str) -> bool:
    """False for input with no letters or digits at all (only emoji, punctuation, symbols)."""
    return any(ch.isalnum() for ch in question)
