"""Keyed pseudonyms for platform ids, and a logging set-up that keeps raw ids and payloads out of logs.

One secret from the environment (QABOT_SECRET_KEY) keys two HMAC-SHA256 functions, each with its own
derived key so a log line's pseudonym cannot be joined with a database row's:

- `user(platform, id)` / `channel(platform, id)`: short pseudonyms for log lines ("u-3f9a0c1b7d2e");
- `db_key`: the key the feedback database hashes user ids with (one vote per person per answer).

Without the secret a random key is drawn for this process: pseudonyms are stable until the process
exits, so log lines of one run correlate but not across restarts, and a stored vote's user hash
changes with every restart (docs/privacy.md).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

SECRET_ENV = "QABOT_SECRET_KEY"
MIN_SECRET_LENGTH = 16
HOW_TO_MAKE_SECRET = 'python -c "import secrets; print(secrets.token_hex(32))"'

_LOG_PURPOSE = b"qabot log pseudonyms v1"
_DB_PURPOSE = b"qabot feedback user hash v1"

# Libraries that log request and response bodies (user ids, message text) at DEBUG.
LIBRARY_LOGGERS = ("slack_bolt", "slack_sdk", "discord", "aiohttp", "websockets", "urllib3", "asyncio")


class Pseudonymizer:
    """HMAC pseudonyms of platform ids, keyed by a secret (or by a random per-process key)."""

    def __init__(self, secret: str | bytes | None = None):
        self.ephemeral = not secret
        raw = secret.encode() if isinstance(secret, str) else (secret or secrets.token_bytes(32))
        self._log_key = hmac.new(raw, _LOG_PURPOSE, hashlib.sha256).digest()
        self.db_key = hmac.new(raw, _DB_PURPOSE, hashlib.sha256).digest()

    def _tag(self, prefix: str, platform: str, kind: str, value: str | None) -> str:
        if not value:
            return f"{prefix}-none"
        mac = hmac.new(self._log_key, f"{platform}:{kind}:{value}".encode("utf-8", "replace"), hashlib.sha256)
        return f"{prefix}-{mac.hexdigest()[:12]}"

    def user(self, platform: str, user_id: str | None) -> str:
        """A log-safe pseudonym of a user id ("u-…")."""
        return self._tag("u", platform, "user", user_id)

    def channel(self, platform: str, channel_id: str | None) -> str:
        """A log-safe pseudonym of a channel (or DM, or thread) id ("c-…")."""
        return self._tag("c", platform, "channel", channel_id)

    def __repr__(self) -> str:  # never the key
        return f"Pseudonymizer(ephemeral={self.ephemeral})"


def hash_user_for_db(key: bytes, platform: str, user_id: str) -> str:
    """The user hash stored in the feedback database: HMAC-SHA256(key, "platform:id"), hex."""
    return hmac.new(key, f"{platform}:{user_id}".encode("utf-8", "replace"), hashlib.sha256).hexdigest()


def warn_if_ephemeral(pseudonyms: Pseudonymizer, log: logging.Logger) -> None:
    if pseudonyms.ephemeral:
        log.warning(
            "%s is not set: user ids are hashed with a random key for this process only, so log "
            "pseudonyms and stored vote hashes do not match across restarts (a person can vote again on an "
            "answer given before a restart). Set it in .env, e.g. %s=$(%s)",
            SECRET_ENV,
            SECRET_ENV,
            HOW_TO_MAKE_SECRET,
        )


def configure_service_logging(level: str) -> None:
    """Logging for the long-running bots: timestamps, `level` for qabot's own loggers, and at most INFO for
    the SDKs, whose DEBUG output contains request bodies (raw user ids and message text)."""
    root = logging.getLogger()
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    root.setLevel(numeric)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.INFO))
    for handler in root.handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
