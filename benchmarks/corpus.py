"""Synthetic knowledge for the scale benchmarks: plausible, unique English sentences, generated from real text.

The source is the Python reference documentation that ships with CPython itself (`pydoc_data.topics`,
~465 kB of prose): a word-level Markov chain (order 2) over its prose lines writes new sentences with
the lengths, vocabulary and punctuation of real documentation. Every generated sentence is different
(a duplicate is drawn again), so nothing is embedded once and counted many times. The output only
depends on the seed.

    .venv/bin/python -m benchmarks.corpus --documents 5000 --out /tmp/knowledge-5k   # 5,000 small files

A "small file" is one Markdown document: a title heading and one paragraph of 4 to 8 sentences (one
passage), like the 5,000-file knowledge of issue 10 (5,000 passages, ~29,400 sentences).
"""

from __future__ import annotations

import argparse
import random
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_START = ("", "")


class SentenceModel:
    """An order-2 word Markov chain over the prose of CPython's bundled reference documentation."""

    def __init__(self) -> None:
        from pydoc_data.topics import topics

        self.next: dict[tuple[str, str], list[str]] = defaultdict(list)
        for text in topics.values():
            prose = " ".join(
                line.strip()
                for line in text.splitlines()
                # prose only: code samples are indented further, tables and rules are symbols
                if line.strip()
                and len(line) - len(line.lstrip()) <= 2
                and sum(c.isalpha() for c in line) > len(line) / 2
            )
            for sentence in _SENTENCE_END.split(prose):
                words = sentence.split()
                if 6 <= len(words) <= 40 and words[-1][-1] in ".!?":
                    state = _START
                    for word in words:
                        self.next[state].append(word)
                        state = (state[1], word)
                    self.next[state].append("")  # end of sentence
        self.vocabulary = sorted({w.strip(".,:;()\"'").lower() for words in self.next.values() for w in words} - {""})

    def sentence(self, rng: random.Random, *, min_words: int = 8, max_words: int = 30) -> str:
        while True:
            words: list[str] = []
            state = _START
            while len(words) <= max_words:
                word = rng.choice(self.next[state])
                if not word:
                    break
                words.append(word)
                state = (state[1], word)
            if min_words <= len(words) <= max_words:
                return " ".join(words)


class Corpus:
    """Unique sentences and passages, reproducible from a seed."""

    def __init__(self, seed: int = 0, model: SentenceModel | None = None) -> None:
        self.model = model or SentenceModel()
        self.rng = random.Random(seed)
        self._seen: set[str] = set()

    def sentence(self) -> str:
        while True:
            s = self.model.sentence(self.rng)
            if s not in self._seen:
                self._seen.add(s)
                return s

    def paragraph(self, sentences: tuple[int, int] = (4, 8)) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randint(*sentences)))

    def title(self) -> str:
        words = [w for w in self.rng.sample(self.model.vocabulary, 4) if w.isalpha()] or ["notes"]
        return " ".join(words).capitalize()

    def passages(self, n: int) -> Iterator[str]:
        for _ in range(n):
            yield self.paragraph()


def document(corpus: Corpus) -> str:
    return f"# {corpus.title()}\n\n{corpus.paragraph()}\n"


def write_small_files(folder: Path, documents: int, *, seed: int = 0, per_folder: int = 500) -> list[Path]:
    """`documents` Markdown files (a title and one paragraph each) in sub-folders of `per_folder` files."""
    corpus = Corpus(seed)
    paths = []
    for n in range(documents):
        path = folder / f"part-{n // per_folder:03d}" / f"doc-{n:05d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(document(corpus), encoding="utf-8")
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="an empty or new folder")
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty")
    write_small_files(args.out, args.documents, seed=args.seed)
    print(f"wrote {args.documents} documents to {args.out}")


if __name__ == "__main__":
    main()
