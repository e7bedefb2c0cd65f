"""Links from a quote to its place in the source (issue 9, item 6): text fragments for web pages,
heading anchors for repository files, within the platforms' URL limits."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from bot.core.links import (
    heading_anchor,
    passage_link,
    quote_link,
    section_anchors,
    source_kind,
    text_fragment,
    with_text_fragment,
)
from bot.core.types import Quote
from bot.core.urls import MAX_URL_LENGTH, url_problem

PAGE = "https://www.miquido.com/blog/machine-learning-vs-generative-ai/"
REPO_FILE = "https://github.com/acme/handbook/blob/main/knowledge/faq.md"


def _directive_words(link: str) -> list[str]:
    _, _, directive = link.partition(":~:text=")
    return [unquote(part) for part in directive.split(",")]


def test_a_short_sentence_is_the_whole_fragment():
    link = with_text_fragment(PAGE, "ML models need data.")
    assert link == PAGE + "#:~:text=ML%20models%20need%20data."
    assert _directive_words(link) == ["ML models need data."]


def test_a_long_sentence_is_its_first_and_last_words():
    sentence = (
        "Generative AI utilizes diverse models like Generative Adversarial Networks (GANs) and Variational "
        "Autoencoders (VAEs) to create new data, like images, text, or music."
    )
    assert _directive_words(with_text_fragment(PAGE, sentence)) == [
        "Generative AI utilizes diverse",
        "images, text, or music.",
    ]


def test_the_directive_characters_are_encoded_inside_the_text():
    # "-", "," and "&" delimit the directive's parts: left raw, "e-mail, fast & cheap" would be read as
    # a prefix and a range, and the browser would find nothing
    directive = text_fragment("e-mail, fast & cheap")
    assert directive == "text=e%2Dmail%2C%20fast%20%26%20cheap"
    assert not set("-,&") & set(directive.removeprefix("text="))


def test_a_page_anchor_is_kept_before_the_directive():
    assert with_text_fragment("https://example.com/a#part", "one two") == "https://example.com/a#part:~:text=one%20two"


def test_a_deep_link_that_would_be_too_long_falls_back_to_shorter_then_to_the_bare_url():
    base = "https://example.com/" + "a" * (MAX_URL_LENGTH - 130)
    sentence = "Supercalifragilistic " * 12
    link = with_text_fragment(base, sentence)
    assert len(link) <= MAX_URL_LENGTH and ":~:text=" in link
    assert _directive_words(link) == ["Supercalifragilistic Supercalifragilistic"] * 2  # 2 words each end
    tight = "https://example.com/" + "a" * (MAX_URL_LENGTH - 25)
    assert with_text_fragment(tight, sentence) == tight


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        (
            "Machine Learning vs Generative AI: What’s the Difference?",
            "machine-learning-vs-generative-ai-whats-the-difference",
        ),
        ("What is ML?", "what-is-ml"),
        ("Step 1 - install", "step-1---install"),
        ("snake_case stays", "snake_case-stays"),
        ("Café au lait", "café-au-lait"),
    ],
)
def test_heading_anchors_as_github_makes_them(heading, anchor):
    assert heading_anchor(heading) == anchor


def test_a_repeated_heading_is_numbered_in_document_order():
    paths = [("Setup",), ("Setup", "Linux"), ("Usage",), ("Usage", "Linux"), ("Setup", "Linux")]
    assert section_anchors(paths) == {
        ("Setup",): "setup",
        ("Setup", "Linux"): "linux",
        ("Usage",): "usage",
        ("Usage", "Linux"): "linux-1",
    }


def test_which_kind_of_source():
    assert source_kind(PAGE) == "web"
    assert source_kind(REPO_FILE) == "repository"
    assert source_kind("https://gitlab.com/a/b/-/blob/main/docs/x.rst") == "repository"
    assert source_kind("https://example.com/handbook", "repository") == "repository"
    assert source_kind(REPO_FILE, "web") == "web"
    assert source_kind(None, "web") is None


def test_a_repository_file_links_to_the_heading():
    assert passage_link(REPO_FILE, "repository", text="x", anchor="what-is-ml") == REPO_FILE + "#what-is-ml"
    assert passage_link(REPO_FILE + "#old", "repository", text="x", anchor="usage") == REPO_FILE + "#usage"
    assert passage_link(REPO_FILE, "repository", text="x", anchor="") == REPO_FILE


@pytest.mark.parametrize("bad", ["https://example.com/a b", "https://example.com/a|b", "javascript:alert(1)", ""])
def test_no_link_from_a_url_that_cannot_be_one(bad):
    assert passage_link(bad, "web", text="words here") is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://example.com/a|b", "'|'"),
        ("https://example.com/<script>", "'<'"),
        ("https://example.com/{x}", "'{'"),
        ("https://example.com/100%", "%25"),
        ("https://example.com/a b", "spaces"),
    ],
)
def test_url_problem_names_what_slack_or_discord_would_refuse(url, reason):
    assert reason in url_problem(url)


def _quote(**kw) -> Quote:
    return Quote(
        text="t", document="D", doc_path="d.md", section="S", section_path=("S",), score=1.0, passage_id="p", **kw
    )


def test_a_front_end_shows_the_deep_link_else_the_source_url_else_nothing():
    assert quote_link(_quote(source_url=PAGE, link=PAGE + "#:~:text=t")) == PAGE + "#:~:text=t"
    assert quote_link(_quote(source_url=PAGE, link="https://x/" + "a" * 3000)) == PAGE
    assert quote_link(_quote(source_url=PAGE, link=PAGE + "#:~:text=t"), max_length=len(PAGE)) == PAGE
    assert quote_link(_quote(source_url="https://example.com/a|b")) is None
    assert quote_link(_quote()) is None


def test_the_link_survives_an_answer_stored_and_shown_again():
    """Slack's Share in channel re-renders an answer from its stored JSON (bot/storage): the link stays."""
    from bot.core.types import Answer, AnswerKind, Confidence

    answer = Answer("q", "q", AnswerKind.ANSWER, Confidence.HIGH, (_quote(source_url=PAGE, link=PAGE + "#:~:text=t"),))
    again = Answer.from_dict(answer.to_dict())
    assert again.quotes[0].link == PAGE + "#:~:text=t"
    assert quote_link(again.quotes[0]) == PAGE + "#:~:text=t"
