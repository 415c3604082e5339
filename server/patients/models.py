"""Patients registered by a clinic."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, validates

from server.db import Base, UTCDateTime, utcnow
from server.patients.search import (
    IDENTIFIER_KEY_LENGTH,
    NAME_KEY_LENGTH,
    identifier_key,
    name_key,
)

# Binary collation on PostgreSQL, as on SQLite: the keys are already folded, and a prefix
# LIKE can then be answered from the btree index.
NAME_KEY = String(NAME_KEY_LENGTH).with_variant(
    String(NAME_KEY_LENGTH, collation="C"), "postgresql"
)
IDENTIFIER_KEY = String(IDENTIFIER_KEY_LENGTH).with_variant(
    String(IDENTIFIER_KEY_LENGTH, collation="C"), "postgresql"
)


class Patient(Base):
    """A person cared for by one clinic; names use the DICOM PN form Family^Given.

    `name_key` and `identifier_key` are what searches compare (`server.patients.search`);
    they follow `name` and `identifier` whenever those are set.
    """

    __tablename__ = "patients"
    __table_args__ = (
        UniqueConstraint("org_id", "identifier", name="uq_patients_org_identifier"),
        Index("ix_patients_org_identifier_key", "org_id", "identifier_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), index=True)
    name_key: Mapped[str] = mapped_column(NAME_KEY, default="", server_default="")
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))
    identifier: Mapped[str] = mapped_column(String(64))
    identifier_key: Mapped[str] = mapped_column(IDENTIFIER_KEY, default="", server_default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @validates("name")
    def _keep_name_key(self, _key: str, value: str) -> str:
        self.name_key = name_key(value)
        return value

    @validates("identifier")
    def _keep_identifier_key(self, _key: str, value: str) -> str:
        self.identifier_key = identifier_key(value)
        return value
