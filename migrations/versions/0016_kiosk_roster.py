"""the kiosk's roster shifts and booked follow-ups

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.db import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kiosk_roster_shifts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("specialty", sa.String(length=64), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_kiosk_roster_shifts_time",
        "kiosk_roster_shifts",
        ["specialty", "starts_at", "ends_at"],
    )
    op.create_index("ix_kiosk_roster_shifts_user", "kiosk_roster_shifts", ["user_id", "starts_at"])
    op.create_table(
        "kiosk_follow_ups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "person_id",
            sa.Integer(),
            sa.ForeignKey("patients.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "org_id",
            sa.Integer(),
            sa.ForeignKey("organisations.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("visit_id", sa.Integer(), sa.ForeignKey("kiosk_visits.id", ondelete="SET NULL")),
        sa.Column(
            "device_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column(
            "specialist_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("specialty", sa.String(length=64), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("where", sa.String(length=8), nullable=False),
        sa.Column("home_token", sa.String(length=64), unique=True),
        sa.Column("consult_id", sa.Integer(), sa.ForeignKey("consults.id", ondelete="SET NULL")),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("reminded_at", UTCDateTime()),
        sa.UniqueConstraint("specialist_id", "starts_at", name="uq_kiosk_follow_ups_slot"),
    )
    op.create_index("ix_kiosk_follow_ups_visit_id", "kiosk_follow_ups", ["visit_id"])
    op.create_index("ix_kiosk_follow_ups_person", "kiosk_follow_ups", ["person_id", "starts_at"])
    op.create_index("ix_kiosk_follow_ups_remind", "kiosk_follow_ups", ["reminded_at", "starts_at"])


def downgrade() -> None:
    op.drop_table("kiosk_follow_ups")
    op.drop_table("kiosk_roster_shifts")
