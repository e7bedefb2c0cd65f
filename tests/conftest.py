"""Shared fixtures: one real index of the real knowledge with the real packaged models (the default
profile: mpnet + e5), built once per session, and a small-profile one for tests that rebuild often."""

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
def encoder_cache(tmp_path_factory) -> Path:
    """ONNX exports shared by every build of the session (each model is exported once)."""
    return tmp_path_factory.mktemp("encoder-cache")


@pytest.fixture(scope="session")
def built_index_dir(tmp_path_factory, encoder_cache) -> Path:
    """A real index of the real knowledge folder, default profile. Read-only: use `index_copy` to change one."""
    from index_builder.build import build_index

    index_dir = tmp_path_factory.mktemp("index")
    build_index(KNOWLEDGE_DIR, index_dir, profile="default", encoder_cache=encoder_cache)
    return index_dir


@pytest.fixture(scope="session")
def fast_index_dir(tmp_path_factory, encoder_cache) -> Path:
    """The same knowledge with the `fast` profile (MiniLM): for tests that rebuild or break indexes."""
    from index_builder.build import build_index

    index_dir = tmp_path_factory.mktemp("fast-index")
    build_index(KNOWLEDGE_DIR, index_dir, profile="fast", encoder_cache=encoder_cache)
    return index_dir


@pytest.fixture
def fast_build(encoder_cache):
    """build_index with the fast profile and the session's ONNX exports."""
    import functools

    from index_builder.build import build_index

    return functools.partial(build_index, profile="fast", encoder_cache=encoder_cache)


@pytest.fixture(scope="session")
def engine_holder(built_index_dir):
    from bot.core.engine import EngineHolder

    holder = EngineHolder(built_index_dir)
    holder.get()
    return holder


def _copy_index(src: Path, dst: Path) -> Path:
    """Copy an index; the models (hundreds of MB) are hard-linked (tests never write to them in place)."""

    def copy(s: str, d: str) -> None:
        if s.endswith((".onnx", ".bin")):
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
