"""consult notes say what they are: a chat message of the call, advice, a prescription
suggestion, a referral up or down, or a note

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 17:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Notes written before kinds existed were chat and notes alike: they stay plain notes.
    with op.batch_alter_table("consult_notes") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="note")
        )


def downgrade() -> None:
    with op.batch_alter_table("consult_notes") as batch:
        batch.drop_column("kind")
