"""The WADO-RS multipart reader gives back exactly the parts sent, whatever bytes they hold."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityhealth.errors import ValidationFailed
from cityhealth.telemed.dicomweb import PacsUnavailable, check_uid, split_multipart

BOUNDARY = "b0f2c5e1-9d4e-4b7a-a3a1-0c6f1e7d2a9b"


def _multipart(parts: list[bytes], *, preamble: bytes = b"") -> bytes:
    body = preamble
    for part in parts:
        body += f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


@given(st.lists(st.binary(max_size=300), max_size=5), st.sampled_from([b"", b"ignored preamble\r\n"]))
def test_every_part_comes_back_byte_for_byte(parts: list[bytes], preamble: bytes) -> None:
    content_type = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
    assert split_multipart(_multipart(parts, preamble=preamble), content_type) == parts


def test_a_quoted_boundary_and_crlf_dashes_inside_a_part_are_handled() -> None:
    part = b"\r\n--not-the-boundary\r\n\r\n--"
    content_type = f'multipart/related; boundary="{BOUNDARY}"; type="application/dicom"'
    assert split_multipart(_multipart([part, b"x"]), content_type) == [part, b"x"]


def test_an_answer_that_is_not_multipart_is_a_pacs_error() -> None:
    with pytest.raises(PacsUnavailable) as caught:
        split_multipart(b"{}", "application/json")
    assert caught.value.rule == "wado_multipart"
    assert caught.value.status == 502


@pytest.mark.parametrize("uid", ["", "1.2.x", "1..2", "1." * 40 + "1", "1.2.3;DROP"])
def test_a_malformed_study_uid_is_refused_before_any_request(uid: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_uid(uid)
    assert caught.value.rule == "dicom_uid"
    assert caught.value.field == "study_instance_uid"
