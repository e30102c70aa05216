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


def _reading(raw: bytes, *, tree: bool) -> object:
    try:
        return parse(raw, tree=tree)
    except Hl7Problem as problem:
        return (problem.ack, problem.code, problem.location, problem.text, problem.header)


_FIELD_TEXT = st.text(alphabet="AB1 ^~&\\|.EFSTRX葡", max_size=10)


@settings(max_examples=400)
@given(st.sampled_from(_MESSAGES), st.integers(min_value=0, max_value=400), st.binary(max_size=12))
def test_the_split_reading_equals_python_hl7s_tree_on_damaged_messages(raw: bytes, at: int, junk: bytes) -> None:
    damaged = raw[:at] + junk + raw[at + len(junk) :]
    assert _reading(damaged, tree=False) == _reading(damaged, tree=True)


@settings(max_examples=400)
@given(st.sampled_from(_MESSAGES), st.lists(st.tuples(st.integers(0, 40), _FIELD_TEXT), min_size=1, max_size=6))
def test_the_split_reading_equals_python_hl7s_tree_whatever_the_fields_hold(
    raw: bytes, edits: list[tuple[int, str]]
) -> None:
    """Separators, escapes and repetitions written into the fields read the same both ways."""
    segments = raw.decode().strip("\r").split("\r")
    for position, text in edits:
        line = position % len(segments)
        fields = segments[line].split("|")
        fields[min(position // len(segments) + 1, len(fields) - 1)] = text
        segments[line] = "|".join(fields)
    edited = ("\r".join(segments) + "\r").encode()
    assert _reading(edited, tree=False) == _reading(edited, tree=True)
