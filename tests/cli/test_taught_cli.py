"""`qabot taught list|undo` (text and --json) and the note after `qabot index build` about taught pairs whose
passage the new index no longer has: the real command in a subprocess, a real (fast-profile) build."""

from __future__ import annotations

import json

from bot.conversation.teach import index_passages
from bot.storage import FeedbackStore

LAPTOPS = "New staff collect their laptop from the third-floor help desk on day one. Bring a photo ID."
PARKING = "Visitors park in the north lot; staff badges open the south garage after 6 pm."


def _knowledge(folder, *, parking: bool):
    folder.mkdir(exist_ok=True)
    text = f"# Onboarding\n\n## Laptops\n\n{LAPTOPS}\n"
    if parking:
        text += f"\n## Parking\n\n{PARKING}\n"
    (folder / "onboarding.md").write_text(text, encoding="utf-8")


def test_list_undo_and_the_build_note(qabot, tmp_path, fast_index_copy):
    knowledge = tmp_path / "knowledge"
    _knowledge(knowledge, parking=True)
    args = ("--knowledge", knowledge, "--index", fast_index_copy, "--profile", "fast", "--quiet")
    built = qabot("index", "build", *args, timeout=300)
    assert built.returncode == 0, built.stderr
    assert "taught pair" not in built.stderr  # nothing taught yet

    passages = {p["text"]: p for p in index_passages(fast_index_copy)}
    laptops = next(t for t in passages if "laptop" in t)
    parking = next(t for t in passages if "garage" in t)
    with FeedbackStore(tmp_path / "feedback.sqlite3") as store:
        for question, text in (("where is my laptop?", laptops), ("where do I park?", parking), ("gym hours?", "")):
            store.add_taught(
                question=question,
                normalized_question=question,
                passage_text=text,
                doc_path="onboarding.md" if text else "",
                section=passages[text]["section_path"][-1] if text else "",
                platform="slack",
                user_id="UADMIN",
            )

    listed = json.loads(qabot("taught", "list", "--json", "--index", fast_index_copy).stdout)
    assert [(d["id"], d["status"]) for d in listed] == [
        (1, "in the index"),
        (2, "in the index"),
        (3, "not covered"),
    ]
    assert listed[0]["question"] == "where is my laptop?" and listed[0]["passage"] == laptops
    assert listed[0]["taught_by"] and "UADMIN" not in json.dumps(listed) and listed[0]["taught_at"].endswith("+00:00")

    # the Parking section is removed: the rebuild says which taught pair lost its passage
    _knowledge(knowledge, parking=False)
    rebuilt = qabot("index", "build", *args, timeout=300)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "1 taught pair(s) point at a passage this index no longer has (#2)" in rebuilt.stderr
    listed = json.loads(qabot("taught", "list", "--json", "--index", fast_index_copy).stdout)
    assert [d["status"] for d in listed] == ["in the index", "passage no longer in the index", "not covered"]
    text = qabot("taught", "list", "--index", fast_index_copy)
    assert text.returncode == 0 and "#2 “where do I park?”" in text.stdout
    assert "⚠ passage no longer in the index" in text.stdout and "not covered" in text.stdout

    undone = qabot("taught", "undo", "2", "--json")
    assert undone.returncode == 0, undone.stderr
    assert json.loads(undone.stdout)["id"] == 2 and json.loads(undone.stdout)["status"] == "undone"
    assert [d["id"] for d in json.loads(qabot("taught", "list", "--json").stdout)] == [1, 3]

    again = qabot("taught", "undo", "2")
    assert again.returncode == 1 and "no taught pair #2" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1 and "Traceback" not in again.stderr
    bad = qabot("taught", "undo", "two")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_nothing_taught_yet(qabot):
    empty = qabot("taught", "list")
    assert empty.returncode == 0 and "Nothing has been taught yet" in empty.stdout
    assert json.loads(qabot("taught", "list", "--json").stdout) == []
