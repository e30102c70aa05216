"""ECG tracings: the samples and what the file said about them; the patient's identifiers only encrypted.

The file itself is not kept: a DICOM or aECG file carries the patient's name and identifiers in clear, so
the platform keeps the decoded tracing (leads of microvolt samples, zlib-compressed little-endian int32)
and its metadata, with the identifiers sealed by the field cipher and a keyed hash for finding a patient's
tracings. The upload is idempotent on the file's SHA-256: the same file uploaded again is the same tracing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityhealth.db.base import Base
from cityhealth.db.types import UTCDateTime

SOURCE_FORMATS = ("dicom", "aecg")
# The purposes bound into the ciphertexts and lookup hashes (security/keys.py finds them by column info).
PATIENT_ID_PURPOSE = "telemed_ecg.patient_id"
PATIENT_NAME_PURPOSE = "telemed_ecg.patient_name"


class EcgTracing(Base):
    """One uploaded ECG, decoded."""

    __tablename__ = "telemed_ecg_tracings"
    __table_args__ = (
        CheckConstraint("source_format IN ('dicom', 'aecg')", name="source_format"),
        CheckConstraint("sampling_rate_hz > 0", name="sampling_rate_hz"),
        CheckConstraint("sample_count > 0", name="sample_count"),
        Index("ix_telemed_ecg_tracings_patient_id_hash", "patient_id_hash"),
        Index("ix_telemed_ecg_tracings_case_id", "case_id"),
        {"info": {"personal_data": ("patient_id_hash", "patient_id_enc", "patient_name_enc")}},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    source_format: Mapped[str] = mapped_column(String(8))
    source_uid: Mapped[str | None] = mapped_column(String(128))  # SOP Instance UID or aECG id
    # The telemed case the tracing belongs to, when the uploader names one (the reading workflow's case).
    case_id: Mapped[int | None] = mapped_column(ForeignKey("telemed_cases.id"))
    uploaded_by: Mapped[str] = mapped_column(String(64))  # the principal's subject
    organization_id: Mapped[int | None] = mapped_column(Integer)  # the uploading member's organization
    leads: Mapped[str] = mapped_column(String(255))  # lead names, comma-separated, in the samples' order
    sampling_rate_hz: Mapped[float] = mapped_column(Float)
    sample_count: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    samples: Mapped[bytes] = mapped_column(LargeBinary)
    patient_id_hash: Mapped[str | None] = mapped_column(String(64))
    patient_id_enc: Mapped[str | None] = mapped_column(Text, info={"encrypted_purpose": PATIENT_ID_PURPOSE})
    patient_name_enc: Mapped[str | None] = mapped_column(Text, info={"encrypted_purpose": PATIENT_NAME_PURPOSE})
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
