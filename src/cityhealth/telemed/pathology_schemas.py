"""Request and response shapes of the remote pathology API: experts and doctors, pathology cases, case-discussion
meetings, video lectures and the bulletin's cumulative figures."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from cityhealth.db.types import RowId
from cityhealth.telemed.schemas import CaseDetail, Key, Note, Priority, Text

PersonKind = Literal["expert", "doctor"]
SpecimenKind = Literal["biopsy", "resection", "cytology", "frozen_section", "consultation_slides", "other"]
EventStatus = Literal["scheduled", "held", "cancelled"]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
# A whole-slide image's reference in the hospital's archive (a URI or an archive key): no whitespace inside.
SlideRef = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256, pattern=r"^\S+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- people -------------------------------------------------------------------------------------------------


class PersonIn(_Strict):
    """An expert or doctor of a member organization; the same registration again is the same person."""

    key: Key = Field(description="The organization's own key for the person (a staff number): one person per key")
    kind: PersonKind
    organization_id: RowId
    name: Name
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)] | None = Field(
        None, description="Professional title (an expert's, chiefly)"
    )
    specialty: Name | None = None


class PersonDeactivate(_Strict):
    reason: Note | None = None


class PersonRead(_Strict):
    id: int
    key: str
    kind: PersonKind
    organization_id: int
    member_id: int
    name: str
    title: str | None
    specialty: str | None
    registered_at: datetime
    deactivated_at: datetime | None
    active: bool


# --- cases --------------------------------------------------------------------------------------------------


class PathologyCaseIn(_Strict):
    """A member hospital's pathology case: the generic case plus the specimen and the slides' references."""

    external_id: Key = Field(description="The hospital's own pathology number: a retried submission is one case")
    priority: Priority = "routine"
    resident_id: RowId | None = Field(None, description="The patient in the master patient index")
    requesting_doctor_id: RowId | None = Field(None, description="A pathology doctor of the submitting organization")
    specimen_site: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    specimen_kind: SpecimenKind
    clinical_summary: Note
    slide_count: int = Field(ge=1, le=5000)
    block_count: int | None = Field(None, ge=0, le=5000)
    slide_refs: list[SlideRef] = Field(
        default_factory=list, max_length=5000, description="Whole-slide images in the hospital's archive"
    )

    @model_validator(mode="after")
    def _refs_within_slides(self) -> PathologyCaseIn:
        if len(self.slide_refs) > self.slide_count:
            raise ValueError(f"slide_refs: {len(self.slide_refs)} references for {self.slide_count} slides")
        if len(set(self.slide_refs)) != len(self.slide_refs):
            raise ValueError("slide_refs: a slide is referenced twice")
        return self


class PathologyDetailRead(_Strict):
    requesting_doctor_id: int | None
    specimen_site: str
    specimen_kind: SpecimenKind
    slide_count: int
    block_count: int | None
    slide_refs: list[str]


class PathologyCaseRead(_Strict):
    case: CaseDetail
    pathology: PathologyDetailRead


# --- meetings and lectures ----------------------------------------------------------------------------------


class _Scheduled(_Strict):
    request_key: Key = Field(description="The organizer's key: the same request again is the same event")
    title: Title
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class MeetingIn(_Scheduled):
    """A case-discussion meeting: its participants (experts and doctors) and the cases it discusses."""

    participant_ids: list[RowId] = Field(min_length=1, max_length=100)
    case_ids: list[RowId] = Field(default_factory=list, max_length=50)


class MeetingHold(_Strict):
    request_key: Key
    minutes: Text


class EventCancel(_Strict):
    request_key: Key
    reason: Note | None = None


class ParticipantRead(_Strict):
    person_id: int
    kind: PersonKind
    name: str
    organization_id: int


class MeetingRead(_Strict):
    id: int
    organizer_member_id: int
    organizer_organization_id: int
    title: str
    starts_at: datetime
    ends_at: datetime
    status: EventStatus
    participants: list[ParticipantRead]
    case_ids: list[int]
    minutes: str | None
    held_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None


class LectureIn(_Scheduled):
    """A video lecture given by an expert of the network."""

    speaker_id: RowId


class LectureHold(_Strict):
    request_key: Key
    attendance: int = Field(ge=0, le=1_000_000, description="How many took part")


class LectureRead(_Strict):
    id: int
    organizer_member_id: int
    organizer_organization_id: int
    title: str
    speaker_id: int
    speaker_name: str
    starts_at: datetime
    ends_at: datetime
    status: EventStatus
    attendance: int | None
    held_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None


# --- the bulletin's figures ---------------------------------------------------------------------------------


class PathologyTotals(_Strict):
    """The pathology network's cumulative figures at a moment, as the bulletin prints them, in its order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hospitals: int
    experts: int
    doctors: int
    cases: int
    reports: int
    case_discussions: int
    video_lectures: int
