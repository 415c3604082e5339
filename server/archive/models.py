"""The archive index: studies owned by an organisation, their series and instances.

A Study Instance UID is scoped by the owning organisation, so two clinics that
send the same UID never share a study. Text used for matching is kept in
columns with binary ("C") collation on PostgreSQL so that a wildcard prefix can
be answered from a btree index on every backend.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, UTCDateTime, utcnow

UID = String(64)
TEXT = String(1024)
NAME_KEY_LENGTH = 256
MATCH_TEXT = String(1024).with_variant(String(1024, collation="C"), "postgresql")
NAME_KEY = String(NAME_KEY_LENGTH).with_variant(
    String(NAME_KEY_LENGTH, collation="C"), "postgresql"
)


def name_key(value: str | None) -> str | None:
    """The case-folded form of a person name that PatientName matching compares."""
    return value.casefold()[:NAME_KEY_LENGTH] if value else None


class Study(Base):
    """A study as one organisation holds it, with the patient attributes of its first instance."""

    __tablename__ = "dicom_studies"
    __table_args__ = (
        UniqueConstraint("org_id", "study_uid", name="uq_dicom_studies_org_study_uid"),
        Index("ix_dicom_studies_org_study_date", "org_id", "study_date", "id"),
        Index("ix_dicom_studies_org_patient_id", "org_id", "patient_id"),
        Index("ix_dicom_studies_org_patient_name_key", "org_id", "patient_name_key"),
        Index("ix_dicom_studies_org_accession_number", "org_id", "accession_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="RESTRICT"))
    study_uid: Mapped[str] = mapped_column(UID, index=True)
    patient_id: Mapped[str | None] = mapped_column(MATCH_TEXT)
    patient_name: Mapped[str | None] = mapped_column(TEXT)
    patient_name_key: Mapped[str | None] = mapped_column(NAME_KEY)
    patient_birth_date: Mapped[str | None] = mapped_column(String(16))
    patient_sex: Mapped[str | None] = mapped_column(String(16))
    study_date: Mapped[str | None] = mapped_column(String(8))
    study_time: Mapped[str | None] = mapped_column(String(32))
    accession_number: Mapped[str | None] = mapped_column(MATCH_TEXT)
    study_id: Mapped[str | None] = mapped_column(MATCH_TEXT)
    study_description: Mapped[str | None] = mapped_column(TEXT)
    referring_physician_name: Mapped[str | None] = mapped_column(TEXT)
    referring_physician_key: Mapped[str | None] = mapped_column(NAME_KEY)
    linked_patient_id: Mapped[int | None] = mapped_column(
        ForeignKey("patients.id", ondelete="SET NULL"), index=True
    )
    """The clinic's registered patient this study was uploaded for (PatientID above is DICOM's)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Series(Base):
    """A series of one study."""

    __tablename__ = "dicom_series"
    __table_args__ = (
        UniqueConstraint("study_id", "series_uid", name="uq_dicom_series_study_series_uid"),
        Index("ix_dicom_series_modality_study", "modality", "study_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("dicom_studies.id", ondelete="CASCADE"))
    series_uid: Mapped[str] = mapped_column(UID, index=True)
    modality: Mapped[str | None] = mapped_column(MATCH_TEXT)
    series_number: Mapped[int | None] = mapped_column(Integer)
    series_description: Mapped[str | None] = mapped_column(TEXT)
    body_part: Mapped[str | None] = mapped_column(TEXT)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Instance(Base):
    """One stored SOP instance; its bytes are the blob named by sha256."""

    __tablename__ = "dicom_instances"
    __table_args__ = (
        UniqueConstraint("org_id", "sop_instance_uid", name="uq_dicom_instances_org_sop_uid"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="RESTRICT"))
    study_id: Mapped[int] = mapped_column(
        ForeignKey("dicom_studies.id", ondelete="CASCADE"), index=True
    )
    series_id: Mapped[int] = mapped_column(
        ForeignKey("dicom_series.id", ondelete="CASCADE"), index=True
    )
    sop_instance_uid: Mapped[str] = mapped_column(UID, index=True)
    sop_class_uid: Mapped[str] = mapped_column(UID)
    instance_number: Mapped[int | None] = mapped_column(Integer)
    number_of_frames: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[int | None] = mapped_column(Integer)
    bits_allocated: Mapped[int | None] = mapped_column(Integer)
    transfer_syntax_uid: Mapped[str] = mapped_column(UID)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    preamble_neutralised: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(32))
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
