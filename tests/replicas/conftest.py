"""Fixtures for the replica tests: one Redis, one database, one index folder and one FakeSlack shared by
real `qabot run slack` processes."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.replicas.harness import ReplicaSet


@pytest.fixture
def replica_database(tmp_path: Path) -> str:
    """Where the replicas keep answers, votes and threads: one parameter. A SQLite file in a folder they
    share by default; QABOT_TEST_DATABASE_URL (e.g. a PostgreSQL URL) points them at a server instead."""
    url = os.environ.get("QABOT_TEST_DATABASE_URL")
    if url:
        return url
    shared = tmp_path / "shared"
    shared.mkdir(exist_ok=True)
    return str(shared / "qabot.sqlite3")


@pytest.fixture
def postgres_url(pg_server) -> Iterator[str]:
    """An empty database on the session's real PostgreSQL server (tests/postgres.py), for replicas to share."""
    url = pg_server.take_database()
    try:
        yield url
    finally:
        pg_server.give_back(url)


@pytest.fixture
def replica_index(fast_index_copy: Path, encoder_cache: Path) -> Path:
    """A fast-profile index the replicas share; a rebuild from chat reuses the session's ONNX exports."""
    cache = fast_index_copy / ".cache"
    cache.mkdir(exist_ok=True)
    (cache / "encoders").symlink_to(encoder_cache, target_is_directory=True)
    return fast_index_copy


@pytest_asyncio.fixture
async def make_replicas(fake_slack, replica_database, replica_index, knowledge_copy, tmp_path):
    """make_replicas(redis_url, database=None, **env) -> a ReplicaSet (stopped at the end of the test); the
    replicas share `replica_database` unless `database` (a file or a URL) is given."""
    made: list[ReplicaSet] = []

    def make(redis_url: str | None, *, database: str | None = None, **env: str) -> ReplicaSet:
        replicas = ReplicaSet(
            fake_slack,
            database=database or replica_database,
            redis_url=redis_url,
            index_dir=replica_index,
            knowledge_dir=knowledge_copy,
            workdir=tmp_path / f"replicas-{len(made)}",
            QABOT_PROFILE="fast",
            **env,
        )
        made.append(replicas)
        return replicas

    try:
        yield make
    finally:
        for replicas in made:
            await replicas.stop()
        shutil.rmtree(tmp_path / "shared", ignore_errors=True)
