"""Static checks of the Docker set-up (Docker itself cannot run here): the compose file, the Dockerfile,
.dockerignore and .env.example agree with each other and with the real `qabot` command line."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bot.config import ENV_VARS, Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = "\n".join(line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#"))
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _cmd(value) -> list[str]:
    return value if isinstance(value, list) else shlex.split(value)


def _assert_real_qabot_command(argv: list[str]) -> None:
    assert argv and argv[0] == "qabot", argv
    from bot.cli import app

    result = CliRunner().invoke(app, [*argv[1:], "--help"])
    assert result.exit_code == 0, f"`{' '.join(argv)}` is not a qabot command: {result.output}"


def test_services_and_commands(compose):
    services = compose["services"]
    assert {"index", "discord", "slack"} <= set(services)
    expected = {"index": ["index", "build"], "discord": ["run", "discord"], "slack": ["run", "slack"]}
    for name, args in expected.items():
        argv = _cmd(services[name]["command"])
        assert argv[1:3] == args, (name, argv)
        _assert_real_qabot_command(argv)


def test_bots_wait_for_the_index_build(compose):
    services = compose["services"]
    assert services["index"].get("restart", "no") == "no"
    for name in ("discord", "slack"):
        assert services[name]["depends_on"]["index"]["condition"] == "service_completed_successfully"
        assert services[name]["restart"] == "unless-stopped"


def test_named_volumes_declared_and_shared(compose, dockerfile):
    declared = set(compose.get("volumes") or {})
    assert "qabot-index" in declared
    env = dict(
        pair.split("=", 1) for word, args in dockerfile if word == "ENV" for pair in shlex.split(args) if "=" in pair
    )
    for name, service in compose["services"].items():
        if service.get("image") != "qabot:local":
            continue  # redis, postgres, the load balancer
        mounts = {}
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} uses undeclared volume {source}"
            else:
                assert (ROOT / source).exists(), f"{name} bind-mounts missing {source}"
            mounts[source] = target
        # the index volume is mounted where the image tells qabot to look for it
        assert mounts.get("qabot-index") == env["QABOT_INDEX_DIR"], name
        if name != "index":
            assert mounts.get("qabot-data") == str(Path(env["QABOT_FEEDBACK_DB"]).parent), name


def test_env_files_exist(compose):
    for name, service in compose["services"].items():
        files = service.get("env_file") or []
        for entry in [files] if isinstance(files, str | dict) else files:
            path = entry["path"] if isinstance(entry, dict) else entry
            if path == ".env":  # made by the user from the example
                assert (ROOT / ".env.example").is_file()
            else:
                assert (ROOT / path).is_file(), f"{name}: env file {path} missing"
    assert compose["services"]["discord"].get("env_file") and compose["services"]["slack"].get("env_file")


def test_build_contexts_and_dockerfile(compose):
    for name, service in compose["services"].items():
        if "build" not in service:
            continue  # an image from a registry (redis, postgres, nginx)
        build = service["build"]
        context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (context / dockerfile).is_file(), name


def test_dockerfile_base_torch_user_healthcheck(dockerfile):
    words = [w for w, _ in dockerfile]
    assert dockerfile[0] == ("FROM", "python:3.11-slim")
    runs = [args for w, args in dockerfile if w == "RUN"]
    assert any("torch==2.13.0" in r and "--index-url https://download.pytorch.org/whl/cpu" in r for r in runs)
    torch_at = next(i for i, (w, a) in enumerate(dockerfile) if "torch==" in a)
    install_at = next(i for i, (w, a) in enumerate(dockerfile) if w == "RUN" and "pip install ." in a)
    assert torch_at < install_at, "the CPU torch must be installed before the package pulls in the CUDA one"
    users = [args for w, args in dockerfile if w == "USER"]
    assert users and users[-1] not in ("root", "0"), "the container must not run as root"
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN"), "USER after the last RUN"
    (health,) = [args for w, args in dockerfile if w == "HEALTHCHECK"]
    argv = json.loads(health[health.index("CMD") + 3 :].strip())
    _assert_real_qabot_command(argv)


def test_copied_sources_exist_and_are_not_ignored(dockerfile):
    ignored = {
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and line[0] != "#"
    }
    for word, args in dockerfile:
        if word == "COPY":
            *sources, _dest = shlex.split(args)
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such file in the build context"
                assert source not in ignored, f"COPY {source} is excluded by .dockerignore"
    for secret in (".env", ".venv", ".git", "index", "data"):
        assert secret in ignored


def _adapter_settings() -> tuple[set[str], set[str]]:
    """(every variable, the secret ones) of every registered adapter's settings."""
    from bot.adapters.registry import ADAPTERS, adapter_class

    names: set[str] = set()
    secrets: set[str] = set()
    for adapter in ADAPTERS:
        settings = adapter_class(adapter).settings_class
        for field, info in settings.model_fields.items():
            names.add(settings.env_name(field))
            if "SecretStr" in str(info.annotation):
                secrets.add(settings.env_name(field))
    return names, secrets


def test_env_example_documents_every_setting():
    example = (ROOT / ".env.example").read_text()
    names = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, flags=re.M))
    adapter_names, secrets = _adapter_settings()
    assert {"SLACK_BOT_TOKEN", "DISCORD_TOKEN"} <= secrets
    missing = (set(ENV_VARS) | adapter_names) - names
    assert not missing, f".env.example does not mention {sorted(missing)}"
    for line in example.splitlines():
        if line.split("=")[0] in secrets:
            assert line.endswith("="), f"no secret values in the example: {line.split('=')[0]}"


