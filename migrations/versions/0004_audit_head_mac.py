"""audit chain head carries a MAC

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 08:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing heads get an empty MAC, which `audit verify` reports until the next event is
    # written (the migration does not know the secret key to compute it).
    with op.batch_alter_table("audit_chain_head", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mac", sa.String(length=64), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_chain_head", schema=None) as batch_op:
        batch_op.drop_column("mac")
