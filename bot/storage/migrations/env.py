"""Alembic's environment for qabot's database.

qabot runs the migrations itself when it opens the database (bot/storage/migrate.py hands its connection
over, inside its own transaction and lock). Run by hand (`alembic -c bot/storage/alembic.ini ...`), e.g.
to write the next migration with --autogenerate, it connects to QABOT_DATABASE_URL or QABOT_FEEDBACK_DB.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from bot.storage.schema import metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from bot.storage.target import database_target

    where = os.environ.get("QABOT_DATABASE_URL") or os.environ.get("QABOT_FEEDBACK_DB", "./data/qabot.sqlite3")
    engine = create_engine(database_target(where).url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()
