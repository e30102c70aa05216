"""The month's people: residents at the scale (bounded), contracts, chronic patients and their readings, and the
patient identities the hospitals' uploads carry — all planned from the scenario, the scale and the seed."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityhealth.clock import BUSINESS_TZ
from cityhealth.collection.standard import load_standard
from cityhealth.collection.validation.validator import FormValidator
from cityhealth.records.chronic_rules import Readings, check_readings
from cityhealth.registry.identifiers import parse_resident_id
from cityhealth.simulation.feed import IDENTIFIED_EVERY, PATIENT_MASTER, LineTemplates
from cityhealth.simulation.people import (
    CONFLICT_EVERY,
    MAX_RESIDENTS,
    NO_ID_NUMBER,
    identities,
    plan_people,
    reading,
)
from cityhealth.simulation.scenario import bundled_scenario, load_scenario, round_half_up, scaled

SCENARIO = load_scenario(bundled_scenario("nanjing-2022-06"))
DISTRICTS = SCENARIO.collection.districts if SCENARIO.collection else []
EVENT = datetime(2022, 6, 3, 8, 0, tzinfo=BUSINESS_TZ)
SMALL = Decimal("0.00002")  # the residents' figure at this scale is below the bound


def test_below_the_bound_each_area_has_its_basic_health_records_at_the_scale() -> None:
    plan = plan_people(SCENARIO, SMALL, seed=1)
    by_area = Counter(resident.area_code for resident in plan.residents)
    assert by_area == {row.area: scaled(row.health_records_cumulative.basic, SMALL) for row in DISTRICTS}
    assert 0 < len(plan.residents) == sum(by_area.values()) < MAX_RESIDENTS


def test_above_the_bound_the_residents_are_the_bound_shared_in_proportion() -> None:
    plan = plan_people(SCENARIO, Decimal("0.01"), seed=1)
    assert len(plan.residents) == MAX_RESIDENTS
    total = sum(row.health_records_cumulative.basic for row in DISTRICTS)
    by_area = Counter(resident.area_code for resident in plan.residents)
    for row in DISTRICTS:
        share = Decimal(row.health_records_cumulative.basic) * MAX_RESIDENTS / total
        assert abs(by_area[row.area] - share) < 1


def test_each_area_signs_its_share_of_residents_and_its_chronic_patients_in_the_figures_proportion() -> None:
    plan = plan_people(SCENARIO, SMALL, seed=1)
    area_of = {resident.index: resident.area_code for resident in plan.residents}
    programs = Counter((area_of[patient.resident], patient.program) for patient in plan.chronic)
    for row, centre in zip(sorted(DISTRICTS, key=lambda row: row.area), plan.centres, strict=True):
        count = scaled(row.health_records_cumulative.basic, SMALL)
        hypertension = round_half_up(Decimal(count) * row.health_records_cumulative.hypertension
                                     / row.health_records_cumulative.basic)
        assert centre.area_code == row.area
        assert programs[(row.area, "hypertension")] == hypertension
        assert len(centre.contracts) == round_half_up(Decimal(count) * Decimal("0.4"))


def test_the_same_seed_gives_the_same_people_and_another_seed_others() -> None:
    first = plan_people(SCENARIO, Decimal("0.001"), seed=3)
    assert plan_people(SCENARIO, Decimal("0.001"), seed=3) == first
    assert identities(plan_people(SCENARIO, Decimal("0.001"), seed=3)) == identities(first)
    other = plan_people(SCENARIO, Decimal("0.001"), seed=4)
    assert [r.id_number for r in other.residents] != [r.id_number for r in first.residents]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_resident_has_at_most_one_contract_and_every_chronic_patient_has_one(seed: int) -> None:
    plan = plan_people(SCENARIO, Decimal("0.001"), seed=seed)
    signed = [index for centre in plan.centres for index, _ in centre.contracts]
    assert len(signed) == len(set(signed))
    assert {patient.resident for patient in plan.chronic} <= set(signed)
    for centre in plan.centres:
        assert all(0 <= team < centre.teams for _, team in centre.contracts)


@pytest.mark.parametrize("seed", range(1, 9))
def test_every_planned_reading_is_physiological(seed: int) -> None:
    plan = plan_people(SCENARIO, Decimal("0.001"), seed=seed)
    readings = [(patient.program, planned) for patient in plan.chronic
                for planned in (*patient.history, *patient.in_month)]
    assert readings
    for program, planned in readings:
        # The records room's own check: it raises on a reading no living patient has.
        check_readings(program, Readings(planned.sbp, planned.dbp, planned.fbg_mmol_l, False, False))
        assert planned.sbp - planned.dbp >= 30
        assert (planned.fbg_mmol_l is None) == (program == "hypertension")


@given(st.integers(), st.sampled_from(["hypertension", "diabetes"]))
def test_any_drawn_reading_passes_the_records_rooms_physiological_check(seed: int, program: str) -> None:
    drawn = reading(random.Random(seed), program, date(2022, 6, 10))
    check_readings(program, Readings(drawn.sbp, drawn.dbp, drawn.fbg_mmol_l, False, False))
    assert drawn.sbp > drawn.dbp


def test_follow_ups_fall_after_the_registration_and_the_months_within_it() -> None:
    plan = plan_people(SCENARIO, Decimal("0.001"), seed=1)
    for patient in plan.chronic:
        assert all(patient.registered_on < reading.visit_date < date(2022, 6, 1) for reading in patient.history)
        assert all(date(2022, 6, 1) <= reading.visit_date <= date(2022, 6, 30) for reading in patient.in_month)


def test_residents_id_numbers_are_valid_unique_and_agree_with_birth_date_and_sex() -> None:
    plan = plan_people(SCENARIO, Decimal("0.001"), seed=1)
    assert len({resident.id_number for resident in plan.residents}) == len(plan.residents)
    for resident in plan.residents:
        parsed = parse_resident_id(resident.id_number)
        assert (parsed.birth_date, int(parsed.sex)) == (resident.birth_date, resident.sex)


def test_the_patients_carry_id_numbers_other_documents_and_a_few_conflicts() -> None:
    plan = plan_people(SCENARIO, Decimal("0.001"), seed=1)
    pairs = list(zip(identities(plan), plan.residents, strict=True))
    without = [patient for patient, _ in pairs if patient.document is not None]
    assert len(without) == sum(1 for r in plan.residents if 1 <= r.index % CONFLICT_EVERY <= NO_ID_NUMBER)
    conflicting = [(patient, resident) for patient, resident in pairs if patient.name[0] != resident.name[0]]
    assert [resident.index for _, resident in conflicting] == [r.index for r in plan.residents[::CONFLICT_EVERY]]
    for patient, resident in conflicting:
        # Another surname and phone beside the number; the number's own birth date and sex.
        assert patient.document is None
        assert patient.id_number == resident.id_number
        assert patient.phone != resident.phone
        assert (patient.birth_date, patient.sex) == (resident.birth_date, resident.sex)
    # For the review band: no ID number, the same surname with another given name, another phone.
    doubtful = [(patient, resident) for patient, resident in pairs if patient.document is not None
                and patient.name != resident.name]
    assert [resident.index % CONFLICT_EVERY for _, resident in doubtful] == [NO_ID_NUMBER] * len(doubtful)
    assert len(doubtful) == len([r for r in plan.residents if r.index % CONFLICT_EVERY == NO_ID_NUMBER])
    for patient, resident in doubtful:
        assert patient.name[0] == resident.name[0]
        assert patient.phone != resident.phone
        assert (patient.birth_date, patient.sex) == (resident.birth_date, resident.sex)


def test_patient_master_records_name_residents_and_pass_the_upload_checks() -> None:
    plan = plan_people(SCENARIO, Decimal("0.001"), seed=1)
    patients = identities(plan)
    templates = LineTemplates("12320100466000001X", patients)
    ids = [f"C{n:09d}" for n in range(1, 401)]
    records = [orjson.loads(line) for line in templates.lines([PATIENT_MASTER] * len(ids), ids, EVENT)]
    by_patient_id = {patient.patient_id: patient for patient in patients}
    named = [record for record in records if record["patient_id"] in by_patient_id]
    assert abs(len(named) - len(records) / IDENTIFIED_EVERY) < len(records) / 10
    for record in named:
        patient = by_patient_id[record["patient_id"]]
        assert (record["name"], record["phone"]) == (patient.name, patient.phone)
        assert record["id_number"] == (patient.document or patient.id_number)
        assert record["id_type_code"] == ("99" if patient.document else "01")
    assert {record["id_type_code"] for record in named} == {"01", "99"}
    standard = load_standard()
    validator = FormValidator(standard.forms[PATIENT_MASTER], standard, {})
    result = validator.validate([{k: v for k, v in r.items() if k != "form"} for r in records],
                                now=datetime(2022, 6, 3, 4, 0, tzinfo=UTC))
    assert result.errors == {}
    # The same record ids give the same lines: the identities follow from the ids.
    again = [orjson.loads(line) for line in LineTemplates("12320100466000001X", patients).lines(
        [PATIENT_MASTER] * len(ids), ids, EVENT)]
    assert again == records


def test_the_demo_resident_is_a_signed_hypertension_patient() -> None:
    plan = plan_people(SCENARIO, Decimal("0.01"), seed=1)
    demo = plan.demo()
    assert demo is not None
    resident, centre = demo
    assert resident.index in {index for index, _ in centre.contracts}
    assert any(p.resident == resident.index and p.program == "hypertension" for p in plan.chronic)
