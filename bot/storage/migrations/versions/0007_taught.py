"""Schema 7: what admins taught from chat ("Teach qabot", issue 9 item 3) and the candidates shown to them.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "taught",
        sa.Column("pair_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("normalized_question", sa.Text, nullable=False),
        sa.Column("passage_text", sa.Text, nullable=False),
        sa.Column("doc_path", sa.Text, nullable=False),
        sa.Column("section", sa.Text, nullable=False),
        sa.Column("passage_id", sa.Text, nullable=False),
        sa.Column("index_version", sa.Text, nullable=False),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("user_hash", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sqlite_autoincrement=True,  # an undone pair's id is never given to another
    )
    op.create_index("taught_question", "taught", ["normalized_question"])
    op.create_table(
        "teach_offers",
        sa.Column("offer_id", sa.Text, primary_key=True),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("candidates", sa.Text, nullable=False),
        sa.Column("index_version", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
