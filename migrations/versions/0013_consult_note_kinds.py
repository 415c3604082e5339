"""consult notes say what they are (a chat message of the call, advice, a prescription
suggestion, a referral up or down, or a note), and a guest's chat message is kept too

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
        batch.add_column(sa.Column("guest_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_consult_notes_guest_id_consult_guests",
            "consult_guests",
            ["guest_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.alter_column("author_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("consult_notes") as batch:
        batch.alter_column("author_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_constraint("fk_consult_notes_guest_id_consult_guests", type_="foreignkey")
        batch.drop_column("guest_id")
        batch.drop_column("kind")
