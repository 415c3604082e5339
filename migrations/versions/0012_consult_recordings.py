"""consult recordings: both doctors' consent, the patient's, and the recorded file

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.db import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consult_recordings",
        sa.Column("consult_id", sa.Integer(), nullable=False),
        sa.Column("gp_consent_by", sa.Integer(), nullable=True),
        sa.Column("gp_consent_at", UTCDateTime(), nullable=True),
        sa.Column("patient_consent", sa.Boolean(), nullable=False),
        sa.Column("specialist_consent_by", sa.Integer(), nullable=True),
        sa.Column("specialist_consent_at", UTCDateTime(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("stopped_at", UTCDateTime(), nullable=True),
        sa.Column("stop_reason", sa.String(length=32), nullable=True),
        sa.Column("media_path", sa.String(length=255), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("tracks", sa.JSON(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["consult_id"], ["consults.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["gp_consent_by"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["specialist_consent_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("consult_id"),
    )


def downgrade() -> None:
    op.drop_table("consult_recordings")
