"""Schema 2: user hashes are keyed from QABOT_SECRET_KEY; the salt schema 1 kept beside the data is erased.

Schema 1 stored the salt of its user hashes in `meta`, which made them reversible for anyone who could read
the file. The salt is destroyed; old hashes stay as opaque ids (docs/privacy.md).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

USER_HASH_SCHEME = "hmac-sha256(key derived from QABOT_SECRET_KEY, 'platform:user_id')"


def upgrade() -> None:
    meta = sa.table("meta", sa.column("key", sa.Text), sa.column("value", sa.Text))
    op.execute(meta.delete().where(meta.c.key.in_(["user_salt", "user_hash"])))
    op.execute(meta.insert().values(key="user_hash", value=USER_HASH_SCHEME))
