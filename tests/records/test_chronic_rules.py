"""The follow-up rules: physiological ranges, the classification and the next step (chronic_rules.py)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityhealth.errors import ValidationFailed
from cityhealth.records import chronic_rules as rules
from cityhealth.records.chronic import program_of_diagnosis

VISIT = date(2022, 6, 15)


def readings(sbp: int = 130, dbp: int = 80, fbg: float | None = 6.1, *, adverse: bool = False,
             complication: bool = False) -> rules.Readings:
    return rules.Readings(sbp=sbp, dbp=dbp, fbg_mmol_l=fbg, adverse_reaction=adverse, new_complication=complication)


@pytest.mark.parametrize(("sbp", "dbp", "rule"), [
    (120, 120, "chronic.pressure.systolic_above_diastolic"),
    (80, 95, "chronic.pressure.systolic_above_diastolic"),
    (310, 90, "chronic.sbp.range"),
    (39, 20, "chronic.sbp.range"),
    (140, 201, "chronic.dbp.range"),
    (140, 19, "chronic.dbp.range"),
])
def test_impossible_pressures_are_refused_naming_the_rule(sbp: int, dbp: int, rule: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        rules.check_readings("hypertension", readings(sbp, dbp))
    assert refused.value.rule == rule


@pytest.mark.parametrize(("fbg", "rule"), [(0.5, "chronic.fbg_mmol_l.range"), (50.1, "chronic.fbg_mmol_l.range"),
                                           (None, "chronic.fbg_mmol_l.required")])
def test_an_impossible_or_missing_glucose_is_refused_for_diabetes(fbg: float | None, rule: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        rules.check_readings("diabetes", readings(fbg=fbg))
    assert refused.value.rule == rule


@given(sbp=st.integers(40, 300), dbp=st.integers(20, 200))
def test_pressures_in_range_pass_exactly_when_systolic_is_above_diastolic(sbp: int, dbp: int) -> None:
    if sbp > dbp:
        rules.check_readings("hypertension", readings(sbp, dbp, None))
    else:
        with pytest.raises(ValidationFailed):
            rules.check_readings("hypertension", readings(sbp, dbp, None))


@given(sbp=st.integers(-1000, 1000), dbp=st.integers(-1000, 1000))
def test_every_accepted_pressure_is_physiological(sbp: int, dbp: int) -> None:
    try:
        rules.check_readings("hypertension", readings(sbp, dbp, None))
    except ValidationFailed:
        return
    assert 40 <= sbp <= 300
    assert 20 <= dbp <= 200
    assert sbp > dbp


def test_a_controlled_visit_is_seen_again_in_three_months() -> None:
    assessed = rules.assess("hypertension", readings(139, 89), VISIT, previous_controlled=None)
    assert assessed == rules.Assessment("1", True, "routine", date(2022, 9, 15))


def test_140_over_80_is_uncontrolled_and_rechecked_within_two_weeks() -> None:
    assessed = rules.assess("hypertension", readings(140, 80), VISIT, previous_controlled=True)
    assert assessed == rules.Assessment("2", False, "recheck", date(2022, 6, 29))


def test_a_second_uncontrolled_visit_in_a_row_is_referred() -> None:
    assessed = rules.assess("hypertension", readings(150, 95), VISIT, previous_controlled=False)
    assert assessed == rules.Assessment("2", False, "refer", date(2022, 6, 29))


def test_an_adverse_reaction_while_controlled_is_rechecked_within_two_weeks() -> None:
    assessed = rules.assess("hypertension", readings(120, 75, adverse=True), VISIT, previous_controlled=True)
    assert assessed == rules.Assessment("3", True, "recheck", date(2022, 6, 29))


def test_a_new_complication_is_referred_and_wins_the_classification() -> None:
    assessed = rules.assess("diabetes", readings(fbg=6.0, adverse=True, complication=True), VISIT,
                            previous_controlled=None)
    assert assessed == rules.Assessment("4", True, "refer", date(2022, 6, 29))


def test_diabetes_control_is_fasting_glucose_below_7() -> None:
    assert rules.assess("diabetes", readings(150, 95, 6.9), VISIT, previous_controlled=None).controlled
    assert not rules.assess("diabetes", readings(120, 70, 7.0), VISIT, previous_controlled=None).controlled


def test_three_months_after_30_november_is_the_end_of_february() -> None:
    assert rules.add_months(date(2022, 11, 30), 3) == date(2023, 2, 28)
    assert rules.add_months(date(2023, 11, 30), 3) == date(2024, 2, 29)
    assert rules.add_months(date(2022, 6, 1), -11) == date(2021, 7, 1)


@pytest.mark.parametrize(("code", "program"), [("I10", "hypertension"), ("I15.0", "hypertension"),
                                               ("E11.900", "diabetes"), ("E10.9", None), ("I20", None),
                                               ("I110", None)])
def test_the_diagnoses_that_enter_a_register(code: str, program: str | None) -> None:
    assert program_of_diagnosis(code) == program


@given(sbp=st.integers(40, 300), dbp=st.integers(20, 200), fbg=st.floats(1.0, 50.0), adverse=st.booleans(),
       complication=st.booleans(), previous=st.sampled_from([None, True, False]),
       program=st.sampled_from(["hypertension", "diabetes"]))
def test_only_a_controlled_visit_without_findings_waits_three_months(sbp: int, dbp: int, fbg: float, adverse: bool,
                                                                      complication: bool, previous: bool | None,
                                                                      program: str) -> None:
    found = readings(sbp, dbp, fbg, adverse=adverse, complication=complication)
    assessed = rules.assess(program, found, VISIT, previous_controlled=previous)
    quiet = assessed.controlled and not adverse and not complication
    assert (assessed.next_step == "routine") == quiet
    assert assessed.due_on == (date(2022, 9, 15) if quiet else date(2022, 6, 29))
    assert (assessed.next_step == "refer") == (complication or (not assessed.controlled and previous is False))
