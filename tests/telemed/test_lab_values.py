"""Reading a lab message's values: HL7 date/times and their zones, observations, and the specimen steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityhealth.simulation.lab_feed import Value, segment
from cityhealth.telemed.lab_parse import (
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    Header,
    Hl7Problem,
    decode,
    normalise,
    parse,
    parse_time,
)
from tests.telemed.lab_support import header, oml, oru, wire

SHANGHAI = ZoneInfo("Asia/Shanghai")
HEADER = Header("LIS", "GULOU-LAB", "CITYHEALTH", "NANJING", "C-1", "ORU^R01", "P", "2.5.1")
PATIENT = [("110101199003074514", "", "", "", "ID")]


def _time(value: str) -> datetime | None:
    return parse_time(value, "OBR[1]-7", HEADER)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026", datetime(2026, 1, 1, tzinfo=SHANGHAI)),
        ("202612", datetime(2026, 12, 1, tzinfo=SHANGHAI)),
        ("20261205", datetime(2026, 12, 5, tzinfo=SHANGHAI)),
        ("2026120508", datetime(2026, 12, 5, 8, tzinfo=SHANGHAI)),
        ("202612050830", datetime(2026, 12, 5, 8, 30, tzinfo=SHANGHAI)),
        ("20261205083015", datetime(2026, 12, 5, 8, 30, 15, tzinfo=SHANGHAI)),
        ("20261205083015.1234", datetime(2026, 12, 5, 8, 30, 15, tzinfo=SHANGHAI)),
    ],
)
def test_a_date_time_without_a_zone_is_shanghai_wall_time_at_any_precision(value: str, expected: datetime) -> None:
    assert _time(value) == expected


@pytest.mark.parametrize(
    ("value", "offset"),
    [
        ("20261205083000+0800", timedelta(hours=8)),
        ("20261205083000+0000", timedelta(0)),
        ("20261205083000-0530", -timedelta(hours=5, minutes=30)),
        ("20261205083000.5+0930", timedelta(hours=9, minutes=30)),
        ("202612050830-0100", -timedelta(hours=1)),
    ],
)
def test_a_date_time_with_a_zone_keeps_its_offset(value: str, offset: timedelta) -> None:
    read = _time(value)
    assert read is not None
    assert read.utcoffset() == offset
    assert read.replace(tzinfo=None) == datetime.strptime(value[:12], "%Y%m%d%H%M")  # noqa: DTZ007 - wall time


def test_a_zone_is_looked_for_only_after_the_date() -> None:
    # A "-" inside the first eight characters is not a zone: the value is malformed, not a date west of UTC.
    with pytest.raises(Hl7Problem) as refused:
        _time("2026-12-05")
    assert (refused.value.ack, refused.value.code, refused.value.location) == ("AE", DATA_TYPE_ERROR, "OBR[1]-7")


def test_an_empty_date_time_is_none() -> None:
    assert _time("") is None


@pytest.mark.parametrize(
    "value",
    ["20261", "2026120", "20261305", "20261232", "20261205250000", "2026120508306", "2026120508301X",
     "20261205083000+08", "20261205083000+08AB", "abcd"],
)
def test_a_malformed_date_time_is_refused_naming_where_and_the_format(value: str) -> None:
    with pytest.raises(Hl7Problem) as refused:
        _time(value)
    problem = refused.value
    assert (problem.ack, problem.code, problem.location) == ("AE", DATA_TYPE_ERROR, "OBR[1]-7")
    assert repr(value) in problem.text
    assert "YYYYMMDDHHMMSS" in problem.text
    assert problem.header == HEADER


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 12, 31)),  # noqa: DTZ001
       st.integers(min_value=-12 * 60, max_value=14 * 60))
def test_any_written_date_time_reads_back_as_the_same_instant(moment: datetime, offset_minutes: int) -> None:
    zone = timezone(timedelta(minutes=offset_minutes))
    sign = "+" if offset_minutes >= 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    written = moment.strftime("%Y%m%d%H%M%S") + f"{sign}{hours:02d}{minutes:02d}"
    read = _time(written)
    assert read is not None
    assert read.astimezone(UTC) == moment.replace(microsecond=0, tzinfo=zone).astimezone(UTC)


def test_gb18030_text_decodes_and_undecodable_bytes_do_not_raise() -> None:
    assert decode("葡萄糖".encode("gb18030")) == "葡萄糖"
    assert decode("葡萄糖".encode()) == "葡萄糖"
    assert isinstance(decode(b"\xff\xfe\x81"), str)


def test_normalise_ends_every_segment_with_cr_and_drops_blank_lines_and_trailing_spaces() -> None:
    assert normalise("MSH|a  \r\n\r\nPID|b\n\nOBR|c\rOBX|d \n") == "MSH|a\rPID|b\rOBR|c\rOBX|d"


def _oru(observations: list[tuple[Value, ...]]) -> bytes:
    return wire(oru("V-1", PATIENT, observations=observations))


def test_an_observations_repetitions_are_kept_joined_by_the_repetition_separator() -> None:
    message = parse(_oru([("ST", ("ABO", "血型", "LN"), "", ["A", "Rh+"], "", "", "", "", "", "F")]))
    assert message.orders[0].observations[0].value == "A~Rh+"


@pytest.mark.parametrize("number", ["5.4", "-0.25", "+7", "98", ".5", "12."])
def test_a_numeric_value_is_accepted_as_hl7_writes_numbers(number: str) -> None:
    message = parse(_oru([("NM", ("GLU", "葡萄糖", "LN"), "", number, "mmol/L", "", "", "", "", "F")]))
    assert message.orders[0].observations[0].value == number


@pytest.mark.parametrize("value", ["high", "nan", "inf", "1e3", "1_000", "5,4", "--1", "."])
def test_a_numeric_observation_that_is_not_a_number_is_refused_at_its_value(value: str) -> None:
    rows: list[tuple[Value, ...]] = [
        ("NM", ("GLU", "葡萄糖", "LN"), "", "5.4", "mmol/L", "", "", "", "", "F"),
        ("NM", ("HGB", "血红蛋白", "LN"), "", value, "g/L", "", "", "", "", "F"),
    ]
    with pytest.raises(Hl7Problem) as refused:
        parse(_oru(rows))
    assert (refused.value.ack, refused.value.code, refused.value.location) == ("AE", DATA_TYPE_ERROR, "OBX[2]-5")
    assert value not in refused.value.text  # a result is a patient's data: never quoted


def test_an_empty_numeric_value_is_kept_as_none() -> None:
    message = parse(_oru([("NM", ("GLU", "葡萄糖", "LN"), "", "", "mmol/L", "", "", "", "", "X")]))
    observation = message.orders[0].observations[0]
    assert (observation.value, observation.status) == (None, "X")


@pytest.mark.parametrize(("set_id", "expected"), [("7", 7), ("", 1), ("A", 1), ("1234567890", 1)])
def test_an_observation_without_a_usable_set_id_takes_its_position(set_id: str, expected: int) -> None:
    raw = wire(oru("V-2", PATIENT)).decode().replace("OBX|1|", f"OBX|{set_id}|", 1).encode()
    assert parse(raw).orders[0].observations[0].set_id == expected


def test_long_codes_and_names_are_cut_to_their_columns() -> None:
    code, name = "G" * 100, "糖" * 300
    message = parse(_oru([("NM", (code, name, "LN"), "", "5", "U" * 90, "R" * 200, "FLAG" * 4, "", "", "FINAL")]))
    observation = message.orders[0].observations[0]
    assert (len(observation.code), len(observation.name or ""), len(observation.units or "")) == (64, 200, 64)
    assert (len(observation.reference_range or ""), observation.abnormal_flag, observation.status) == (
        120, "FLAGFLAG", "FINA")


def test_observations_belong_to_the_obr_before_them() -> None:
    first = segment("OBR", "1", "P-1", "F-1", ("CBC", "血常规", "L"), "", "", "20261205080000")
    second = segment("OBR", "2", "P-2", "F-2", ("GLU", "血糖", "L"), "", "", "20261205081500+0800")
    obx = [segment("OBX", str(n), "NM", (f"T{n}", "", "LN"), "", str(n)) for n in range(1, 4)]
    patient: list[str | tuple[str, ...]] = [*PATIENT]
    text = "\r".join(str(s) for s in [header("V-3", ("ORU", "R01")), segment("PID", "1", "", patient),
                                      first, obx[0], obx[1], second, obx[2]])
    message = parse(text.encode())
    assert [[o.code for o in order.observations] for order in message.orders] == [["T1", "T2"], ["T3"]]
    assert message.orders[1].observed_at == datetime(2026, 12, 5, 0, 15, tzinfo=UTC)
    assert (message.orders[0].placer_order_no, message.orders[0].filler_order_no) == ("P-1", "F-1")


def test_only_the_first_pid_names_the_patient_and_every_repetition_of_pid_3_is_kept() -> None:
    ids = [("110101199003074514", "", "", "", "ID"), ("MRN-9", "", "", "", "MR")]
    message = parse(wire(oru("V-4", ids)).decode().replace("OBR|", "PID|1||OTHER\rOBR|", 1).encode())
    assert message.patient_ids == ["110101199003074514", "MRN-9"]


def test_segments_the_listener_does_not_read_pass_untouched() -> None:
    raw = wire(oru("V-5", PATIENT)).decode().replace("OBR|", "NTE|1||a note with | and ^\rZXY|1|x\rOBR|", 1)
    assert parse(raw.encode()) == parse(wire(oru("V-5", PATIENT)))


@pytest.mark.parametrize(
    ("step", "expected"), [("collected", "collected"), ("shipped", "shipped"), ("received", "received"),
                           ("rejected", "rejected")],
)
def test_each_specimen_step_an_oml_reports(step: str, expected: str) -> None:
    message = parse(wire(oml("S-" + step, "SP-1", step, reason="溶血")))
    assert [(s.specimen_no, s.step) for s in message.steps] == [("SP-1", expected)]
    assert message.steps[0].reason == ("溶血" if step == "rejected" else None)
    assert message.steps[0].location == "SPM[1]"


def test_an_oru_with_a_specimen_reports_it_and_names_it_on_its_order() -> None:
    message = parse(wire(oru("V-6", PATIENT, specimen="SP-7")))
    assert [(s.specimen_no, s.step) for s in message.steps] == [("SP-7", "reported")]
    assert message.orders[0].specimen_no == "SP-7"


def test_an_order_control_that_names_no_step_is_refused_at_orc_1() -> None:
    raw = wire(oml("S-X", "SP-2", "shipped")).decode().replace("ORC|SC|", "ORC|XO|", 1).encode()
    with pytest.raises(Hl7Problem) as refused:
        parse(raw)
    assert (refused.value.ack, refused.value.code, refused.value.location) == ("AE", REQUIRED_FIELD_MISSING, "ORC-1")
    assert "'XO'" in refused.value.text


def test_a_received_time_that_is_not_a_date_time_is_refused_at_spm_18() -> None:
    raw = wire(oml("S-R", "SP-3", "received")).decode().replace("20261205100000", "yesterday", 1).encode()
    with pytest.raises(Hl7Problem) as refused:
        parse(raw)
    assert (refused.value.code, refused.value.location) == (DATA_TYPE_ERROR, "SPM[1]-18")
