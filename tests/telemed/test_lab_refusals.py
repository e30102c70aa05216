"""Each way a lab message is refused: the ACK code, HL7's error code (table 0357), where, and what was wrong.

Every case starts from a well-formed ORU^R01 or OML^O21 built with python-hl7 and changes one thing in it, so
the refusal named is the one that change causes and no other.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cityhealth.telemed.lab_parse import (
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE,
    UNSUPPORTED_MESSAGE_TYPE,
    Hl7Problem,
    parse,
)
from tests.telemed.lab_support import oml, oru

Edit = Callable[[list[str]], list[str]]


def _segments(message: object) -> list[str]:
    return str(message).strip("\r").split("\r")


def _set(name: str, number: int, value: str, occurrence: int = 1) -> Edit:
    """Field `number` of the `occurrence`-th `name` segment set to `value` (MSH counts its separator as MSH-1)."""

    def edit(segments: list[str]) -> list[str]:
        seen = 0
        for position, segment in enumerate(segments):
            if segment[:3] == name:
                seen += 1
                if seen == occurrence:
                    fields = segment.split("|")
                    index = number - 1 if name == "MSH" else number
                    fields += [""] * (index + 1 - len(fields))
                    fields[index] = value
                    segments[position] = "|".join(fields)
        return segments

    return edit


def _without(*names: str) -> Edit:
    return lambda segments: [segment for segment in segments if segment[:3] not in names]


def _obx_first(segments: list[str]) -> list[str]:
    observations = [segment for segment in segments if segment.startswith("OBX")]
    rest = [segment for segment in segments if not segment.startswith("OBX")]
    return rest[:2] + observations + rest[2:]  # MSH, PID, then the OBX before the OBR


_ORU = _segments(oru("R-1", [("110101199003074514", "", "", "", "ID")]))
_OML = _segments(oml("O-1", "S-1", "collected"))

CASES = {
    "no MSH first": (_ORU, lambda s: s[1:], "AR", SEGMENT_SEQUENCE, "MSH",
                     "not an HL7 v2 message: it begins with 'PID'"),
    "no control id": (_ORU, _set("MSH", 10, ""), "AR", REQUIRED_FIELD_MISSING, "MSH-10",
                      "the message control id is missing"),
    "no sender": (_ORU, lambda s: _set("MSH", 4, "")(_set("MSH", 3, "")(s)), "AR", REQUIRED_FIELD_MISSING, "MSH-3",
                  "neither sending application (MSH-3) nor sending facility (MSH-4) is given"),
    "another message type": (_ORU, _set("MSH", 9, "ADT^A01"), "AR", UNSUPPORTED_MESSAGE_TYPE, "MSH-9",
                             "message type 'ADT^A01' is not accepted here (accepted: ORU^R01, OML^O21)"),
    "no PID": (_ORU, _without("PID"), "AE", SEGMENT_SEQUENCE, "PID", "no PID segment: the patient is not named"),
    "no OBR": (_ORU, _without("OBR", "OBX"), "AE", SEGMENT_SEQUENCE, "OBR", "an ORU^R01 without an OBR segment"),
    "an OBR without OBX": (_ORU, _without("OBX"), "AE", SEGMENT_SEQUENCE, "OBR[1]", "an OBR without any OBX"),
    "an OBX before the OBR": (_ORU, _obx_first, "AE", SEGMENT_SEQUENCE, "OBX[1]", "an OBX before any OBR"),
    "no test code": (_ORU, _set("OBR", 4, ""), "AE", REQUIRED_FIELD_MISSING, "OBR[1]-4",
                     "the universal service identifier (the test's code) is missing"),
    "a date that is no date": (_ORU, _set("OBR", 7, "2026-12-05"), "AE", DATA_TYPE_ERROR, "OBR[1]-7",
                               "'2026-12-05' is not an HL7 date/time (YYYYMMDDHHMMSS, optionally +ZZZZ)"),
    "no observation code": (_ORU, _set("OBX", 3, "", occurrence=2), "AE", REQUIRED_FIELD_MISSING, "OBX[2]-3",
                            "the observation identifier is missing"),
    "a number that is not one": (_ORU, _set("OBX", 5, "5,4"), "AE", DATA_TYPE_ERROR, "OBX[1]-5",
                                 "a value of type NM that is not a number"),
    "an OML without SPM": (_OML, _without("SPM"), "AE", SEGMENT_SEQUENCE, "SPM", "an OML^O21 without an SPM segment"),
    "no specimen id": (_OML, _set("SPM", 2, ""), "AE", REQUIRED_FIELD_MISSING, "SPM[1]-2",
                       "the specimen id is missing"),
    "an order control naming no step": (_OML, _set("ORC", 1, "CA"), "AE", REQUIRED_FIELD_MISSING, "ORC-1",
                                        "order control 'CA' with order status 'empty' names no specimen step"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_refusal_names_its_ack_code_location_and_reason(case: str) -> None:
    base, edit, ack, code, location, text = CASES[case]
    raw = ("\r".join(edit(list(base))) + "\r").encode("utf-8")
    with pytest.raises(Hl7Problem) as refused:
        parse(raw)
    problem = refused.value
    assert (problem.ack, problem.code, problem.location) == (ack, code, location)
    assert problem.text.startswith(text), problem.text
    if ack == "AE" or location != "MSH":  # the header was read: the ACK can name the message it answers
        assert problem.header is not None
        assert problem.header.control_id in ("R-1", "O-1", "")


def test_the_same_message_unchanged_is_read() -> None:
    for base in (_ORU, _OML):
        assert parse(("\r".join(base) + "\r").encode("utf-8")).header.control_id in ("R-1", "O-1")


def test_a_message_in_gb18030_reads_as_the_same_message_in_utf_8() -> None:
    # The city's older lab systems send GB 18030: names and test names in Chinese must come out the same.
    text = "\r".join(_ORU) + "\r"
    assert parse(text.encode("gb18030")) == parse(text.encode("utf-8"))
