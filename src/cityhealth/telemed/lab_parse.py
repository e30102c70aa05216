"""Reading a lab system's HL7 v2 message (ORU^R01 results, OML^O21 specimens) with python-hl7, tolerantly.

Segments may end in CR, LF or CRLF; blank lines and trailing whitespace are ignored; the groups of the
message structure are not enforced: an OBX belongs to the OBR before it and an SPM to the OBR or ORC before
it, in whatever order the rest comes. What cannot be read becomes a `Hl7Problem`: the acknowledgement code
(AR when the message is not one we take at all, AE when its content is at fault), the HL7 error code (table
0357), the segment and field at fault, and a text naming the problem. The texts never quote a patient's
data: only header fields, segment names and positions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import hl7.util

from cityhealth.telemed.lab_segments import Segment, split_segments

ACCEPTED_TYPES = ("ORU^R01", "OML^O21")
# HL7 table 0357, the codes this listener answers with.
SEGMENT_SEQUENCE = 100
REQUIRED_FIELD_MISSING = 101
DATA_TYPE_ERROR = 102
UNSUPPORTED_MESSAGE_TYPE = 200
APPLICATION_ERROR = 207
_SHANGHAI = ZoneInfo("Asia/Shanghai")
# python-hl7 logs a field's whole value when it meets an escape sequence it cannot decode: a patient's ID
# number or name, straight into the logs. A filter that lets nothing through silences its logger: unlike
# `disabled`, which any later logging.config call with disable_existing_loggers=False (uvicorn's) turns
# back on, a logger's filters survive reconfiguration. A bad escape is read as what is left.
hl7.util.logger.addFilter(lambda _record: False)
_READ_SEGMENTS = frozenset({"MSH", "PID", "ORC", "OBR", "OBX", "SPM"})
# HL7's NM: an optional sign, digits and an optional decimal point. Python's float() would also take "nan",
# "inf", "1e3" and "1_000", none of which a lab system may send as a number.
_NM = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")
# ORC-1 / ORC-5 of an OML^O21 and the routing step they report (docs/decisions/telemed-lab.md).
_ORDER_STEPS = {("NW", ""): "collected", ("SC", "IP"): "shipped"}


class Hl7Problem(Exception):
    """Why a message is refused: ack code, HL7 error code, where (e.g. "OBX[2]-3") and what."""

    def __init__(self, ack: str, code: int, location: str, text: str, header: Header | None = None) -> None:
        super().__init__(f"{location}: {text}")
        self.ack = ack
        self.code = code
        self.location = location
        self.text = text
        self.header = header


@dataclass(frozen=True)
class Header:
    """What MSH says about the message: who sent it, its control id, its type and version."""

    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    control_id: str
    message_type: str
    processing_id: str
    version: str


@dataclass(frozen=True)
class Observation:
    set_id: int
    value_type: str | None
    code: str
    name: str | None
    value: str | None
    units: str | None
    reference_range: str | None
    abnormal_flag: str | None
    status: str | None


@dataclass
class Order:
    """An OBR (ORU) or ORC/OBR (OML) with its observations and the specimen it names."""

    placer_order_no: str | None
    filler_order_no: str | None
    test_code: str
    test_name: str | None
    result_status: str | None
    observed_at: datetime | None
    specimen_no: str | None = None
    observations: list[Observation] = field(default_factory=list)


@dataclass(frozen=True)
class SpecimenStep:
    """A step in a specimen's routing that the message reports (`reason`: a rejection's)."""

    specimen_no: str
    specimen_type: str | None
    step: str
    reason: str | None
    location: str


@dataclass
class LabMessageIn:
    header: Header
    patient_ids: list[str]  # PID-3's identifiers as sent: personal data, never logged
    orders: list[Order]
    steps: list[SpecimenStep]


def decode(raw: bytes) -> str:
    """UTF-8 (HL7 2.8's preference), else GB 18030, which the city's older lab systems send."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gb18030", errors="replace")


def normalise(text: str) -> str:
    """Segments ended by CR, whatever the sender used; empty lines dropped."""
    lines = text.replace("\r\n", "\r").replace("\n", "\r").split("\r")
    return "\r".join(line.rstrip() for line in lines if line.strip())


def _not_hl7(text: str) -> Hl7Problem:
    return Hl7Problem(
        "AR", SEGMENT_SEQUENCE, "MSH", f"not an HL7 v2 message: it begins with {text[:3]!r}, an MSH segment expected"
    )


