"""Schema 4: the answer as shown (its JSON, without the question), so any replica can show it again, e.g.
Slack's "Share in channel" after a restart or on another replica. Older rows keep ''.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("answers", sa.Column("answer_json", sa.Text, nullable=False, server_default=""))
