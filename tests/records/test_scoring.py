"""The match score: each field's weight, the thresholds, and properties that hold for any pair."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from cityhealth.records.scoring import LINK_AT, MODEL, REVIEW_AT, Agreement, Traits, compare

FULL = Traits("王小明", 1, date(1980, 3, 14), "phone-hash", "320102")


def test_every_field_agreeing_is_a_link() -> None:
    score = compare(FULL, FULL)
    assert score.decision == "link"
    assert set(score.agreements.values()) == {Agreement.AGREE}


def test_name_sex_and_birth_date_alone_reach_the_link_threshold() -> None:
    bare = Traits("王小明", 1, date(1980, 3, 14), None, None)
    assert compare(bare, bare).total >= LINK_AT


def test_a_different_sex_puts_the_pair_in_the_review_band() -> None:
    other = Traits("王小明", 2, date(1980, 3, 14), None, None)
    assert compare(FULL, other).decision == "review"


def test_a_different_surname_with_nothing_else_in_common_is_no_match() -> None:
    other = Traits("李四", 2, date(1990, 1, 1), "other-hash", "320500")
    score = compare(FULL, other)
    assert score.total < REVIEW_AT
    assert score.decision == "none"


def test_the_same_surname_is_a_partial_name_agreement() -> None:
    assert compare(FULL, Traits("王大明", 1, None, None, None)).agreements["name"] is Agreement.PARTIAL


def test_a_swapped_month_and_day_is_a_partial_birth_date_agreement() -> None:
    swapped = Traits(None, None, date(1980, 3, 4), None, None)
    assert compare(Traits(None, None, date(1980, 4, 3), None, None), swapped).agreements["birth_date"] \
        is Agreement.PARTIAL


def test_a_missing_field_weighs_nothing() -> None:
    missing = Traits("王小明", 1, date(1980, 3, 14), None, "320102")
    with_phone = compare(FULL, FULL).total
    assert compare(FULL, missing).total == round(with_phone - MODEL["phone"].weight(Agreement.AGREE), 3)


def test_agreement_outweighs_disagreement_for_every_field() -> None:
    for field in MODEL.values():
        assert field.weight(Agreement.AGREE) > 0 > field.weight(Agreement.DISAGREE)


names = st.sampled_from(["王小明", "王大明", "李四", "张三", None])
sexes = st.sampled_from([1, 2, 9, None])
births = st.one_of(st.none(), st.dates(min_value=date(1920, 1, 1), max_value=date(2022, 1, 1)))
phones = st.sampled_from(["a", "b", None])
areas = st.sampled_from(["320102", "320104", "320500", None])
traits = st.builds(Traits, names, sexes, births, phones, areas)


@given(traits, traits)
def test_the_score_is_symmetric(left: Traits, right: Traits) -> None:
    assert compare(left, right).total == compare(right, left).total


@given(traits)
def test_no_pair_scores_above_a_record_with_itself(record: Traits) -> None:
    best = compare(FULL, FULL).total
    assert compare(record, record).total <= best
