"""The settings every front end shares (QABOT_*), read from the environment and then `.env`.

Precedence: explicit keyword arguments to `Settings.from_env(...)`, then real environment variables,
then the `.env` file (python-dotenv never overrides a variable that is already set), then defaults.

Each adapter owns its platform's settings (tokens, admin ids, channel allow-lists) in its own
pydantic-settings class with its prefix (SLACK_, DISCORD_, ...; see bot/adapters/base.py), which
names a missing secret and where to get it. A field marked secret never appears in `repr()`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from bot.core.errors import QabotError

# Rate limits, chosen for a community server:
# - 6 questions a minute per user: an answer is a few quoted passages that take ~10 s to read, so a
#   person asking faster than that is either pasting a batch or a script; it still leaves room for
#   quick rephrasing ("no, I meant...").
# - 30 questions a minute per channel: one busy channel can't monopolise the CPU encoder (every
#   question embeds on the CPU) and the channel stays readable for the humans in it.
DEFAULT_USER_RATE_LIMIT = 6
DEFAULT_CHANNEL_RATE_LIMIT = 30
DEFAULT_RATE_WINDOW_S = 60.0
# Questions are kept long enough for the weekly/monthly look at `qabot feedback report`, not forever.
DEFAULT_QUESTION_RETENTION_DAYS = 90
MIN_SECRET_KEY_LENGTH = 16
# Knowledge limits for building (see index_builder/sources.py): bytes per knowledge file and characters
# per paragraph or list item. What is over a limit is skipped and reported; the build goes on.
DEFAULT_MAX_DOCUMENT_BYTES = 2_000_000
DEFAULT_MAX_PASSAGE_CHARS = 20_000
# Repeats: a question close to one answered in the same channel within this many days gets a link to
# that thread (0: off); how close, as the question encoder's cosine (bot/conversation/similarity.py).
DEFAULT_REPEAT_DAYS = 14
DEFAULT_REPEAT_SIMILARITY = 0.85
# "Teach qabot" steering (docs/teach.md): the values chosen on the dev half of tests/eval/intents.jsonl
DEFAULT_TEACH_SIMILARITY = 0.60
DEFAULT_TEACH_MARGIN = 4.0
DEFAULT_TEACH_CLOSE_SIMILARITY = 0.85
DATABASE_URL_SCHEMES = ("sqlite://", "postgresql://", "postgresql+psycopg://", "postgres://")


class ConfigError(QabotError):
    """A setting is missing or malformed; the message names the variable and how to fix it."""


_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}


def _split_ids(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(part.strip() for part in value.replace(";", ",").split(",") if part.strip())


def _secret(env: str) -> Any:
    return field(default=None, repr=False, metadata={"env": env, "secret": True})


def _env(env: str, default: Any, **kw: Any) -> Any:
    return field(default=default, metadata={"env": env, **kw})


@dataclass(frozen=True)
class Settings:
    index_dir: Path = _env("QABOT_INDEX_DIR", Path("./index"))
    knowledge_dir: Path = _env("QABOT_KNOWLEDGE_DIR", Path("./knowledge"))
    feedback_db: Path = _env("QABOT_FEEDBACK_DB", Path("./data/qabot.sqlite3"))
    # answers, votes and threads somewhere else than that SQLite file: postgresql+psycopg://... for several
    # replicas (docs/storage.md). It may carry a password, so it is shown like a secret (set / unset)
    database_url: str | None = _secret("QABOT_DATABASE_URL")

    dms_enabled: bool = _env("QABOT_DMS_ENABLED", True)
    user_rate_limit: int = _env("QABOT_USER_RATE_LIMIT", DEFAULT_USER_RATE_LIMIT)  # questions per window
    channel_rate_limit: int = _env("QABOT_CHANNEL_RATE_LIMIT", DEFAULT_CHANNEL_RATE_LIMIT)
    rate_window_s: float = _env("QABOT_RATE_WINDOW_S", DEFAULT_RATE_WINDOW_S)
    # The local terminal user is trusted: piping a file of questions through `qabot chat` is not abuse.
    rate_limit_exempt_platforms: tuple[str, ...] = field(default=("terminal",))
    log_level: str = _env("QABOT_LOG_LEVEL", "INFO")
    # keys the pseudonyms of user ids in logs and in the feedback database (docs/privacy.md)
    secret_key: str | None = _secret("QABOT_SECRET_KEY")
    # stored question texts are erased after this many days (counts and votes stay); 0 keeps them
    question_retention_days: int = _env("QABOT_QUESTION_RETENTION_DAYS", DEFAULT_QUESTION_RETENTION_DAYS)
    # an answer links to the thread of a close question answered in the same channel within this many
    # days (0: off); "close" is a cosine of the question encoder at or above repeat_similarity
    repeat_days: int = _env("QABOT_REPEAT_DAYS", DEFAULT_REPEAT_DAYS)
    repeat_similarity: float = _env("QABOT_REPEAT_SIMILARITY", DEFAULT_REPEAT_SIMILARITY)
    # taught pairs ("Teach qabot", docs/teach.md) steer questions whose cosine with a taught question is above
    # teach_similarity: the taught passage goes first unless it trails the best one by teach_margin x
    # (cosine - teach_similarity) / (1 - teach_similarity) or more; from teach_close_similarity up, a
    # "not covered" mark makes the question abstain and a taught passage gets at least medium confidence
    teach_similarity: float = _env("QABOT_TEACH_SIMILARITY", DEFAULT_TEACH_SIMILARITY)
    teach_margin: float = _env("QABOT_TEACH_MARGIN", DEFAULT_TEACH_MARGIN)
    teach_close_similarity: float = _env("QABOT_TEACH_CLOSE_SIMILARITY", DEFAULT_TEACH_CLOSE_SIMILARITY)
    max_document_bytes: int = _env("QABOT_MAX_DOCUMENT_BYTES", DEFAULT_MAX_DOCUMENT_BYTES)
    max_passage_chars: int = _env("QABOT_MAX_PASSAGE_CHARS", DEFAULT_MAX_PASSAGE_CHARS)
    # replicas (docs/scaling.md): shared short-lived state in Redis; unset, everything stays in this process
    redis_url: str | None = _secret("QABOT_REDIS_URL")  # secret: the URL may carry a password
    # /metrics, /healthz and /readyz on a port of their own (None: not served; 0: any free port)
    metrics_port: int | None = _env("QABOT_METRICS_PORT", None)
    metrics_host: str = _env("QABOT_METRICS_HOST", "127.0.0.1")

    # ---- loading -------------------------------------------------------------------------------

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        dotenv_path: str | os.PathLike[str] | None = ".env",
        overrides: Mapping[str, Any] | None = None,
        **more_overrides: Any,
    ) -> Settings:
        """Read settings from `env` (default os.environ), then `dotenv_path` (None: skip), then defaults.

        `overrides` (a mapping) and keyword overrides (e.g. index_dir=... from a CLI option) win over both;
        None values in them are ignored, so an unset CLI option falls through to the environment.
        """
        values: dict[str, str] = {}
        if dotenv_path is not None and Path(dotenv_path).is_file():
            from dotenv import dotenv_values

            values.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
        values.update(os.environ if env is None else env)  # the real environment wins over .env

        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata.get("env")
            if name is None or name not in values:
                continue
            raw = values[name].strip()
            if raw == "" and not f.metadata.get("secret"):
                continue  # VAR= in .env means "use the default"
            kwargs[f.name] = _convert(name, f.type, raw, f.default)
        for key, value in {**(overrides or {}), **more_overrides}.items():
            if value is not None:
                kwargs[key] = value
        return cls(**kwargs)

    def __post_init__(self) -> None:
        # Accept str paths and comma strings from callers; keep the types documented above.
        for name in ("index_dir", "knowledge_dir", "feedback_db"):
            value = getattr(self, name)
            if not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "tuple[str, ...]" and isinstance(value, str):
                object.__setattr__(self, f.name, _split_ids(value))
            elif f.type == "tuple[str, ...]" and not isinstance(value, tuple):
                object.__setattr__(self, f.name, tuple(str(v) for v in value))
            elif f.metadata.get("secret") and value is not None:
                object.__setattr__(self, f.name, str(value).strip() or None)
        for name in ("user_rate_limit", "channel_rate_limit", "max_document_bytes", "max_passage_chars"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{_env_name(name)} must be at least 1, got {getattr(self, name)}")
        if self.rate_window_s <= 0:
            raise ConfigError(f"QABOT_RATE_WINDOW_S must be positive, got {self.rate_window_s}")
        if self.question_retention_days < 0:
            raise ConfigError(
                f"QABOT_QUESTION_RETENTION_DAYS must be 0 (keep) or more, got {self.question_retention_days}"
            )
        if self.repeat_days < 0:
            raise ConfigError(f"QABOT_REPEAT_DAYS must be 0 (off) or more, got {self.repeat_days}")
        if not 0.0 < self.repeat_similarity <= 1.0:
            raise ConfigError(
                f"QABOT_REPEAT_SIMILARITY must be a cosine above 0 and at most 1, got {self.repeat_similarity}"
            )
        for name, value in (
            ("QABOT_TEACH_SIMILARITY", self.teach_similarity),
            ("QABOT_TEACH_CLOSE_SIMILARITY", self.teach_close_similarity),
        ):
            if not 0.0 < value <= 1.0:
                raise ConfigError(f"{name} must be a cosine above 0 and at most 1, got {value}")
        if self.teach_margin < 0:
            raise ConfigError(f"QABOT_TEACH_MARGIN must be 0 or more, got {self.teach_margin}")
        if self.redis_url is not None and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                "QABOT_REDIS_URL must start with redis://, rediss:// or unix:// (e.g. redis://redis:6379/0)"
            )
        if self.redis_url is not None and self.secret_key is None:
            raise ConfigError(
                "QABOT_REDIS_URL needs QABOT_SECRET_KEY: the replicas must share it (rate limits and vote hashes "
                'are keyed by it). Make one with python -c "import secrets; print(secrets.token_hex(32))"'
            )
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"QABOT_METRICS_PORT must be a port number (0-65535), got {self.metrics_port}")
        if self.database_url is not None and not self.database_url.startswith(DATABASE_URL_SCHEMES):
            scheme = self.database_url.partition(":")[0][:20] if "://" in self.database_url else "no scheme"
            raise ConfigError(
                f"QABOT_DATABASE_URL must start with sqlite:/// or postgresql+psycopg:// (got {scheme}); "
                "e.g. postgresql+psycopg://qabot:PASSWORD@db:5432/qabot"
            )
        if self.secret_key is not None and len(self.secret_key) < MIN_SECRET_KEY_LENGTH:
            raise ConfigError(
                f"QABOT_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters: "
                'make one with python -c "import secrets; print(secrets.token_hex(32))"'
            )

    def replace(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    # ---- secrets -------------------------------------------------------------------------------

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret"):
                parts.append(f"{f.name}={'***' if value else None}")
            else:
                parts.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(parts)})"

    __str__ = __repr__

    def safe_dict(self) -> dict[str, Any]:
        """Settings fit for logs and status output: secrets shown only as set / unset."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret"):
                out[f.name] = "set" if value else "unset"
            elif isinstance(value, Path):
                out[f.name] = str(value)
            else:
                out[f.name] = value
        return out


def _env_name(attr: str) -> str:
    for f in fields(Settings):
        if f.name == attr:
            return f.metadata.get("env", attr.upper())
    return attr.upper()


def _convert(var: str, type_name: Any, raw: str, default: Any) -> Any:
    type_name = str(type_name)
    try:
        if type_name == "bool":
            low = raw.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(raw)
        if type_name in ("int", "int | None"):
            return int(raw)
        if type_name == "float":
            return float(raw)
    except ValueError:
        kind = {"bool": "true or false", "int": "a whole number", "int | None": "a whole number", "float": "a number"}[
            type_name
        ]
        raise ConfigError(f"{var} must be {kind}, got {raw!r}") from None
    if type_name == "Path":
        return Path(raw).expanduser()
    if type_name == "tuple[str, ...]":
        return _split_ids(raw)
    if type_name == "str | None":
        return raw or None
    return raw


def _iter_env_names() -> Iterable[str]:
    for f in fields(Settings):
        if "env" in f.metadata:
            yield f.metadata["env"]


ENV_VARS: tuple[str, ...] = tuple(_iter_env_names())
