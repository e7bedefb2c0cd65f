"""Schema 1: the answer log, votes and the threads the bot answered in (as SQLite files of qabot 0.1 had it).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "answers",
        sa.Column("answer_id", sa.Text, primary_key=True),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("normalized_question", sa.Text, nullable=False, server_default=""),
        sa.Column("passage_ids", sa.Text, nullable=False),
        sa.Column("index_version", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("channel_id", sa.Text, nullable=False),
        sa.Column("user_hash", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("answers_kind", "answers", ["kind"])
    op.create_table(
        "feedback",
        sa.Column("answer_id", sa.Text, sa.ForeignKey("answers.answer_id"), primary_key=True),
        sa.Column("user_hash", sa.Text, primary_key=True),
        sa.Column("vote", sa.Integer, nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("passage_ids", sa.Text, nullable=False),
        sa.Column("index_version", sa.Text, nullable=False),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("channel_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "threads",
        sa.Column("platform", sa.Text, primary_key=True),
        sa.Column("channel_id", sa.Text, primary_key=True),
        sa.Column("thread_id", sa.Text, primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
