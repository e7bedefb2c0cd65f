"""Schema 5: hand-offs to people (one per thread, across restarts and replicas) and each question's vector
(the encoder's embedding, to find repeats in a channel and to group the knowledge gaps by meaning).

The vector is text: "<encoder id>:<base64 of little-endian float16>"; '' for older rows and for questions
whose text was erased by the retention setting (the vector is erased with it).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("answers", sa.Column("question_vector", sa.Text, nullable=False, server_default=""))
    op.create_index("answers_channel", "answers", ["platform", "channel_id", "created_at"])
    op.create_table(
        "handoffs",
        sa.Column("platform", sa.Text, primary_key=True),
        sa.Column("channel_id", sa.Text, primary_key=True),
        sa.Column("thread_id", sa.Text, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),  # abstain | thumbs_down | asked
        sa.Column("answer_id", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.Float, nullable=False),
    )
