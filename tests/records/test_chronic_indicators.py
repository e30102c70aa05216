"""The monthly indicators, hand-computed: 规范管理率, 控制率 and the HEARTS "controlled" share, per area and team,
counted from the patient-month table (docs/decisions/records-chronic.md defines each)."""

from __future__ import annotations

from datetime import date

import httpx
from fastapi import FastAPI

from cityhealth.records import chronic, chronic_indicators, chronic_overdue
from cityhealth.records.chronic_models import ChronicPatientMonth
from cityhealth.records.chronic_schemas import CallIn, FollowupIn
from cityhealth.registry import service as registry
from cityhealth.security.principals import Role
from tests.factories.registry import count
from tests.factories.security import staff
from tests.records.family_support import CHRONIC, FAMILY, admin, centre, doctor, package, resident, signing, team

# June 2022: the 12 months run from 1 July 2021; the HEARTS window from 1 April 2022.
PATIENTS = {
    # name: (area, registered on, [(visit, sbp, dbp)])
    "A": ("320102", date(2021, 6, 1), [(date(2021, 8, 1), 130, 80), (date(2021, 11, 1), 135, 85),
                                       (date(2022, 2, 1), 138, 88), (date(2022, 5, 1), 128, 78)]),
    "B": ("320102", date(2021, 10, 1), [(date(2021, 12, 1), 150, 95), (date(2022, 3, 15), 126, 80),
                                        (date(2022, 6, 10), 145, 85)]),
    "C": ("320102", date(2022, 1, 10), [(date(2022, 3, 1), 130, 80)]),
    "D": ("320102", date(2022, 5, 1), [(date(2022, 5, 20), 120, 70)]),
    "E": ("320106", date(2021, 5, 1), [(date(2021, 6, 15), 130, 80)]),
    "F": ("320102", date(2021, 3, 1), [(date(2022, 4, 1), 120, 70)]),  # dies in June: off the register
}


async def _city(app: FastAPI) -> tuple[int, dict[str, int]]:
    """The patients above at one centre; (centre, resident id by name)."""
    chc = await centre(app)
    doctor_principal = staff(Role.FAMILY_DOCTOR, organization_id=chc)
    cipher = registry.cipher_for(app.state.settings)
    people = {}
    for name, (area, registered_on, visits) in PATIENTS.items():
        people[name] = await resident(app, area)
        async with app.state.database.transaction() as session:
            entry = await chronic.register(session, app.state.clock, cipher, None, resident_id=people[name],
                                           program="hypertension", registered_on=registered_on,
                                           organization_id=chc, source="clinic", source_ref=None)
            for day, sbp, dbp in visits:
                await chronic.record_followup(session, app.state.clock, doctor_principal, entry.id, FollowupIn(
                    key=day.isoformat(), visit_date=day, sbp=sbp, dbp=dbp))
            if name == "F":
                await chronic_overdue.record_call(session, app.state.clock, doctor_principal, entry.id,
                                                  CallIn(outcome="removed", removal_reason="died"))
    return chc, people


async def _rebuild(app: FastAPI, month: str = "2022-06") -> int:
    async with app.state.database.transaction() as session:
        return await chronic_indicators.rebuild_month(session, app.state.clock, month)


async def test_the_indicators_per_area_match_the_hand_count(app: FastAPI, client: httpx.AsyncClient) -> None:
    await _city(app)
    assert await _rebuild(app) == 5  # A B C D E; F died
    response = await client.get(f"{CHRONIC}/indicators", params={"month": "2022-06", "program": "hypertension"},
                                headers=await admin(app))
    assert response.status_code == 200
    assert response.json() == [
        # 玄武: A B C D managed; A has four follow-ups; A C D at target last time; HEARTS: A B C registered before
        # April and seen within the year, A alone below 140/90 since April (C's only reading is from March).
        {"month": "2022-06", "program": "hypertension", "area_code": "320102", "team_id": None, "managed": 4,
         "standard_managed": 1, "standard_rate_percent": "25.00", "controlled": 3, "control_rate_percent": "75.00",
         "hearts_denominator": 3, "hearts_controlled": 1, "hearts_rate_percent": "33.33"},
        # 鼓楼: E, not seen within the year: managed but neither standard nor controlled, and out of HEARTS.
        {"month": "2022-06", "program": "hypertension", "area_code": "320106", "team_id": None, "managed": 1,
         "standard_managed": 0, "standard_rate_percent": "0.00", "controlled": 0, "control_rate_percent": "0.00",
         "hearts_denominator": 0, "hearts_controlled": 0, "hearts_rate_percent": None},
    ]


async def test_the_indicators_per_team_count_its_contracted_patients(app: FastAPI,
                                                                    client: httpx.AsyncClient) -> None:
    chc, people = await _city(app)
    team_id = await team(app, chc)
    signed = await client.post(f"{FAMILY}/contracts", headers=await doctor(app, chc),
                               json=signing([people["A"], people["B"]], team_id, await package(app)))
    assert signed.status_code == 201
    await _rebuild(app)
    async with app.state.database.sessions() as session:
        [row] = await chronic_indicators.indicators(session, "2022-06", "hypertension", "team")
    assert (row.team_id, row.managed, row.standard_rate_percent, row.control_rate_percent, row.hearts_denominator,
            row.hearts_rate_percent) == (team_id, 2, "50.00", "50.00", 2, "50.00")


async def test_a_month_before_anyone_registered_has_no_rows(app: FastAPI) -> None:
    await _city(app)
    assert await _rebuild(app, "2021-02") == 0
    async with app.state.database.sessions() as session:
        assert await chronic_indicators.indicators(session, "2021-02", "hypertension", "area") == []


async def test_rebuilding_a_month_again_gives_the_same_rows(app: FastAPI) -> None:
    await _city(app)
    await _rebuild(app)
    async with app.state.database.sessions() as session:
        first = await chronic_indicators.indicators(session, "2022-06", "hypertension", "area")
    assert await _rebuild(app) == 5
    assert await count(app.state.database, ChronicPatientMonth) == 5
    async with app.state.database.sessions() as session:
        assert await chronic_indicators.indicators(session, "2022-06", "hypertension", "area") == first


async def test_diabetes_control_counts_glucose_and_has_no_hearts_share(app: FastAPI) -> None:
    chc = await centre(app)
    cipher = registry.cipher_for(app.state.settings)
    async with app.state.database.transaction() as session:
        entry = await chronic.register(session, app.state.clock, cipher, None, resident_id=await resident(app),
                                       program="diabetes", registered_on=date(2021, 9, 1), organization_id=chc,
                                       source="clinic", source_ref=None)
        await chronic.record_followup(session, app.state.clock, staff(Role.FAMILY_DOCTOR, organization_id=chc),
                                      entry.id, FollowupIn(key="g1", visit_date=date(2022, 6, 1), sbp=150, dbp=95,
                                                           fbg_mmol_l=6.5))
    await _rebuild(app)
    async with app.state.database.sessions() as session:
        [row] = await chronic_indicators.indicators(session, "2022-06", "diabetes", "area")
    assert (row.managed, row.controlled, row.control_rate_percent, row.hearts_rate_percent) == (1, 1, "100.00", None)


async def test_a_malformed_month_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.get(f"{CHRONIC}/indicators", params={"month": "2022-13", "program": "hypertension"},
                                headers=await admin(app))
    assert response.status_code == 422
    assert response.json()["rule"] == "month.format"
