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
    # 20 questions, all right, pooled from 4 repeats: 20 of 20 has a lower bound of 0.84, below 0.90
    p = np.tile(np.full(20, 0.85), 4)
    right = np.ones(80, bool)
    assert tune.high_threshold(p, right, repeats=4) == tune.HIGH_GRID[-1]
    assert tune.high_threshold(p, right, repeats=1) == tune.HIGH_GRID[0]  # as if 80 questions: 0.954
