"""An answer whose quotes come from a web page, a repository file and a page with a near-limit URL,
linked the way the engine links them (bot.core.links): for the adapters' protocol tests (issue 9, item 6)."""

from __future__ import annotations

from bot.core.links import fragment_target, passage_link
from bot.core.types import Answer, AnswerKind, Confidence, Quote

PAGE = "https://www.miquido.com/blog/machine-learning-vs-generative-ai/?utm=a&b=c"
REPO = "https://github.com/acme/handbook/blob/main/knowledge/office.md"
LONG_PAGE = "https://example.com/" + "p" * 2020  # a deep link would pass Discord's 2,048 characters
GAN = (
    "Generative AI utilizes diverse models like Generative Adversarial Networks (GANs) and Variational "
    "Autoencoders (VAEs) to create new data, like images, text, or music."
)
PARKING = "Visitors park in the underground garage below the building, level minus two."


def _quote(n: int, text: str, url: str, kind: str, section: tuple[str, ...], anchor: str = "") -> Quote:
    highlight = (0, len(text))
    return Quote(
        text=text,
        document=f"Document {n}",
        doc_path=f"doc{n}.md",
        section=" > ".join(section),
        section_path=section,
        score=3.0,
        passage_id=f"p{n}",
        source_url=url,
        highlight=None,
        link=passage_link(url, kind, text=fragment_target(text, highlight), anchor=anchor),
    )


QUOTES = (
    _quote(1, GAN, PAGE, "web", ("Technical Foundations of Gen AI and ML",)),
    _quote(2, PARKING, REPO, "repository", ("Office handbook", "Parking"), anchor="parking"),
    _quote(3, "Tea is served at four.", LONG_PAGE, "web", ("Kitchen",)),
)
EXPECTED_LINKS = (
    PAGE + "#:~:text=Generative%20AI%20utilizes%20diverse,images%2C%20text%2C%20or%20music.",
    REPO + "#parking",
    LONG_PAGE,  # the text fragment would make it too long: the page itself
)


def linked_answer(question: str, context=()) -> Answer:
    return Answer(question, question, AnswerKind.ANSWER, Confidence.HIGH, QUOTES, message="Here is what I found:")
