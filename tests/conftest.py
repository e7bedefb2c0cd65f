"""Shared fixtures: one real index built from the real knowledge with the real packaged model, per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE_DIR = ROOT / "knowledge"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def st_embedder():
    """sentence-transformers loaded once for every test that builds an index (loading costs ~8 s)."""
    from index_builder.embed import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    _ = embedder.model
    return embedder


@pytest.fixture(scope="session")
def built_index_dir(tmp_path_factory, st_embedder) -> Path:
    """A real index of the real knowledge folder. Read-only: use `index_copy` to change or break one."""
    from index_builder.build import build_index

    index_dir = tmp_path_factory.mktemp("index")
    build_index(KNOWLEDGE_DIR, index_dir, embedder=st_embedder)
    return index_dir


@pytest.fixture(scope="session")
def engine_holder(built_index_dir):
    from bot.core.engine import EngineHolder

    holder = EngineHolder(built_index_dir)
    holder.get()
    return holder


def _copy_index(src: Path, dst: Path) -> Path:
    """Copy an index; the 90 MB ONNX file is hard-linked (tests never write to it in place)."""

    def copy(s: str, d: str) -> None:
        if s.endswith(".onnx"):
            os.link(s, d)
        else:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, symlinks=True, copy_function=copy)
    return dst


@pytest.fixture
def index_copy(built_index_dir, tmp_path) -> Path:
    """A private copy of the session index that a test may rebuild, corrupt or roll back."""
    return _copy_index(built_index_dir, tmp_path / "index")


@pytest.fixture
def knowledge_copy(tmp_path) -> Path:
    """A private copy of the knowledge folder that a test may add documents to."""
    dst = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, dst)
    return dst


@pytest.fixture(autouse=True)
def _no_platform_settings_from_the_environment(monkeypatch):
    """Adapter settings read SLACK_*, DISCORD_*, QABOT_TERMINAL_* from the environment: a developer's
    exported tokens must not leak into the tests (each test sets what it needs)."""
    for var in list(os.environ):
        if var.startswith(("SLACK_", "DISCORD_", "QABOT_TERMINAL_", "COLLECT_")):
            monkeypatch.delenv(var)
