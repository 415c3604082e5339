"""the kiosk's people, visits and vitals readings; walk-in consults

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.db import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consults") as batch:
        batch.add_column(
            sa.Column("walk_in", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "kiosk_people",
        sa.Column(
            "patient_id",
            sa.Integer(),
            sa.ForeignKey("patients.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "org_id",
            sa.Integer(),
            sa.ForeignKey("organisations.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("lookup", sa.String(length=64), nullable=False),
        sa.Column("identified_by", sa.String(length=16), nullable=False),
        sa.Column("consented_at", UTCDateTime(), nullable=False),
        sa.Column(
            "clinic_id",
            sa.Integer(),
            sa.ForeignKey("organisations.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("org_id", "lookup", name="uq_kiosk_people_lookup"),
    )
    op.create_table(
        "kiosk_visits",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "device_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column(
            "org_id",
            sa.Integer(),
            sa.ForeignKey("organisations.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column(
            "person_id",
            sa.Integer(),
            sa.ForeignKey("patients.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("known", sa.Boolean(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("closed_how", sa.String(length=16), nullable=True),
        sa.Column(
            "consult_id",
            sa.Integer(),
            sa.ForeignKey("consults.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("take_home", sa.String(length=64), nullable=True, unique=True),
        sa.Column("take_home_until", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_kiosk_visits_device_open", "kiosk_visits", ["device_id", "closed_at"])
    op.create_index("ix_kiosk_visits_person", "kiosk_visits", ["person_id", "started_at"])
    op.create_table(
        "kiosk_readings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "visit_id",
            sa.Integer(),
            sa.ForeignKey("kiosk_visits.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "person_id",
            sa.Integer(),
            sa.ForeignKey("patients.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("taken_at", UTCDateTime(), nullable=False),
        sa.Column("systolic", sa.Integer(), nullable=True),
        sa.Column("diastolic", sa.Integer(), nullable=True),
        sa.Column("heart_rate", sa.Integer(), nullable=True),
        sa.Column("spo2", sa.Integer(), nullable=True),
        sa.Column("glucose_mmol_l", sa.Float(), nullable=True),
        sa.Column("glucose_fasting", sa.Boolean(), nullable=True),
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.Column("weight_kg", sa.Float(), nullable=True),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("rules_version", sa.String(length=16), nullable=False),
    )
    op.create_index("ix_kiosk_readings_visit_id", "kiosk_readings", ["visit_id"])
    op.create_index("ix_kiosk_readings_person", "kiosk_readings", ["person_id", "taken_at"])


def downgrade() -> None:
    op.drop_table("kiosk_readings")
    op.drop_table("kiosk_visits")
    op.drop_table("kiosk_people")
    with op.batch_alter_table("consults") as batch:
        batch.drop_column("walk_in")
