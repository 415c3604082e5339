"""link studies to patients

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 00:41:02.314455
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dicom_studies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("linked_patient_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_dicom_studies_linked_patient_id"), ["linked_patient_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_dicom_studies_linked_patient_id_patients"),
            "patients",
            ["linked_patient_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("dicom_studies", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_dicom_studies_linked_patient_id_patients"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_dicom_studies_linked_patient_id"))
        batch_op.drop_column("linked_patient_id")
