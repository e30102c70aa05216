"""The one recogniser of whole ID and mobile numbers: every one masked, wherever it is and whatever surrounds it."""

from __future__ import annotations

from datetime import date

from hypothesis import example, given
from hypothesis import strategies as st

from cityhealth import observability
from cityhealth.personal_numbers import may_hold_number, scrub, scrub_json
from cityhealth.registry.identifiers import make_resident_id, mask_phone, mask_resident_id
from tests.security.harness import whole_personal_numbers

AREA_CODES = ["110101", "320102", "320115", "440305", "650102", "810000"]

ids_18 = st.builds(make_resident_id, st.sampled_from(AREA_CODES),
                   st.dates(min_value=date(1900, 1, 1), max_value=date(2020, 12, 31)),
                   st.integers(min_value=0, max_value=999))
# The first generation's numbers: area, yyMMdd, a 3-digit sequence.
ids_15 = st.builds(lambda area, born, seq: f"{area}{born:%y%m%d}{seq:03d}", st.sampled_from(AREA_CODES),
                   st.dates(min_value=date(1900, 1, 1), max_value=date(1999, 12, 31)),
                   st.integers(min_value=0, max_value=999))
mobiles = st.builds(lambda second, rest: f"1{second}{rest:09d}", st.sampled_from("3456789"),
                    st.integers(min_value=0, max_value=10**9 - 1))
numbers = st.one_of(ids_18, ids_15, mobiles)
# What may stand right next to a number that is still a number of its own: anything but an ASCII letter
# (an ID number glued to letters is part of a longer code) or a digit of any script (digits around a number
# make a longer one, masked whole: the second property covers them).
edges = st.characters(blacklist_characters="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                      blacklist_categories=["Cs", "Nd"])


def masked(number: str) -> str:
    return mask_phone(number) if len(number) == 11 else mask_resident_id(number)


@given(number=numbers, before=st.text(), left=edges, right=edges, after=st.text())
@example(number="320102198504120372", before="", left="身", right="号", after="")
@example(number="13912345678", before="tel", left=":", right=" ", after="")
def test_a_number_embedded_in_any_text_is_masked(number: str, before: str, left: str, right: str,
                                                 after: str) -> None:
    scrubbed = scrub(f"{before}{left}{number}{right}{after}")
    assert f"{left}{masked(number)}{right}" in scrubbed
    assert number not in scrubbed


@given(text=st.text())
@example(text="身份证 320102198504120372，手机 13912345678")
@example(text="\u066313912345678")
def test_no_text_keeps_a_number_the_suite_scan_recognises(text: str) -> None:
    assert whole_personal_numbers(scrub(text)) == []


def test_the_three_shapes_are_masked_as_the_identifiers_module_masks_them() -> None:
    assert scrub("id 32010219850412037X, old 320102850412037, tel13912345678") == (
        "id 320102********037X, old 320102******037, tel139****5678")


def test_longer_codes_and_shorter_numbers_are_left_alone() -> None:
    text = "USCC 91320102MA1XXXXX0L, code A320102198504120372, run 1391234567890, short 1391234567"
    assert scrub(text) == text


def test_json_values_are_scrubbed_in_strings_keys_nested_values_and_numbers() -> None:
    value = {"ethnicity_code": "320102198504120372", "13912345678": [{"n": 13912345678}, 7, True, None, 2.5]}
    assert scrub_json(value) == {"ethnicity_code": "320102********0372",
                                 "139****5678": [{"n": "139****5678"}, 7, True, None, 2.5]}


def test_the_log_scrubber_is_the_same_recogniser() -> None:
    assert observability.scrub is scrub


@given(texts=st.lists(st.one_of(st.text(), numbers), max_size=5))
@example(texts=["1391234", "5678"])
@example(texts=["id 320102198504120372", "ok"])
def test_one_search_over_joined_texts_finds_every_text_that_needs_masking(texts: list[str]) -> None:
    # Joined by a newline, two pieces of a number never read as one, and a whole number is always found.
    if not may_hold_number("\n".join(texts)):
        assert [scrub(text) for text in texts] == texts
    if any(scrub(text) != text for text in texts):
        assert may_hold_number("\n".join(texts))
    assert not may_hold_number("\n".join(["1391234", "5678"]))
