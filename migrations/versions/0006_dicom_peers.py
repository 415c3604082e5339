"""dicom peers: organisations' allow-listed networks and pinned TLS client certificates

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing organisations get no list: from now on their AE titles are admitted from
    # loopback only, until `doorstep org update NAME --dicom-peer ...` lists their devices.
    op.create_table(
        "organisation_dicom_peers",
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_organisation_dicom_peers_org_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "network", name=op.f("pk_organisation_dicom_peers")),
    )
    # A unique index rather than a constraint: SQLite adds it without rebuilding the table
    # (which its foreign keys from users would forbid).
    op.add_column("organisations", sa.Column("dicom_cert_sha256", sa.String(length=64)))
    op.create_index(
        op.f("ix_organisations_dicom_cert_sha256"),
        "organisations",
        ["dicom_cert_sha256"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_organisations_dicom_cert_sha256"), table_name="organisations")
    op.drop_column("organisations", "dicom_cert_sha256")  # SQLite 3.35+ drops it in place
    op.drop_table("organisation_dicom_peers")
