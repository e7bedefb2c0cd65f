"""Schema 3: the conversation (thread) an answer was given in; a follow-up there is read with the turns before it.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("answers", sa.Column("thread_id", sa.Text, nullable=False, server_default=""))
    op.create_index("answers_thread", "answers", ["platform", "channel_id", "thread_id", "created_at"])
