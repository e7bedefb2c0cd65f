"""The rule that sets `high_probability` in scripts/tune_profile.py: high must mean right >= 90 % on
questions the model was not fitted on, with a margin (the Wilson 95 % lower bound)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_SPEC = importlib.util.spec_from_file_location(
    "tune_profile", Path(__file__).resolve().parents[2] / "scripts" / "tune_profile.py"
)
tune = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(tune)


def test_wilson_lower_bound():
    assert tune.wilson_lower(90, 100) == pytest.approx(0.8256, abs=1e-4)
    assert tune.wilson_lower(60, 60) == pytest.approx(60 / (60 + 1.96**2), abs=1e-9)
    assert tune.wilson_lower(0, 0) == 0.0


def test_high_is_the_lowest_threshold_whose_held_out_precision_clears_the_bound():
    # 60 held-out answers at 0.85, all right; 40 at 0.6, 30 right: 90 % right from 0.6 up is not enough
    # (lower bound 0.83), 60 of 60 from 0.61 up is (0.94)
    p = np.array([0.85] * 60 + [0.6] * 40)
    right = np.array([True] * 60 + [True] * 30 + [False] * 10)
    assert tune.high_threshold(p, right, repeats=1) == 0.61


def test_each_question_counts_once_however_many_repeats_pooled_it():
    # 20 questions at 0.85, all right, and 20 at 0.55, half right, pooled from 4 repeats: from 0.56 up,
    # 20 of 20 has a lower bound of 0.84 (below 0.90, but the best there is); counted as 80 it would pass
    p = np.tile(np.array([0.85] * 20 + [0.55] * 20), 4)
    right = np.tile(np.array([True] * 20 + [True, False] * 10), 4)
    assert tune.high_threshold(p, right, repeats=4) == 0.56
    assert tune.high_threshold(p, right, repeats=1) == 0.56
    assert tune.high_threshold(np.tile(np.full(20, 0.85), 4), np.ones(80, bool), repeats=1) == 0.5


def test_without_a_threshold_that_clears_the_bound_the_surest_one_is_taken():
    # precision 0.9 from 0.5 up (100 answers, bound 0.83); 0.96 from 0.8 up (50, bound 0.87); 1.0 from 0.95 up
    # (5, bound 0.57): none reaches 0.90, the 50 at 0.8 are the surest
    p = np.array([0.6] * 50 + [0.8] * 45 + [0.95] * 5)
    right = np.array([True] * 42 + [False] * 8 + [True] * 43 + [False] * 2 + [True] * 5)
    assert tune.high_threshold(p, right, repeats=1) == 0.61
