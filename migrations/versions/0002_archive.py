"""archive index: studies, series, instances

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _match_text(length: int) -> sa.types.TypeEngine[str]:
    """Text compared by wildcard matching: binary collation on PostgreSQL."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "dicom_studies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("patient_id", _match_text(1024), nullable=True),
        sa.Column("patient_name", sa.String(length=1024), nullable=True),
        sa.Column("patient_name_key", _match_text(256), nullable=True),
        sa.Column("patient_birth_date", sa.String(length=16), nullable=True),
        sa.Column("patient_sex", sa.String(length=16), nullable=True),
        sa.Column("study_date", sa.String(length=8), nullable=True),
        sa.Column("study_time", sa.String(length=32), nullable=True),
        sa.Column("accession_number", _match_text(1024), nullable=True),
        sa.Column("study_id", _match_text(1024), nullable=True),
        sa.Column("study_description", sa.String(length=1024), nullable=True),
        sa.Column("referring_physician_name", sa.String(length=1024), nullable=True),
        sa.Column("referring_physician_key", _match_text(256), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_dicom_studies_org_id_organisations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dicom_studies")),
        sa.UniqueConstraint("org_id", "study_uid", name="uq_dicom_studies_org_study_uid"),
    )
    with op.batch_alter_table("dicom_studies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dicom_studies_study_uid"), ["study_uid"], unique=False)
        batch_op.create_index(
            "ix_dicom_studies_org_study_date", ["org_id", "study_date", "id"], unique=False
        )
        batch_op.create_index(
            "ix_dicom_studies_org_patient_id", ["org_id", "patient_id"], unique=False
        )
        batch_op.create_index(
            "ix_dicom_studies_org_patient_name_key", ["org_id", "patient_name_key"], unique=False
        )
        batch_op.create_index(
            "ix_dicom_studies_org_accession_number", ["org_id", "accession_number"], unique=False
        )

    op.create_table(
        "dicom_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("series_uid", sa.String(length=64), nullable=False),
        sa.Column("modality", _match_text(1024), nullable=True),
        sa.Column("series_number", sa.Integer(), nullable=True),
        sa.Column("series_description", sa.String(length=1024), nullable=True),
        sa.Column("body_part", sa.String(length=1024), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["dicom_studies.id"],
            name=op.f("fk_dicom_series_study_id_dicom_studies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dicom_series")),
        sa.UniqueConstraint("study_id", "series_uid", name="uq_dicom_series_study_series_uid"),
    )
    with op.batch_alter_table("dicom_series", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dicom_series_series_uid"), ["series_uid"], unique=False
        )
        batch_op.create_index(
            "ix_dicom_series_modality_study", ["modality", "study_id"], unique=False
        )

    op.create_table(
        "dicom_instances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("sop_class_uid", sa.String(length=64), nullable=False),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.Column("number_of_frames", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("columns", sa.Integer(), nullable=True),
        sa.Column("bits_allocated", sa.Integer(), nullable=True),
        sa.Column("transfer_syntax_uid", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("preamble_neutralised", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("stored_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_dicom_instances_org_id_organisations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["series_id"],
            ["dicom_series.id"],
            name=op.f("fk_dicom_instances_series_id_dicom_series"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["dicom_studies.id"],
            name=op.f("fk_dicom_instances_study_id_dicom_studies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dicom_instances")),
        sa.UniqueConstraint("org_id", "sop_instance_uid", name="uq_dicom_instances_org_sop_uid"),
    )
    with op.batch_alter_table("dicom_instances", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dicom_instances_series_id"), ["series_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_dicom_instances_sha256"), ["sha256"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_dicom_instances_sop_instance_uid"), ["sop_instance_uid"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_dicom_instances_study_id"), ["study_id"], unique=False)


def downgrade() -> None:
    op.drop_table("dicom_instances")
    op.drop_table("dicom_series")
    op.drop_table("dicom_studies")
