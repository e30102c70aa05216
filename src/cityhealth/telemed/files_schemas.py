"""Request and response shapes of a case's files: ECG tracings, imaging studies, lab results. Patient
identifiers appear masked to their last four characters, never in clear."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

PacsName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Uid = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EcgRead(_Strict):
    """A kept tracing: what the file said about it, the samples not included (see …/svg)."""

    id: int
    case_id: int
    source_format: str
    leads: list[str]
    sampling_rate_hz: float
    sample_count: int
    duration_s: float
    acquired_at: datetime | None
    patient_id_masked: str | None
    created: bool


class StudyRecordIn(_Strict):
    """A study the named PACS holds, to be recorded for the case (metadata and image counts, no pixels)."""

    pacs: PacsName
    study_instance_uid: Uid


class StudyRead(_Strict):
    id: int
    case_id: int
    study_instance_uid: str
    pacs: str
    accession_number: str | None
    modalities: list[str]
    description: str | None
    study_date: date | None
    series_count: int
    image_count: int
    counted_at: datetime
    patient_id_masked: str | None


class FoundStudyRead(_Strict):
    """A study as the PACS lists it for a search (QIDO-RS), not yet recorded."""

    study_instance_uid: str
    modalities: list[str]
    description: str | None
    study_date: date | None
    image_count: int | None
    patient_id_masked: str | None


class LabObservationRead(_Strict):
    code: str
    name: str | None
    value: str | None
    units: str | None
    reference_range: str | None
    abnormal_flag: str | None


class LabResultRead(_Strict):
    """One ordered test of the case's resident, as the lab sent it."""

    test_code: str
    test_name: str | None
    sending_facility: str
    observed_at: datetime | None
    result_status: str | None
    observations: list[LabObservationRead]