# ---- profile "replicas" (docs/scaling.md) -------------------------------------------------------------

REPLICA_SERVICES = {"redis", "postgres", "slack-1", "slack-2", "slack-lb", "discord-shard-0", "discord-shard-1"}


def test_the_replicas_profile_is_never_started_beside_the_single_bots(compose):
    services = compose["services"]
    assert set(services) >= REPLICA_SERVICES
    for name in REPLICA_SERVICES:
        assert services[name].get("profiles") == ["replicas"], name
    for name in ("index", "slack", "discord"):  # `docker compose up -d` as before
        assert not services[name].get("profiles"), name
    # the documented command starts real services of the profile (and, through depends_on, the rest)
    header = COMPOSE.read_text()
    started = re.search(r"docker compose --profile replicas up -d ([\w -]+)", header)
    assert started, "the compose file's header says how to start the profile"
    named = set(started.group(1).split())
    assert named <= REPLICA_SERVICES and {"slack-lb", "discord-shard-0", "discord-shard-1"} <= named


def _replica_env(service: dict) -> dict[str, str]:
    return {key: str(value) for key, value in (service.get("environment") or {}).items()}


def _bot_replicas(compose) -> dict[str, dict]:
    return {
        name: service
        for name, service in compose["services"].items()
        if name in REPLICA_SERVICES and service.get("image") == "qabot:local"
    }


def test_every_replica_shares_one_redis_one_postgres_and_the_index(compose):
    services = compose["services"]
    replicas = _bot_replicas(compose)
    assert set(replicas) == {"slack-1", "slack-2", "discord-shard-0", "discord-shard-1"}
    for name, service in replicas.items():
        env = _replica_env(service)
        redis_url = env["QABOT_REDIS_URL"]
        assert redis_url.startswith("redis://redis:"), (name, redis_url)
        assert (
            env["QABOT_DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:" in env["QABOT_DATABASE_URL"]
        )
        assert env["QABOT_METRICS_HOST"] == "0.0.0.0" and env["QABOT_METRICS_PORT"].isdigit()
        # the settings a replica starts with pass qabot's own checks (the secret key comes from .env)
        Settings.from_env({**env, "QABOT_SECRET_KEY": "k" * 32}, dotenv_path=None)
        needs = service["depends_on"]
        assert needs["index"]["condition"] == "service_completed_successfully"
        assert needs["redis"]["condition"] == needs["postgres"]["condition"] == "service_healthy"
        assert "qabot-index:/var/lib/qabot/index" in service["volumes"], name
        _assert_real_qabot_command(_cmd(service["command"]))
        probe = " ".join(service["healthcheck"]["test"])
        assert "/readyz" in probe, name
    assert services["redis"]["image"].startswith("redis:") and "healthcheck" in services["redis"]
    assert services["postgres"]["image"].startswith("postgres:") and "healthcheck" in services["postgres"]
    assert "ports" not in services["redis"] and "ports" not in services["postgres"], "kept on the compose network"


def test_two_slack_replicas_in_http_mode_behind_the_load_balancer(compose):
    services = compose["services"]
    ports = {}
    for name in ("slack-1", "slack-2"):
        argv = _cmd(services[name]["command"])
        assert argv[1:3] == ["run", "slack"] and "--http" in argv, argv
        assert argv[argv.index("--host") + 1] == "0.0.0.0"
        ports[name] = argv[argv.index("--http") + 1]
        probe = " ".join(services[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{ports[name]}/readyz" in probe
    lb = services["slack-lb"]
    assert set(lb["depends_on"]) == {"slack-1", "slack-2"}
    source, target = lb["volumes"][0].split(":")[:2]
    assert target == "/etc/nginx/conf.d/default.conf"
    conf = (ROOT / source).read_text()
    upstreams = dict(re.findall(r"^\s*server ([\w-]+):(\d+)", conf, flags=re.M))
    assert upstreams == ports, "the load balancer sends to both replicas, on the port each listens on"
    listen = re.search(r"listen (\d+);", conf).group(1)
    assert [p.rsplit(":", 1)[1] for p in lb["ports"]] == [listen]
    assert all(p.startswith("127.0.0.1:") for p in lb["ports"]), "published on the loopback, for a TLS proxy"
    # only Slack's requests go through: /metrics, /healthz and /readyz stay inside
    routed = re.findall(r"location (=?\s*[^\s{]+)\s*{([^}]*)}", conf)
    passing = [path.strip("= ").strip() for path, body in routed if "proxy_pass" in body]
    assert passing == ["/slack/events"], passing


def test_two_discord_shards_split_the_gateway(compose):
    from bot.adapters.discord.settings import DiscordSettings

    shards = []
    for name in ("discord-shard-0", "discord-shard-1"):
        service = compose["services"][name]
        assert _cmd(service["command"])[1:3] == ["run", "discord"]
        env = _replica_env(service)
        settings = DiscordSettings(
            token="x", shard_count=env["DISCORD_SHARD_COUNT"], shard_ids=env["DISCORD_SHARD_IDS"]
        )
        settings.check()
        shards.append((settings.shard_total, tuple(settings.shard_id_list or ())))
        assert f"127.0.0.1:{env['QABOT_METRICS_PORT']}/readyz" in " ".join(service["healthcheck"]["test"])
    totals = {total for total, _ in shards}
    assert totals == {2}
    assert sorted(i for _, ids in shards for i in ids) == [0, 1], "every shard run by exactly one process"
