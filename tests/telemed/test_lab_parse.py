"""Reading lab messages: any mix of segment endings reads the same; no input escapes as anything but a problem."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cityhealth.telemed.lab_parse import Hl7Problem, parse
from tests.telemed.lab_support import oml, oru, wire

_MESSAGES = [
    wire(oru("R-1", [("110101199003074514", "", "", "", "ID")], specimen="S-1")),
    wire(oml("O-1", "S-1", "rejected")),
]


@given(
    st.sampled_from(_MESSAGES),
    st.lists(st.sampled_from(["\r", "\n", "\r\n", "\n\n", "\r\n\r\n"]), min_size=8, max_size=8),
)
def test_any_mix_of_segment_endings_reads_the_same(raw: bytes, endings: list[str]) -> None:
    segments = raw.decode().strip("\r").split("\r")
    mixed = "".join(segment + endings[n % len(endings)] for n, segment in enumerate(segments)).encode()
    assert parse(mixed) == parse(raw)


@settings(max_examples=300)
@given(st.sampled_from(_MESSAGES), st.integers(min_value=0, max_value=400), st.binary(max_size=12))
def test_a_damaged_message_is_read_or_refused_with_a_located_problem(raw: bytes, at: int, junk: bytes) -> None:
    damaged = raw[:at] + junk + raw[at + len(junk) :]
    problem: Hl7Problem | None = None
    try:
        parse(damaged)
    except Hl7Problem as refused:
        problem = refused
    if problem is not None:
        assert problem.ack in {"AE", "AR"}
        assert problem.location
        assert problem.text
