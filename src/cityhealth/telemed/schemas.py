"""Request and response shapes of the remote diagnosis API: networks, members and coverage, cases and their
steps, reports, consultations."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from cityhealth.db.types import RowId

NetworkCode = Literal["teleconsultation", "ecg", "lab", "imaging", "pathology"]
MemberKind = Literal["tertiary", "secondary_or_above", "community_health_centre", "metro_city", "aid", "other"]
MemberRole = Literal["requester", "reading_centre", "both"]
CaseType = Literal["ecg", "imaging_study", "lab_report", "lab_specimen", "pathology_case", "consultation_request"]
Priority = Literal["routine", "urgent", "asap", "stat"]
CaseStatus = Literal["requested", "received", "accepted", "rejected", "in-progress", "completed", "cancelled"]
Key = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")
]
AreaCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=6, max_length=12)]
Modality = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_\-]+$")
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=8000)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- networks, members, coverage ----------------------------------------------------------------------------


class TargetRead(_Strict):
    priority: Priority
    minutes: int


class NetworkRead(_Strict):
    code: NetworkCode
    name: str
    case_types: list[CaseType]
    targets: list[TargetRead]
    active_members: int
    reading_centres: int


class MemberJoin(_Strict):
    """An organization joins a network; the same join sent again is the same membership."""

    organization_id: RowId
    kind: MemberKind
    role: MemberRole
    joined_on: date
    city_code: AreaCode | None = Field(
        None, description="The member's city (a city-level area); by default the city its organization's area lies in"
    )
    area_code: AreaCode | None = Field(
        None, description="The district or reporting unit it covers; by default its organization's area"
    )
    reads_case_types: list[CaseType] | None = Field(None, description="A reading centre's case types (all if absent)")
    reads_modalities: list[Modality] | None = Field(None, description="A reading centre's modalities (all if absent)")


class MemberLeave(_Strict):
    left_on: date = Field(description="The first day the organization is no longer a member")


class DesignationIn(_Strict):
    """A requester's designated reading centres, in order of preference (replaces the previous list)."""

    centre_member_ids: list[RowId] = Field(max_length=20)


class MemberRead(_Strict):
    id: int
    network_code: NetworkCode
    organization_id: int
    organization_name: str
    city_code: str
    area_code: str | None
    kind: MemberKind
    role: MemberRole
    reads_case_types: list[CaseType] | None
    reads_modalities: list[str] | None
    joined_on: date
    left_on: date | None
    designated_centre_ids: list[int]


class AreaCoverage(_Strict):
    code: str
    name: str
    covered: bool
    members: int


class CoverageRead(_Strict):
    """Which of a city's districts and reporting units have a member on a day, computed from the members."""

    network_code: NetworkCode
    city_code: str
    on: date
    areas: list[AreaCoverage]
    covered: int
    not_covered: int


# --- cases --------------------------------------------------------------------------------------------------


class CaseSubmit(_Strict):
    """A member's case; its own id (external_id) makes a retried submission the same case."""

    network_code: NetworkCode
    external_id: Key = Field(description="The requester's own id of the case (accession number, specimen id …)")
    case_type: CaseType
    modality: Modality | None = None
    priority: Priority = "routine"
    resident_id: RowId | None = Field(None, description="The patient in the master patient index")
    clinical_question: Note | None = None


class StepIn(_Strict):
    request_key: Key = Field(description="The client's key for this step: a retry with it is one step")
    note: Note | None = None


class RejectIn(_Strict):
    request_key: Key
    reason: Note


class RejectRead(_Strict):
    """A rejection taken: the case has left the centre (re-routed or rejected for good)."""

    case_id: int
    rejected: bool


class ReportIn(_Strict):
    request_key: Key
    findings: Text
    conclusion: Text


class CaseEventRead(_Strict):
    seq: int
    kind: str
    at: datetime
    actor: str
    centre_member_id: int | None
    note: str | None


class ReportRead(_Strict):
    author: str
    findings: str
    conclusion: str
    written_at: datetime
    signed_at: datetime | None
    signed_by: str | None


class CaseRead(_Strict):
    id: int
    network_code: NetworkCode
    external_id: str
    case_type: CaseType
    modality: str | None
    priority: Priority
    requester_member_id: int
    requester_organization_id: int
    centre_member_id: int | None
    centre_organization_id: int | None
    resident_id: int | None
    status: CaseStatus
    business_status: str
    holder: str | None
    submitted_at: datetime
    due_at: datetime
    completed_at: datetime | None
    overdue: bool


class CaseDetail(CaseRead):
    clinical_question: str | None
    events: list[CaseEventRead]
    report: ReportRead | None


# --- consultations ------------------------------------------------------------------------------------------


class ParticipantIn(_Strict):
    member_id: RowId
    doctor_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = None


class ConsultationIn(_Strict):
    request_key: Key
    network_code: NetworkCode
    case_id: RowId | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    participants: list[ParticipantIn] = Field(min_length=1, max_length=20)


class OpinionIn(_Strict):
    opinion: Text


class ParticipantRead(_Strict):
    member_id: int
    organization_id: int
    doctor_name: str | None


class ConsultationRead(_Strict):
    id: int
    network_code: NetworkCode
    case_id: int | None
    requester_member_id: int
    starts_at: datetime
    ends_at: datetime
    status: Literal["scheduled", "completed", "cancelled"]
    participants: list[ParticipantRead]
    opinion: str | None
    opinion_by: str | None
    opinion_at: datetime | None
