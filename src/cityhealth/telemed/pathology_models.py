"""Remote pathology tables: the network's experts and doctors, the pathology detail of a case (the slides stay
in the hospital: only references to them), case-discussion meetings with their participants and cases, and
video lectures. The case itself, its workflow and its report are the generic telemed case's."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cityhealth.db.base import Base
from cityhealth.db.types import UTCDateTime
from cityhealth.telemed.models import Case

PERSON_KINDS = ("expert", "doctor")
SPECIMEN_KINDS = ("biopsy", "resection", "cytology", "frozen_section", "consultation_slides", "other")
EVENT_STATUSES = ("scheduled", "held", "cancelled")

# The bulletin counts a city's pathology cases submitted by a moment: network and submission time.
Index("ix_telemed_cases_network_submitted_at", Case.network_code, Case.submitted_at)


class PathologyPerson(Base):
    """An expert (a pathologist of a reading centre or the expert panel) or a requesting pathology doctor."""

    __tablename__ = "telemed_pathology_people"
    __table_args__ = (
        CheckConstraint("kind IN ('expert', 'doctor')", name="kind"),
        CheckConstraint("deactivated_at IS NULL OR deactivated_at >= registered_at", name="dates"),
        # The organization's own key for the person: a retried registration is one person.
        UniqueConstraint("organization_id", "key"),
        Index("ix_telemed_pathology_people_kind_registered_at", "kind", "registered_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("telemed_members.id"))  # the membership when registered
    key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(32))  # professional title (主任医师 …)
    specialty: Mapped[str | None] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    registered_by: Mapped[str] = mapped_column(String(96))
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deactivated_by: Mapped[str | None] = mapped_column(String(96))
    deactivation_reason: Mapped[str | None] = mapped_column(Text)


class PathologyCase(Base):
    """What a pathology case has beyond the generic case: the specimen and the slides' references."""

    __tablename__ = "telemed_pathology_cases"
    __table_args__ = (
        CheckConstraint(
            "specimen_kind IN ('biopsy', 'resection', 'cytology', 'frozen_section', 'consultation_slides', 'other')",
            name="specimen_kind",
        ),
        CheckConstraint("slide_count > 0", name="slide_count"),
        CheckConstraint("block_count IS NULL OR block_count >= 0", name="block_count"),
    )

    case_id: Mapped[int] = mapped_column(ForeignKey("telemed_cases.id"), primary_key=True)
    requesting_doctor_id: Mapped[int | None] = mapped_column(ForeignKey("telemed_pathology_people.id"))
    specimen_site: Mapped[str] = mapped_column(String(128))
    specimen_kind: Mapped[str] = mapped_column(String(24))
    slide_count: Mapped[int] = mapped_column(Integer)
    block_count: Mapped[int | None] = mapped_column(Integer)
    # Whole-slide images stay in the hospital's archive: the references the centre fetches them by.
    slide_refs: Mapped[list[str]] = mapped_column(JSON)
    fingerprint: Mapped[str] = mapped_column(String(64))  # of the whole pathology submission


class PathologyMeeting(Base):
    """A case-discussion meeting: scheduled by a member, held (with minutes) or cancelled."""

    __tablename__ = "telemed_pathology_meetings"
    __table_args__ = (
        CheckConstraint("status IN ('scheduled', 'held', 'cancelled')", name="status"),
        CheckConstraint("ends_at > starts_at", name="times"),
        UniqueConstraint("organizer_organization_id", "request_key"),
        Index("ix_telemed_pathology_meetings_city_status_held_at", "city_code", "status", "held_at"),
        # Minutes of a case discussion speak of patients: every read is audited.
        {"info": {"personal_data": ("minutes",)}},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organizer_member_id: Mapped[int] = mapped_column(ForeignKey("telemed_members.id"))
    organizer_organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    city_code: Mapped[str] = mapped_column(ForeignKey("areas.code"))  # the organizer's, for the bulletin
    request_key: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(128))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12))
    step_key: Mapped[str | None] = mapped_column(String(64))  # the request key that held or cancelled it
    minutes: Mapped[str | None] = mapped_column(Text)
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(96))


class MeetingParticipant(Base):
    """An expert or doctor taking part in a meeting."""

    __tablename__ = "telemed_pathology_meeting_participants"
    __table_args__ = (Index("ix_telemed_pathology_meeting_participants_person_id", "person_id"),)

    meeting_id: Mapped[int] = mapped_column(ForeignKey("telemed_pathology_meetings.id"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("telemed_pathology_people.id"), primary_key=True)


class MeetingCase(Base):
    """A case discussed at a meeting."""

    __tablename__ = "telemed_pathology_meeting_cases"

    meeting_id: Mapped[int] = mapped_column(ForeignKey("telemed_pathology_meetings.id"), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("telemed_cases.id"), primary_key=True)


class PathologyLecture(Base):
    """A video lecture given by an expert to the network: scheduled, held (with its attendance) or cancelled."""

    __tablename__ = "telemed_pathology_lectures"
    __table_args__ = (
        CheckConstraint("status IN ('scheduled', 'held', 'cancelled')", name="status"),
        CheckConstraint("ends_at > starts_at", name="times"),
        CheckConstraint("attendance IS NULL OR attendance >= 0", name="attendance"),
        UniqueConstraint("organizer_organization_id", "request_key"),
        Index("ix_telemed_pathology_lectures_city_status_held_at", "city_code", "status", "held_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organizer_member_id: Mapped[int] = mapped_column(ForeignKey("telemed_members.id"))
    organizer_organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    city_code: Mapped[str] = mapped_column(ForeignKey("areas.code"))
    request_key: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(128))
    speaker_id: Mapped[int] = mapped_column(ForeignKey("telemed_pathology_people.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12))
    step_key: Mapped[str | None] = mapped_column(String(64))
    attendance: Mapped[int | None] = mapped_column(Integer)
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(96))
