"""Which database: an SQLite file (the default, QABOT_FEEDBACK_DB) or a server URL (QABOT_DATABASE_URL)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from bot.config import ConfigError

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
URL_FORMS = "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"


@dataclass(frozen=True)
class DatabaseTarget:
    url: URL
    path: Path | None  # the SQLite file; None in memory and on a server

    @property
    def backend(self) -> str:
        return self.url.get_backend_name()

    @property
    def memory(self) -> bool:
        return self.backend == SQLITE and self.path is None

    @property
    def display(self) -> str:
        """How messages and logs name it: the file, or the URL without its password."""
        if self.path is not None:
            return str(self.path)
        return self.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:  # never the password
        return f"DatabaseTarget({self.display!r})"


def database_target(where: str | Path) -> DatabaseTarget:
    """A path (or ':memory:') is an SQLite file; anything with '://' is a URL. Raises ConfigError for a URL
    qabot cannot use (named without its password)."""
    text = str(where)
    if isinstance(where, Path) or "://" not in text:
        if text in (":memory:", ""):
            return DatabaseTarget(make_url("sqlite://"), None)
        path = Path(text).expanduser()
        return DatabaseTarget(URL.create("sqlite+pysqlite", database=str(path)), path)
    try:
        url = make_url(text)
    except ArgumentError:
        raise ConfigError(f"QABOT_DATABASE_URL is not a database URL: use {URL_FORMS}") from None
    backend = url.get_backend_name()
    if backend == "postgres":  # the short form some hosts hand out
        backend, url = POSTGRESQL, url.set(drivername=POSTGRESQL)
    if backend == SQLITE:
        if url.get_driver_name() not in ("pysqlite", ""):
            url = url.set(drivername="sqlite+pysqlite")
        if not url.database or url.database == ":memory:":
            return DatabaseTarget(make_url("sqlite://"), None)
        return DatabaseTarget(url, Path(url.database).expanduser())
    if backend == POSTGRESQL:
        if url.get_driver_name() in ("", "psycopg2"):  # psycopg (3) is the driver qabot ships with
            url = url.set(drivername="postgresql+psycopg")
        elif url.get_driver_name() != "psycopg":
            raise ConfigError(
                f"QABOT_DATABASE_URL asks for the {url.get_driver_name()} driver; qabot uses psycopg: "
                f"write postgresql+psycopg://... ({url.render_as_string(hide_password=True)})"
            )
        if not url.database:
            raise ConfigError(
                f"QABOT_DATABASE_URL names no database ({url.render_as_string(hide_password=True)}): use {URL_FORMS}"
            )
        return DatabaseTarget(url, None)
    raise ConfigError(f"QABOT_DATABASE_URL must be an SQLite or PostgreSQL URL, got {backend!r}: use {URL_FORMS}")
