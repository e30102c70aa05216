"""Imaging studies as the platform knows them (metadata and counts; the pixels stay in the PACS) and reports.

A study is recorded once per Study Instance UID, from what the PACS answers over QIDO-RS; recording it again
refreshes its counts. The patient's identifiers are kept as the ECG's are: sealed, with a keyed hash.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityhealth.db.base import Base
from cityhealth.db.types import UTCDateTime

REPORT_STATUSES = ("preliminary", "final")
PATIENT_ID_PURPOSE = "telemed_imaging.patient_id"
PATIENT_NAME_PURPOSE = "telemed_imaging.patient_name"


class ImagingStudy(Base):
    """A study held by a PACS: where it is, what it is, and how many series and images it has."""

    __tablename__ = "telemed_imaging_studies"
    __table_args__ = (
        Index("ix_telemed_imaging_studies_patient_id_hash", "patient_id_hash"),
        Index("ix_telemed_imaging_studies_case_id", "case_id"),
        {"info": {"personal_data": ("patient_id_hash", "patient_id_enc", "patient_name_enc")}},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    pacs: Mapped[str] = mapped_column(String(64))  # the PACS's name in the platform's configuration
    case_id: Mapped[int | None] = mapped_column(ForeignKey("telemed_cases.id"))
    # The organization of the member that first recorded it, credited with its images (kept on refresh).
    organization_id: Mapped[int | None] = mapped_column(Integer)
    accession_number: Mapped[str | None] = mapped_column(String(16))
    modalities: Mapped[str | None] = mapped_column(String(64))  # ModalitiesInStudy, comma-separated
    description: Mapped[str | None] = mapped_column(String(64))
    study_date: Mapped[date | None] = mapped_column(Date)
    series_count: Mapped[int] = mapped_column(Integer)
    image_count: Mapped[int] = mapped_column(Integer)
    counted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    patient_id_hash: Mapped[str | None] = mapped_column(String(64))
    patient_id_enc: Mapped[str | None] = mapped_column(Text, info={"encrypted_purpose": PATIENT_ID_PURPOSE})
    patient_name_enc: Mapped[str | None] = mapped_column(Text, info={"encrypted_purpose": PATIENT_NAME_PURPOSE})
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ImagingReport(Base):
    """The reading centre's report on a study: preliminary while written, final once signed (then fixed)."""

    __tablename__ = "telemed_imaging_reports"
    __table_args__ = (
        CheckConstraint("status IN ('preliminary', 'final')", name="status"),
        CheckConstraint("status = 'preliminary' OR signed_at IS NOT NULL", name="signed"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("telemed_imaging_studies.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(String(64))  # the reading doctor's principal subject
    findings: Mapped[str] = mapped_column(Text)
    impression: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
