"""The contract rate per area: signed residents ÷ the area's resident population (reference data)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from cityhealth.records import family_teams
from cityhealth.records.family_models import AreaPopulation
from tests.factories.registry import count
from tests.records.family_support import FAMILY, admin, centre, doctor, package, resident, signing, team


async def _sign(app: FastAPI, client: httpx.AsyncClient, area_codes: list[str | None]) -> None:
    chc = await centre(app, area_code="320106")
    team_id, package_id = await team(app, chc), await package(app)
    people = [await resident(app, area) for area in area_codes]
    response = await client.post(f"{FAMILY}/contracts", headers=await doctor(app, chc),
                                 json=signing(people, team_id, package_id))
    assert response.status_code == 201


async def test_the_rate_divides_the_areas_signed_residents_by_its_population(app: FastAPI,
                                                                            client: httpx.AsyncClient) -> None:
    # Two residents of 玄武 (320102) and one without an address, counted in the centre's area (鼓楼, 320106).
    await _sign(app, client, ["320102", "320102", None])
    headers = await admin(app)
    put = await client.put(f"{FAMILY}/populations/320102/2021", headers=headers,
                           json={"population": 1600, "source": "test figures"})
    assert put.status_code == 200
    response = await client.get(f"{FAMILY}/contract-rates/320102", headers=headers)
    assert response.json() == {"area_code": "320102", "on": "2022-06-15", "signed_residents": 2,
                               "population": 1600, "population_year": 2021, "rate_percent": "0.13"}
    gulou = await client.get(f"{FAMILY}/contract-rates/320106", headers=headers)
    assert (gulou.json()["signed_residents"], gulou.json()["rate_percent"]) == (1, None)


async def test_a_citys_rate_counts_its_districts(app: FastAPI, client: httpx.AsyncClient) -> None:
    await _sign(app, client, ["320102", "320106", "320111"])
    headers = await admin(app)
    await client.put(f"{FAMILY}/populations/320100/2022", headers=headers,
                     json={"population": 3, "source": "test figures"})
    response = await client.get(f"{FAMILY}/contract-rates/320100", headers=headers)
    assert (response.json()["signed_residents"], response.json()["rate_percent"]) == (3, "100.00")


async def test_the_rate_before_the_contracts_start_counts_no_one(app: FastAPI, client: httpx.AsyncClient) -> None:
    await _sign(app, client, ["320102"])
    response = await client.get(f"{FAMILY}/contract-rates/320102", params={"on": "2022-06-14"},
                                headers=await admin(app))
    assert response.json()["signed_residents"] == 0


async def test_an_unknown_area_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    await centre(app)
    response = await client.get(f"{FAMILY}/contract-rates/329999", headers=await admin(app))
    assert response.status_code == 422
    assert response.json()["rule"] == "area.unknown"


async def test_the_shipped_population_figures_load_once_for_the_areas_held(app: FastAPI) -> None:
    await centre(app)  # the small area tree: Nanjing, 玄武, 鼓楼, 浦口 and 江北新区 of the shipped file
    async with app.state.database.transaction() as session:
        first = await family_teams.load_populations(session, app.state.clock)
    async with app.state.database.transaction() as session:
        again = await family_teams.load_populations(session, app.state.clock)
    assert first == again == 5
    assert await count(app.state.database, AreaPopulation) == 5
    async with app.state.database.sessions() as session:
        nanjing = await session.get(AreaPopulation, ("320100", 2019))
        assert nanjing is not None
        assert nanjing.population == 8_500_000
