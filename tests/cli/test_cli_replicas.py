"""`qabot index build` / `rollback` beside running replicas (QABOT_REDIS_URL): they take the rebuild lock the
replicas share, so a build from the command line never runs while a replica rebuilds."""

from __future__ import annotations

from pathlib import Path

import redis

LOCK = "qabot:rebuild-lock"


def _version(index_dir: Path) -> str:
    return (index_dir / "current").resolve().name


def test_build_and_rollback_wait_for_a_rebuild_running_on_a_replica(qabot, index_copy, redis_url):
    env = {"QABOT_REDIS_URL": redis_url, "QABOT_SECRET_KEY": "replicas-share-this-secret-key"}
    before = _version(index_copy)
    held = redis.Redis.from_url(redis_url)
    assert held.set(LOCK, "a-replica", nx=True, px=60_000)  # a replica is rebuilding
    try:
        for command in (("index", "build", "--force", "-q"), ("index", "rollback")):
            done = qabot(*command, "--index", index_copy, extra_env=env)
            assert "Traceback" not in done.stderr, done.stderr
            assert done.returncode == 1, done.stdout
            assert "A rebuild is already running on a replica" in done.stderr
            assert _version(index_copy) == before  # nothing built, nothing switched
    finally:
        held.delete(LOCK)
        held.close()
