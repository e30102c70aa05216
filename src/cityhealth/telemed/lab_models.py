"""Lab tables fed over HL7 v2 (MLLP): each message as received, the lab reports and their observations, and
the specimens with the steps of their routing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityhealth.db.base import Base
from cityhealth.db.types import UTCDateTime

ACK_CODES = ("AA", "AE", "AR")
SPECIMEN_STATES = ("collected", "shipped", "received", "reported", "rejected")
UNMATCHED_REASONS = ("no_identifier", "invalid_identifier", "not_in_index")
# Bound into every raw message's ciphertext (security/keys.py finds the column through its `info`).
RAW_PURPOSE = "telemed_lab_message.raw"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class LabMessage(Base):
    """One HL7 message as a lab system sent it, accepted or not, with the acknowledgement it was given.

    An accepted message is kept once per sender and control id (the partial unique index): a repeat is
    acknowledged again and not stored. A refused one is kept each time it arrives, raw, so that nothing sent is
    lost and the sender's corrected resend under the same control id can still be accepted."""

    __tablename__ = "telemed_lab_messages"
    __table_args__ = (
        CheckConstraint(_in("ack_code", ACK_CODES), name="ack_code"),
        Index("ix_telemed_lab_messages_received_at", "received_at"),
        # The raw message names the patient; the header fields and the error texts never do.
        {"info": {"personal_data": ("raw_cipher",)}},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sending_application: Mapped[str] = mapped_column(String(180))
    sending_facility: Mapped[str] = mapped_column(String(180))
    control_id: Mapped[str | None] = mapped_column(String(64))
    message_type: Mapped[str | None] = mapped_column(String(16))
    ack_code: Mapped[str] = mapped_column(String(2))
    error_code: Mapped[int | None] = mapped_column(SmallInteger)  # HL7 table 0357
    error_location: Mapped[str | None] = mapped_column(String(32))
    error_text: Mapped[str | None] = mapped_column(String(400))
    raw_cipher: Mapped[str] = mapped_column(Text, info={"encrypted_purpose": RAW_PURPOSE})
    raw_bytes: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


# An accepted message once per sender and control id; refused ones may repeat (declared here, where the
# columns exist, for its WHERE clause).
Index(
    "ux_telemed_lab_messages_accepted",
    LabMessage.sending_application,
    LabMessage.sending_facility,
    LabMessage.control_id,
    unique=True,
    sqlite_where=LabMessage.ack_code == "AA",
    postgresql_where=LabMessage.ack_code == "AA",
)


class LabReport(Base):
    """One ordered test's results (an OBR and its OBX), linked to the master patient index when the patient's
    ID number names a resident; an unmatched patient's report is kept and flagged, never dropped."""

    __tablename__ = "telemed_lab_reports"
    __table_args__ = (
        CheckConstraint(
            f"unmatched_reason IS NULL OR {_in('unmatched_reason', UNMATCHED_REASONS)}", name="unmatched_reason"
        ),
        CheckConstraint("(resident_id IS NULL) = (unmatched_reason IS NOT NULL)", name="matched"),
        Index("ix_telemed_lab_reports_resident_id", "resident_id"),
        Index("ix_telemed_lab_reports_patient_hash", "patient_hash"),
        Index("ix_telemed_lab_reports_message_id", "message_id"),
        {"info": {"personal_data": ("resident_id", "patient_hash")}},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("telemed_lab_messages.id"))
    sending_facility: Mapped[str] = mapped_column(String(180))
    placer_order_no: Mapped[str | None] = mapped_column(String(64))
    filler_order_no: Mapped[str | None] = mapped_column(String(64))
    specimen_no: Mapped[str | None] = mapped_column(String(64))
    test_code: Mapped[str] = mapped_column(String(64))
    test_name: Mapped[str | None] = mapped_column(String(200))
    result_status: Mapped[str | None] = mapped_column(String(4))
    observed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    # The keyed HMAC of the patient's ID number as sent (registry's purpose), so an unmatched report can be
    # matched once the resident is registered; None when the message named no valid ID number.
    patient_hash: Mapped[str | None] = mapped_column(String(64))
    unmatched_reason: Mapped[str | None] = mapped_column(String(24))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LabObservation(Base):
    """One OBX of a report: what was measured, the value, its units, the reference range and the flag."""

    __tablename__ = "telemed_lab_observations"
    __table_args__ = (Index("ix_telemed_lab_observations_report_id", "report_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("telemed_lab_reports.id"))
    set_id: Mapped[int] = mapped_column(Integer)
    value_type: Mapped[str | None] = mapped_column(String(4))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    value: Mapped[str | None] = mapped_column(Text)
    units: Mapped[str | None] = mapped_column(String(64))
    reference_range: Mapped[str | None] = mapped_column(String(120))
    abnormal_flag: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str | None] = mapped_column(String(4))


class LabSpecimen(Base):
    """A specimen as its lab names it (facility and specimen number) and where its routing stands."""

    __tablename__ = "telemed_lab_specimens"
    __table_args__ = (
        CheckConstraint(_in("state", SPECIMEN_STATES), name="state"),
        CheckConstraint("(state = 'rejected') = (reject_reason IS NOT NULL)", name="reject_reason"),
        Index("ux_telemed_lab_specimens_number", "sending_facility", "specimen_no", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sending_facility: Mapped[str] = mapped_column(String(180))
    specimen_no: Mapped[str] = mapped_column(String(64))
    specimen_type: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    reject_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LabSpecimenStep(Base):
    """Each step a specimen took, and the message that reported it."""

    __tablename__ = "telemed_lab_specimen_steps"
    __table_args__ = (
        CheckConstraint(_in("to_state", SPECIMEN_STATES), name="to_state"),
        Index("ix_telemed_lab_specimen_steps_specimen_id", "specimen_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    specimen_id: Mapped[int] = mapped_column(ForeignKey("telemed_lab_specimens.id"))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200))
    message_id: Mapped[int] = mapped_column(ForeignKey("telemed_lab_messages.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
