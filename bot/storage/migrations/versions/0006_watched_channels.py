"""Schema 6: the channels where the bot answers questions without a mention (`/qabot watch`, issue 9
item 1), shared by every replica of a platform's bot.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watched_channels",
        sa.Column("platform", sa.Text, primary_key=True),
        sa.Column("channel_id", sa.Text, primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
