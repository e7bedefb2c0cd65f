"""`qabot feedback report --json --since` (issue 9, item 5): the knowledge gaps as JSON, only what was asked
since a time, and a bad --since is one line with exit 2."""

from __future__ import annotations

import json
import time

import numpy as np

from bot.conversation.similarity import pack_vector
from bot.storage import FeedbackStore
from tests.conversation.conftest import ManualClock


def _vector(*hot: int) -> np.ndarray:
    v = np.zeros(8, dtype=np.float32)
    v[list(hot)] = 1.0
    return v / np.linalg.norm(v)


def _fill(path, clock):
    with FeedbackStore(path, clock=clock) as store:
        for answer_id, question, vector, age_days in [
            ("a", "how do I reset my password?", _vector(0), 20),
            ("b", "I forgot my password", _vector(0, 1), 1),
            ("c", "pizza in naples?", _vector(5), 1),
        ]:
            clock.now = time.time() - age_days * 86400
            store.record_answer(
                answer_id=answer_id,
                question=question,
                passage_ids=[],
                index_version="v1",
                kind="abstain",
                platform="slack",
                channel_id="C1",
                user_id="U1",
                answer_json=json.dumps({"kind": "abstain", "closest_sections": ["Accounts"]}),
                question_vector=pack_vector("test@1", vector),  # stored vectors: no index is loaded
            )


def test_report_json_and_since(qabot, tmp_path):
    _fill(tmp_path / "feedback.sqlite3", ManualClock())
    everything = qabot("feedback", "report", "--json")
    assert everything.returncode == 0, everything.stderr
    data = json.loads(everything.stdout)
    assert data["gaps_grouped_by"] == "test@1" and data["abstentions"] == 3
    password = next(g for g in data["gaps"] if "password" in g["question"])
    assert password["count"] == 2 and password["abstained"] == 2
    assert password["first_asked"] < password["last_asked"] and password["closest_sections"] == ["Accounts"]
    recent = json.loads(qabot("feedback", "report", "--json", "--since", "7d").stdout)
    assert recent["abstentions"] == 2 and sorted(g["count"] for g in recent["gaps"]) == [1, 1]
    assert recent["since"].endswith("Z")
    text = qabot("feedback", "report", "--since", "7d")
    assert text.returncode == 0 and "Knowledge gaps" in text.stdout and "grouped by meaning" in text.stdout


def test_a_bad_since_is_one_line(qabot, tmp_path):
    bad = qabot("feedback", "report", "--since", "last tuesday")
    assert bad.returncode == 2
    assert "--since must be" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert "Traceback" not in bad.stderr
