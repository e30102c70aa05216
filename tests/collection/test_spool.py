"""The spool's lines: split exactly as bytes.split over any chunking (linear, capped), blocked and parsed in order."""

from __future__ import annotations

import time

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityhealth.collection.lines import LineSplitter, ndjson_blocks, ndjson_rows, parse_lines
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


def check_all(splitter: LineSplitter, chunks: list[bytes]) -> int:
    for chunk in chunks:
        splitter.check(chunk)
    splitter.finish()
    return splitter.lines


@given(_pieces, st.one_of(st.none(), st.integers(min_value=1, max_value=20)))
def test_checking_without_lines_counts_and_refuses_exactly_as_splitting(chunks: list[bytes], cap: int | None) -> None:
    expected = b"".join(chunks).split(b"\n")
    if cap is None or max(map(len, expected)) <= cap:
        assert check_all(LineSplitter(cap), chunks) == len(expected)
        return
    with pytest.raises(PayloadTooLarge) as refused:
        check_all(LineSplitter(cap), chunks)
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


@given(_pieces, st.integers(min_value=1, max_value=7), st.integers(min_value=0, max_value=40))
def test_blocks_hold_the_lines_after_the_position_in_order_numbered_for_any_chunking(
    chunks: list[bytes], size: int, after: int
) -> None:
    lines = b"".join(chunks).split(b"\n")
    if lines[-1] == b"":  # a trailing newline ends the last line
        lines.pop()
    expected = [(number, line) for number, line in enumerate(lines, start=1) if number > after]
    blocks = list(ndjson_blocks(iter(chunks), size, after, max_line_bytes=None))
    got = [(first + k, line) for first, _, blob in blocks for k, line in enumerate(blob.split(b"\n"))]
    assert got == expected
    assert all(last == first + len(blob.split(b"\n")) - 1 for first, last, blob in blocks)
    assert all(len(blob.split(b"\n")) == size for _, _, blob in blocks[:-1])


def test_parsed_lines_number_records_and_name_what_could_not_be_read() -> None:
    lines = [b'{"form": "lab_report", "a": 1}', b"", b"  ", b"{oops", b"[1]", b'{"a": 2}', b'{"form": 7}']
    parsed = parse_lines(lines, "outpatient_visit", start=10, after=10)
    assert parsed.positions == [13, 14, 15, 16]
    assert parsed.forms == ["outpatient_visit", "outpatient_visit", "outpatient_visit", None]
    assert parsed.records == [None, None, {"a": 2}, {}]
    assert {index: error.rule for index, error in parsed.errors.items()} == {0: "json.malformed", 1: "json.malformed"}
    assert [
        (row.position, row.form, row.record, row.error)
        for row in ndjson_rows(iter([b"\n".join(lines)]), "outpatient_visit", start=10, after=10)
    ] == [
        (position, form, record, parsed.errors.get(index))
        for index, (position, form, record) in enumerate(
            zip(parsed.positions, parsed.forms, parsed.records, strict=True)
        )
    ]


ndjson_lines = st.lists(
    st.one_of(
        st.builds(
            lambda form, value: orjson.dumps({"a": value} if form is None else {"form": form, "a": value}),
            st.one_of(st.none(), st.sampled_from(["lab_report", "x"]), st.integers(-9, 9), st.lists(st.integers(0, 9))),
            st.one_of(st.integers(-9, 9), st.text(max_size=5)),
        ),
        st.sampled_from([b"", b"  ", b"{oops", b"[1]", b"7", b'"text"', b'{"form": null}', b'{"b": 1}\r']),
    ),
    max_size=8,
)


@given(lines=ndjson_lines, default=st.sampled_from([None, "outpatient_visit"]), start=st.integers(1, 3))
def test_a_block_parsed_at_once_reads_as_the_same_lines_parsed_one_by_one(
    lines: list[bytes], default: str | None, start: int
) -> None:
    at_once = parse_lines(lines, default, start)  # a list: the usual block may be parsed in one pass
    one_by_one = parse_lines(iter(lines), default, start)  # not a list: line by line
    assert at_once == one_by_one