def read_header(text: str) -> Header:
    """MSH of a normalised message, or AR naming why it is not an HL7 message we can answer."""
    if not text.startswith("MSH") or len(text) < 8:
        raise _not_hl7(text)
    try:
        msh = next(split_segments(text.split("\r", 1)[0]))
    except Exception:  # python-hl7 raises several kinds on a broken header
        raise Hl7Problem("AR", DATA_TYPE_ERROR, "MSH-2", "the encoding characters cannot be read") from None
    return _header(msh)


def _header(msh: Segment) -> Header:
    """The header MSH gives, or AR naming the field that makes the message one we cannot take."""
    header = Header(
        sending_application=msh.get(3)[:180],
        sending_facility=msh.get(4)[:180],
        receiving_application=msh.get(5)[:180],
        receiving_facility=msh.get(6)[:180],
        control_id=msh.get(10)[:64],
        message_type="^".join(p for p in (msh.get(9, 1), msh.get(9, 2)) if p),
        processing_id=msh.get(11),
        version=msh.get(12),
    )
    if not header.control_id:
        raise Hl7Problem("AR", REQUIRED_FIELD_MISSING, "MSH-10", "the message control id is missing", header)
    if not header.sending_application and not header.sending_facility:
        raise Hl7Problem(
            "AR",
            REQUIRED_FIELD_MISSING,
            "MSH-3",
            "neither sending application (MSH-3) nor sending facility (MSH-4) is given",
            header,
        )
    if header.message_type not in ACCEPTED_TYPES:
        raise Hl7Problem(
            "AR",
            UNSUPPORTED_MESSAGE_TYPE,
            "MSH-9",
            f"message type {header.message_type or 'empty'!r}"
            f" is not accepted here (accepted: {', '.join(ACCEPTED_TYPES)})",
            header,
        )
    return header


def parse_time(value: str, location: str, header: Header) -> datetime | None:
    """An HL7 DTM (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]); without a zone, Asia/Shanghai's wall time."""
    if not value:
        return None
    digits, zone = value, None
    for sign in "+-":
        if sign in value[8:]:
            cut = value.rindex(sign)
            digits, zone = value[:cut], value[cut:]
    digits = digits.split(".", 1)[0]
    try:
        if len(digits) not in (4, 6, 8, 10, 12, 14) or not digits.isdigit():
            raise ValueError(digits)
        padded = digits + "0101000000"[len(digits) - 4 :]
        zone_info: tzinfo = _SHANGHAI
        if zone is not None:
            if len(zone) != 5 or not zone[1:].isdigit():
                raise ValueError(zone)
            offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
            zone_info = timezone(offset if zone[0] == "+" else -offset)
        return datetime(
            int(padded[:4]),
            int(padded[4:6]),
            int(padded[6:8]),
            int(padded[8:10]),
            int(padded[10:12]),
            int(padded[12:14]),
            tzinfo=zone_info,
        )
    except ValueError:
        raise Hl7Problem(
            "AE",
            DATA_TYPE_ERROR,
            location,
            f"{value!r} is not an HL7 date/time (YYYYMMDDHHMMSS, optionally +ZZZZ)",
            header,
        ) from None


def parse(raw: bytes, *, tree: bool = False) -> LabMessageIn:
    """The message's header, patient identifiers, orders with their observations, and specimen steps (`tree`:
    read through python-hl7's parse tree even when the header's encoding characters are plain)."""
    text = normalise(decode(raw))
    if not text.startswith("MSH") or len(text) < 8:
        raise _not_hl7(text)
    # Only the segments read here are parsed (python-hl7 builds a tree of every field, the bulk of the cost);
    # NTE, Z-segments and the like pass untouched, and the raw message keeps them.
    read = "\r".join(line for line in text.split("\r") if line[:3].upper() in _READ_SEGMENTS)
    try:
        message = list(split_segments(read, tree=tree))
    except Exception:  # the header alone names the sender for the ACK, or says why it cannot
        raise Hl7Problem("AE", DATA_TYPE_ERROR, "message", "the segments cannot be split", read_header(text)) from None
    header = _header(message[0])  # the text begins with MSH: its first segment
    patient_ids: list[str] = []
    orders: list[Order] = []
    steps: list[SpecimenStep] = []
    order_control = ("", "")
    counts: dict[str, int] = {}
    for segment in message:
        name = segment.name
        counts[name] = counts.get(name, 0) + 1
        where = f"{name}[{counts[name]}]"
        if name == "PID" and counts[name] == 1:
            patient_ids = [
                value for repeat in range(1, segment.repeats(3) + 1) if (value := segment.get(3, 1, repeat))
            ]
        elif name == "ORC":
            order_control = (segment.get(1).upper(), segment.get(5).upper())
        elif name == "OBR":
            orders.append(_order(segment, where, header))
        elif name == "OBX":
            if not orders:
                raise Hl7Problem("AE", SEGMENT_SEQUENCE, where, "an OBX before any OBR", header)
            orders[-1].observations.append(_observation(segment, where, len(orders[-1].observations) + 1, header))
        elif name == "SPM":
            step = _specimen(segment, where, header, order_control, header.message_type)
            if orders and orders[-1].specimen_no is None:
                orders[-1].specimen_no = step.specimen_no
            steps.append(step)
    if "PID" not in counts:
        raise Hl7Problem("AE", SEGMENT_SEQUENCE, "PID", "no PID segment: the patient is not named", header)
    if header.message_type == "ORU^R01":
        if not orders:
            raise Hl7Problem("AE", SEGMENT_SEQUENCE, "OBR", "an ORU^R01 without an OBR segment", header)
        empty = [index for index, order in enumerate(orders, 1) if not order.observations]
        if empty:
            raise Hl7Problem("AE", SEGMENT_SEQUENCE, f"OBR[{empty[0]}]", "an OBR without any OBX", header)
    elif not steps:
        raise Hl7Problem("AE", SEGMENT_SEQUENCE, "SPM", "an OML^O21 without an SPM segment", header)
    return LabMessageIn(header, patient_ids, orders, steps)


