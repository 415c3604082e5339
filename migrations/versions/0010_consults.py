"""consult requests, their offers, attached studies and notes

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.db import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consults",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=False),
        sa.Column("specialty", sa.String(length=64), nullable=True),
        sa.Column("named_specialist_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("scheduled_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("offered_to", sa.Integer(), nullable=True),
        sa.Column("offered_until", UTCDateTime(), nullable=True),
        sa.Column("specialist_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("accepted_at", UTCDateTime(), nullable=True),
        sa.Column("live_at", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("ended_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["requested_by"], ["users.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["named_specialist_id"], ["users.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["offered_to"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["specialist_id"], ["users.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["ended_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_consults_offers", "consults", ["status", "offered_until"])
    op.create_index("ix_consults_org", "consults", ["org_id", "created_at"])
    op.create_index("ix_consults_offered_to", "consults", ["offered_to"])
    op.create_index("ix_consults_specialist_id", "consults", ["specialist_id"])
    op.create_table(
        "consult_studies",
        sa.Column("consult_id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["consult_id"], ["consults.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["study_id"], ["dicom_studies.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("consult_id", "study_id"),
    )
    op.create_table(
        "consult_offers",
        sa.Column("consult_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("offered_at", UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("answered_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["consult_id"], ["consults.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("consult_id", "user_id"),
    )
    op.create_index("ix_consult_offers_user", "consult_offers", ["user_id", "offered_at"])
    op.create_table(
        "consult_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consult_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["consult_id"], ["consults.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_consult_notes_consult_id", "consult_notes", ["consult_id"])


def downgrade() -> None:
    op.drop_table("consult_notes")
    op.drop_table("consult_offers")
    op.drop_table("consult_studies")
    op.drop_table("consults")
