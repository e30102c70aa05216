"""Reading ECG files: DICOM waveforms and aECG XML decode to the same tracing; what is not one is refused by name."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityhealth.telemed.ecg import read_ecg_file
from cityhealth.telemed.ecg_aecg import read_aecg
from cityhealth.telemed.ecg_dicom import read_dicom
from cityhealth.telemed.ecg_tracing import STANDARD_LEADS, EcgFileRefused
from tests.telemed.ecg_files import CT_IMAGE, aecg, dicom_ecg, square_wave

MOMENT = datetime(2022, 11, 15, 1, 30, 12, 500000, tzinfo=UTC)


def _refused(rule: str, call: object, *args: object) -> EcgFileRefused:
    with pytest.raises(EcgFileRefused) as caught:
        call(*args)  # type: ignore[operator]
    assert caught.value.rule == rule, caught.value.message
    assert caught.value.status == 422
    return caught.value


def test_a_dicom_12_lead_ecg_is_read_with_its_leads_rate_duration_time_and_patient() -> None:
    tracing = read_dicom(dicom_ecg())
    assert tracing.leads == STANDARD_LEADS
    assert (tracing.sampling_rate_hz, tracing.sample_count, tracing.duration_s) == (500.0, 5000, 10.0)
    assert tracing.acquired_at == MOMENT
    assert tracing.patient.identifier == "320102198001011234"
    assert tracing.patient.name == "Wang^Fang"
    # Stored values x 2.5 uV sensitivity: lead V6 (index 11) steps from 0 to 12 x 40 x 2.5 = 1200 uV.
    assert set(tracing.samples[11]) == {0, 1200}
    assert tracing.samples[0][:250] == (0,) * 250
    assert tracing.samples[0][250] == 100


def test_an_aecg_is_read_to_the_same_tracing_as_its_dicom_twin() -> None:
    from_xml = read_aecg(aecg(scale="2.5").encode())
    from_dicom = read_dicom(dicom_ecg())
    assert from_xml.leads == from_dicom.leads
    assert from_xml.samples == from_dicom.samples
    assert from_xml.sampling_rate_hz == 500.0
    assert from_xml.patient.identifier == "320102198001011234"
    assert from_xml.patient.name == "Wang Fang"
    assert from_xml.source_uid == "2.16.840.1.113883.3.1:ecg-0001"
    assert from_xml.acquired_at is not None
    assert from_xml.acquired_at.utcoffset() is not None


def test_millivolt_channels_are_converted_to_microvolts() -> None:
    tracing = read_dicom(dicom_ecg(sensitivity="0.005", unit="mV", leads=("II",), seconds=1))
    assert set(tracing.samples[0]) == {0, 200}  # 40 x 0.005 mV = 0.2 mV


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(-32768, 32767), min_size=200, max_size=200),
        min_size=1,
        max_size=12,
    )
)
def test_any_stored_values_survive_either_format_exactly(raw: list[list[int]]) -> None:
    leads = STANDARD_LEADS[: len(raw)]
    from_dicom = read_dicom(dicom_ecg(raw, leads=leads, sensitivity="1"))
    from_xml = read_aecg(aecg(raw, leads=leads, scale="1").encode())
    assert from_dicom.samples == from_xml.samples == tuple(tuple(lead) for lead in raw)


def test_a_file_that_is_not_dicom_is_refused_as_such() -> None:
    error = _refused("dicom", read_ecg_file, b"\x89PNG\r\n\x1a\n" + bytes(300), "dicom")
    assert "not DICOM" in error.message
    _refused("dicom", read_dicom, b"")


def test_a_dicom_image_is_not_an_ecg() -> None:
    error = _refused("ecg_sop_class", read_dicom, dicom_ecg(sop_class=CT_IMAGE))
    assert error.field == "SOPClassUID"
    assert error.value == CT_IMAGE


def test_truncated_waveform_data_is_refused() -> None:
    _refused("waveform_length", read_dicom, dicom_ecg(truncate=100))


def test_xml_that_does_not_parse_is_refused_with_its_line() -> None:
    broken = aecg().replace("</series>", "</serie>").encode()
    error = _refused("xml_well_formed", read_aecg, broken)
    assert "line" in error.message
    assert "mismatched tag" in error.message


def test_xml_that_is_not_an_aecg_is_refused() -> None:
    _refused("aecg_root", read_aecg, b'<?xml version="1.0"?><invoice xmlns="urn:example"/>')


def test_an_aecg_without_a_time_sequence_is_refused() -> None:
    document = aecg().replace('xsi:type="GLIST_TS"', 'xsi:type="GLIST_PQ"').replace("TIME_ABSOLUTE", "OTHER")
    _refused("aecg_time_sequence", read_aecg, document.encode())


def test_an_entity_expansion_bomb_is_refused_before_it_expands() -> None:
    bomb = (
        "<!DOCTYPE AnnotatedECG [<!ENTITY a0 'xxxxxxxxxx'>"
        + "".join(f"<!ENTITY a{i} '{('&a' + str(i - 1) + ';') * 10}'>" for i in range(1, 10))
        + "]>"
    )
    document = aecg(prolog=bomb).replace("<family>Wang</family>", "<family>&a9;</family>").encode()
    started = time.perf_counter()
    _refused("xml_no_dtd", read_aecg, document)
    assert time.perf_counter() - started < 1.0


def test_an_external_entity_is_refused_and_never_read() -> None:
    prolog = '<!DOCTYPE AnnotatedECG [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
    document = aecg(prolog=prolog).replace("<family>Wang</family>", "<family>&secret;</family>").encode()
    error = _refused("xml_no_dtd", read_aecg, document)
    assert "root:" not in error.message


def test_an_unknown_entity_without_a_dtd_is_malformed_xml() -> None:
    _refused("xml_well_formed", read_aecg, aecg().replace("Wang", "&undefined;").encode())


def test_leads_of_unequal_length_are_refused() -> None:
    digits = [square_wave(0, 500, 500), square_wave(1, 400, 500)]
    _refused("lead_lengths", read_aecg, aecg(digits, leads=("I", "II")).encode())


def test_a_file_of_neither_kind_is_refused_when_no_format_is_declared() -> None:
    _refused("ecg_format", read_ecg_file, b"%PDF-1.7 not an ECG")
    _refused("format", read_ecg_file, dicom_ecg(), "scp-ecg")
    assert read_ecg_file(dicom_ecg()).source_format == "dicom"
    assert read_ecg_file(aecg().encode()).source_format == "aecg"


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 121_000), st.binary(min_size=1, max_size=64))
def test_a_damaged_dicom_ecg_is_refused_never_crashes(cut: int, garbage: bytes) -> None:
    data = ORIGINAL_DICOM[:cut] + garbage + ORIGINAL_DICOM[cut + len(garbage) :]
    with contextlib.suppress(EcgFileRefused):
        read_ecg_file(data, "dicom")


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 170_000), st.binary(min_size=1, max_size=16))
def test_a_damaged_aecg_is_refused_never_crashes(cut: int, garbage: bytes) -> None:
    data = ORIGINAL_AECG[:cut] + garbage + ORIGINAL_AECG[cut + len(garbage) :]
    with contextlib.suppress(EcgFileRefused):
        read_ecg_file(data, "aecg")


ORIGINAL_DICOM = dicom_ecg()
ORIGINAL_AECG = aecg().encode()


def test_an_aecg_declaring_an_unknown_encoding_is_refused_naming_it() -> None:
    # Found by the damaged-file property: a byte changed in "UTF-8" made expat raise LookupError, a crash.
    _refused("xml_encoding", read_ecg_file,
             b'<?xml version="1.0" encoding="U-F-8"?><AnnotatedECG xmlns="urn:hl7-org:v3"/>', "aecg")