def _order(segment: Segment, where: str, header: Header) -> Order:
    code = segment.get(4, 1)
    if not code:
        raise Hl7Problem(
            "AE",
            REQUIRED_FIELD_MISSING,
            f"{where}-4",
            "the universal service identifier (the test's code) is missing",
            header,
        )
    return Order(
        placer_order_no=segment.get(2)[:64] or None,
        filler_order_no=segment.get(3)[:64] or None,
        test_code=code[:64],
        test_name=segment.get(4, 2)[:200] or None,
        result_status=segment.get(25)[:4] or None,
        observed_at=parse_time(segment.get(7), f"{where}-7", header),
    )


def _observation(segment: Segment, where: str, position: int, header: Header) -> Observation:
    code = segment.get(3, 1)
    if not code:
        raise Hl7Problem("AE", REQUIRED_FIELD_MISSING, f"{where}-3", "the observation identifier is missing", header)
    value_type = segment.get(2)[:4] or None
    value = "~".join(segment.get(5, 1, repeat) for repeat in range(1, max(segment.repeats(5), 1) + 1))
    if value_type == "NM" and value and not _NM.fullmatch(value):
        raise Hl7Problem(
            "AE", DATA_TYPE_ERROR, f"{where}-5", "a value of type NM that is not a number (sign, digits, point)", header
        )
    set_id = segment.get(1)
    return Observation(
        set_id=int(set_id) if set_id.isdigit() and len(set_id) < 9 else position,
        value_type=value_type,
        code=code[:64],
        name=segment.get(3, 2)[:200] or None,
        value=value or None,
        units=segment.get(6)[:64] or None,
        reference_range=segment.get(7)[:120] or None,
        abnormal_flag=segment.get(8)[:8] or None,
        status=segment.get(11)[:4] or None,
    )


def _specimen(
    segment: Segment, where: str, header: Header, order_control: tuple[str, str], message_type: str
) -> SpecimenStep:
    number = segment.get(2, 1) or segment.get(2, 2)
    if not number:
        raise Hl7Problem("AE", REQUIRED_FIELD_MISSING, f"{where}-2", "the specimen id is missing", header)
    reason = segment.get(21, 2) or segment.get(21, 1)
    if reason:
        step = "rejected"
    elif message_type == "ORU^R01":
        step = "reported"
    elif segment.get(18):
        parse_time(segment.get(18), f"{where}-18", header)
        step = "received"
    elif order_control in _ORDER_STEPS or (order_control[0] == "NW"):
        step = _ORDER_STEPS.get(order_control, "collected")
    else:
        raise Hl7Problem(
            "AE",
            REQUIRED_FIELD_MISSING,
            "ORC-1",
            f"order control {order_control[0] or 'empty'!r}"
            f" with order status {order_control[1] or 'empty'!r} names no specimen step (NW: "
            "collected; SC with IP: shipped; SPM-18: received; SPM-21: rejected)",
            header,
        )
    return SpecimenStep(
        specimen_no=number[:64],
        specimen_type=segment.get(4, 1)[:64] or None,
        step=step,
        reason=reason[:200] or None,
        location=where,
    )
