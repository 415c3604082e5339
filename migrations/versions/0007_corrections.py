"""patient search keys (folded name and identifier), audit events by actor, users who
must change a temporary password

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 10:00:00

Until 0006 (DICOM peers) is merged, down_revision is "0005"; at the merge it becomes "0006".
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.patients.search import (
    IDENTIFIER_KEY_LENGTH,
    NAME_KEY_LENGTH,
    identifier_key,
    name_key,
)

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_NAME_KEY = sa.String(NAME_KEY_LENGTH).with_variant(
    sa.String(NAME_KEY_LENGTH, collation="C"), "postgresql"
)
_IDENTIFIER_KEY = sa.String(IDENTIFIER_KEY_LENGTH).with_variant(
    sa.String(IDENTIFIER_KEY_LENGTH, collation="C"), "postgresql"
)
_PATIENTS = sa.table(
    "patients",
    sa.column("id", sa.Integer()),
    sa.column("name", sa.String()),
    sa.column("identifier", sa.String()),
    sa.column("name_key", sa.String()),
    sa.column("identifier_key", sa.String()),
)


def upgrade() -> None:
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name_key", _NAME_KEY, nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("identifier_key", _IDENTIFIER_KEY, nullable=False, server_default="")
        )
        batch_op.create_index(
            "ix_patients_org_identifier_key", ["org_id", "identifier_key"], unique=False
        )
    connection = op.get_bind()
    rows = connection.execute(sa.select(_PATIENTS.c.id, _PATIENTS.c.name, _PATIENTS.c.identifier))
    for patient_id, name, identifier in rows.all():
        connection.execute(
            _PATIENTS.update()
            .where(_PATIENTS.c.id == patient_id)
            .values(name_key=name_key(name), identifier_key=identifier_key(identifier))
        )

    op.create_index("ix_audit_events_actor", "audit_events", ["actor", "id"], unique=False)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "password_change_required",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("password_change_required")
    op.drop_index("ix_audit_events_actor", table_name="audit_events")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_index("ix_patients_org_identifier_key")
        batch_op.drop_column("identifier_key")
        batch_op.drop_column("name_key")
