"""A database qabot cannot use, said in one line that names it (a file, or a URL without its password),
what is wrong and the fix. The CLI prints it and exits 2."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.core.errors import QabotError

OPEN_BUSY_TIMEOUT_S = 10.0  # how long opening the database may wait for another process's lock
FIX_MOVE = "move it away (e.g. `mv {path} {path}.broken`) and qabot starts a new one, or point QABOT_FEEDBACK_DB at another file"


class FeedbackDatabaseError(QabotError):
    """The feedback database cannot be used; the message is one line that ends with the fix."""

    def __init__(self, path: Path | str, problem: str, fix: str):
        super().__init__(f"the feedback database {path} {problem}. Fix: {fix.replace('{path}', str(path))}.")
        self.problem = problem
        self.fix = fix


def sqlite_error(path: Path | str, err: BaseException) -> FeedbackDatabaseError:
    """What is wrong with an SQLite file, from the driver's error."""
    text = str(err)
    if "file is not a database" in text:
        return FeedbackDatabaseError(path, "is not an SQLite database (damaged or another kind of file)", FIX_MOVE)
    if "malformed" in text or "corrupt" in text:
        return FeedbackDatabaseError(path, "is damaged (truncated or overwritten)", FIX_MOVE)
    if "readonly" in text or "read-only" in text:
        return FeedbackDatabaseError(
            path, "is read-only for this user", "give it to the service user (`chown`, `chmod 600`)"
        )
    if "locked" in text or "busy" in text:
        return FeedbackDatabaseError(
            path,
            f"stayed locked by another process for {OPEN_BUSY_TIMEOUT_S:.0f} s",
            "stop whatever holds it (a long transaction in another program) and start qabot again",
        )
    if "unable to open" in text:
        return FeedbackDatabaseError(
            path, "cannot be opened", "check that its folder exists and is writable by the service user"
        )
    return FeedbackDatabaseError(path, f"cannot be used ({text})", FIX_MOVE)


def server_error(display: str, err: BaseException) -> FeedbackDatabaseError:
    """What is wrong with a database server, from the driver's error (never its password)."""
    text = " ".join(str(err).split())
    low = text.lower()
    login = ("password authentication failed", "no password supplied", "pg_hba.conf")
    if any(words in low for words in login) or ("role" in low and "does not exist" in low):
        return FeedbackDatabaseError(display, "refused the login", "check the user and password in QABOT_DATABASE_URL")
    if "database" in low and "does not exist" in low:
        return FeedbackDatabaseError(
            display,
            "does not exist on that server",
            "create it (`createdb NAME` as the PostgreSQL admin) or fix the name in QABOT_DATABASE_URL",
        )
    if "connection refused" in low or "could not connect" in low or "connection failed" in low or "timeout" in low:
        return FeedbackDatabaseError(
            display,
            "cannot be reached",
            "start PostgreSQL, or fix the host and port in QABOT_DATABASE_URL (is the server listening there?)",
        )
    if "permission denied" in low:
        return FeedbackDatabaseError(
            display,
            "does not let this user create or change qabot's tables",
            "grant the user of QABOT_DATABASE_URL the rights on that database (e.g. make it the owner)",
        )
    first = text[:200]
    return FeedbackDatabaseError(display, f"cannot be used ({first})", "check QABOT_DATABASE_URL and the server's log")


def is_sqlite_error(err: BaseException) -> bool:
    return isinstance(err, sqlite3.Error)
