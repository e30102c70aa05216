"""The spool's line splitter: exactly bytes.split over any chunking, linear in a line's length, capped."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityhealth.collection.spool import LineSplitter, ndjson_rows
from cityhealth.errors import PayloadTooLarge

# Bytes rich in newlines, so that chunks often start, end or consist of them.
_pieces = st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\x00", b"\n")), max_size=30)


def split_all(splitter: LineSplitter, chunks: list[bytes]) -> list[bytes]:
    lines: list[bytes] = []
    for chunk in chunks:
        lines.extend(splitter.feed(chunk))
    return lines + splitter.finish()


@given(_pieces)
def test_split_lines_are_those_of_the_joined_chunks_for_any_chunking(chunks: list[bytes]) -> None:
    assert split_all(LineSplitter(), chunks) == b"".join(chunks).split(b"\n")


@given(_pieces, st.integers(min_value=1, max_value=20))
def test_a_cap_refuses_exactly_the_streams_with_a_longer_line(chunks: list[bytes], cap: int) -> None:
    expected = b"".join(chunks).split(b"\n")
    longest = max(map(len, expected))
    if longest <= cap:
        assert split_all(LineSplitter(cap), chunks) == expected
        return
    with pytest.raises(PayloadTooLarge) as refused:
        split_all(LineSplitter(cap), chunks)
    first_long = next(number for number, line in enumerate(expected, start=1) if len(line) > cap)
    assert refused.value.errors[0]["line"] == first_long


def test_a_long_line_in_small_chunks_is_split_in_linear_time() -> None:
    # 16 MiB in 4 KiB chunks: re-joining the line with every chunk copies ~32 GiB; joining once copies 16 MiB.
    chunk = b"x" * 4096
    splitter = LineSplitter()
    started = time.perf_counter()
    for _ in range(4096):
        assert splitter.feed(chunk) == []
    (line,) = splitter.feed(b"\n")
    elapsed = time.perf_counter() - started
    assert len(line) == 16 << 20
    assert elapsed < 1.0


def test_an_over_long_line_is_refused_before_its_end_arrives() -> None:
    splitter = LineSplitter(1000)
    assert splitter.feed(b"{}\n" + b"x" * 600) == [b"{}"]
    with pytest.raises(PayloadTooLarge) as refused:
        splitter.feed(b"x" * 401)  # line 2 passes 1,000 bytes; its newline has not come yet
    error = refused.value
    assert (error.status, error.code, error.rule, error.value) == (
        413,
        "payload_too_large",
        "upload.max_line_bytes",
        1000,
    )
    assert error.errors[0]["line"] == 2
    assert error.errors[0]["setting"] == "CITYHEALTH_UPLOAD_MAX_LINE_BYTES"


def test_reading_a_spool_back_refuses_a_line_over_the_cap() -> None:
    chunks = [b'{"a": 1}\n', b'{"b": "' + b"y" * 5000, b'"}\n{"c": 3}\n']
    rows = ndjson_rows(iter(chunks), "outpatient_visit", max_line_bytes=1024)
    assert next(rows).record == {"a": 1}
    with pytest.raises(PayloadTooLarge) as refused:
        next(rows)
    assert (refused.value.rule, refused.value.errors[0]["line"]) == ("upload.max_line_bytes", 2)
