"""Registry API: areas (the GB/T 2260 tree and platform-local reporting units)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.factories.registry import count, load_nanjing, seed_areas
from tests.factories.security import admin_headers, headers_for, staff

from cityhealth.clock import SimulatedClock
from cityhealth.db.engine import Database
from cityhealth.db.types import MAX_OFFSET
from cityhealth.registry.models import Area, AreaMapping
from cityhealth.security.principals import Role

AREAS = "/api/registry/areas"


@pytest.fixture
async def admin(app: FastAPI) -> dict[str, str]:
    return await admin_headers(app)


@pytest.fixture
async def areas(database: Database, clock: SimulatedClock) -> None:
    await seed_areas(database, clock)


def _problem(response: httpx.Response, status: int, code: str, field: str, rule: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert (body["code"], body["field"], body["rule"]) == (code, field, rule)
    return body


async def test_list_filters_by_level_and_parent(client: httpx.AsyncClient, admin: dict[str, str],
                                                database: Database, clock: SimulatedClock) -> None:
    await load_nanjing(database, clock)
    response = await client.get(AREAS, params={"level": "district", "parent_code": "320100"}, headers=admin)
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 11
    assert [a["code"] for a in body["items"]][:3] == ["320102", "320104", "320105"]
    cities = (await client.get(AREAS, params={"level": "city"}, headers=admin)).json()
    assert {a["name"] for a in cities["items"]} >= {"南京市", "苏州市", "南通市", "马鞍山市", "镇江市", "扬州市"}


async def test_pagination_pages_through_in_code_order(client: httpx.AsyncClient, admin: dict[str, str],
                                                      areas: None) -> None:
    first = (await client.get(AREAS, params={"limit": 4, "offset": 0}, headers=admin)).json()
    second = (await client.get(AREAS, params={"limit": 4, "offset": 4}, headers=admin)).json()
    assert (first["total"], first["limit"], first["offset"]) == (6, 4, 0)
    assert [a["code"] for a in first["items"] + second["items"]] == [
        "320000", "320100", "320102", "320106", "320111", "3201JB"]


async def test_page_size_above_500_is_refused(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.get(AREAS, params={"limit": 501}, headers=admin)
    assert response.status_code == 422
    assert response.json()["field"] == "query.limit"


@pytest.mark.parametrize("path", [AREAS, "/api/registry/residents", "/api/registry/organizations"])
async def test_an_offset_past_a_million_rows_is_refused_naming_it(client: httpx.AsyncClient, admin: dict[str, str],
                                                                  path: str) -> None:
    # Deeper pages cost a scan of every row before them; a list that long is searched by its filters.
    assert (await client.get(path, params={"offset": MAX_OFFSET}, headers=admin)).status_code == 200
    response = await client.get(path, params={"offset": MAX_OFFSET + 1}, headers=admin)
    assert response.status_code == 422
    assert response.json()["field"] == "query.offset"


async def test_get_reporting_unit_shows_the_districts_it_maps_to(client: httpx.AsyncClient,
                                                                 admin: dict[str, str], areas: None) -> None:
    response = await client.get(f"{AREAS}/3201JB", headers=admin)
    assert response.status_code == 200
    assert response.json()["maps_to"] == ["320111"]
    assert response.json()["level"] == "reporting_unit"


async def test_get_unknown_area_is_404(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.get(f"{AREAS}/999999", headers=admin)
    assert response.status_code == 404


async def test_create_district_under_its_city(client: httpx.AsyncClient, admin: dict[str, str],
                                              areas: None) -> None:
    response = await client.post(AREAS, json={"code": "320104", "name": "秦淮区", "level": "district",
                                              "parent_code": "320100"}, headers=admin)
    assert response.status_code == 201, response.text
    assert response.json()["parent_code"] == "320100"
    assert response.json()["is_active"] is True


async def test_unknown_parent_code_is_refused_and_nothing_written(
        client: httpx.AsyncClient, admin: dict[str, str], database: Database, areas: None) -> None:
    response = await client.post(AREAS, json={"code": "330102", "name": "上城区", "level": "district",
                                              "parent_code": "330100"}, headers=admin)
    body = _problem(response, 422, "validation_failed", "parent_code", "area.unknown")
    assert body["value"] == "330100"
    assert await count(database, Area) == 6


@pytest.mark.parametrize(("payload", "field", "rule"), [
    ({"code": "320100", "name": "x", "level": "district", "parent_code": "320100"}, "code", "area.code_format"),
    ({"code": "320199", "name": "x", "level": "city", "parent_code": "320000"}, "code", "area.code_format"),
    ({"code": "320199", "name": "x", "level": "reporting_unit", "parent_code": "320100"}, "code",
     "area.code_format"),
    ({"code": "330105", "name": "x", "level": "district", "parent_code": "320100"}, "code", "area.parent_prefix"),
    ({"code": "320199", "name": "x", "level": "district", "parent_code": "320102"}, "parent_code",
     "area.parent_level"),
    ({"code": "320199", "name": "x", "level": "district"}, "parent_code", "area.parent_required"),
    ({"code": "320199", "name": "x", "level": "county", "parent_code": "320100"}, "level", "area.level"),
    ({"code": "3201XX", "name": "x", "level": "reporting_unit", "parent_code": "320100",
      "maps_to": ["320199"]}, "maps_to", "area.unknown"),
    ({"code": "3201XX", "name": "x", "level": "reporting_unit", "parent_code": "320100",
      "maps_to": ["320100"]}, "maps_to", "area.maps_to"),
    ({"code": "320199", "name": "x", "level": "district", "parent_code": "320100",
      "maps_to": ["320102"]}, "maps_to", "area.maps_to"),
], ids=["district-code-of-a-city", "city-code-of-a-district", "digits-for-a-reporting-unit",
        "outside-parent", "district-under-district", "no-parent", "unknown-level", "maps-to-unknown",
        "maps-to-a-city", "district-with-mapping"])
async def test_bad_area_is_refused_naming_field_and_rule(
        client: httpx.AsyncClient, admin: dict[str, str], database: Database, areas: None,
        payload: dict[str, Any], field: str, rule: str) -> None:
    response = await client.post(AREAS, json=payload, headers=admin)
    _problem(response, 422, "validation_failed", field, rule)
    assert await count(database, Area) == 6
    assert await count(database, AreaMapping) == 1


async def test_second_area_with_the_same_code_is_409(client: httpx.AsyncClient, admin: dict[str, str],
                                                     database: Database, areas: None) -> None:
    response = await client.post(AREAS, json={"code": "320102", "name": "玄武区2", "level": "district",
                                              "parent_code": "320100"}, headers=admin)
    body = _problem(response, 409, "area_exists", "code", "area.unique_code")
    assert body["value"] == "320102"
    assert (await client.get(f"{AREAS}/320102", headers=admin)).json()["name"] == "玄武区"


async def test_patch_renames_and_remaps(client: httpx.AsyncClient, admin: dict[str, str], areas: None) -> None:
    response = await client.patch(f"{AREAS}/3201JB", json={"name": "南京江北新区",
                                                           "maps_to": ["320111", "320102"]}, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "南京江北新区"
    assert response.json()["maps_to"] == ["320102", "320111"]


async def test_patch_cannot_change_the_level(client: httpx.AsyncClient, admin: dict[str, str],
                                             areas: None) -> None:
    response = await client.patch(f"{AREAS}/320102", json={"level": "city"}, headers=admin)
    _problem(response, 422, "validation_failed", "level", "extra_forbidden")


async def test_deactivated_area_stays_but_new_references_are_refused(
        client: httpx.AsyncClient, admin: dict[str, str], database: Database, areas: None) -> None:
    response = await client.post(f"{AREAS}/320102/deactivate", headers=admin)
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert await count(database, Area) == 6
    active = (await client.get(AREAS, params={"active": "true"}, headers=admin)).json()
    assert "320102" not in [a["code"] for a in active["items"]]
    organization = {"name": "新医院", "kind": "hospital", "area_code": "320102"}
    refused = await client.post("/api/registry/organizations", json=organization, headers=admin)
    _problem(refused, 422, "validation_failed", "area_code", "area.inactive")


async def test_reading_needs_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.get(AREAS)).status_code == 401


async def test_writing_needs_registry_write(client: httpx.AsyncClient, app: FastAPI, database: Database,
                                            areas: None) -> None:
    agent = await headers_for(app, staff(Role.HOTLINE_AGENT))
    assert (await client.get(AREAS, headers=agent)).status_code == 200
    response = await client.post(AREAS, json={"code": "320104", "name": "秦淮区", "level": "district",
                                              "parent_code": "320100"}, headers=agent)
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    assert await count(database, Area) == 6


async def test_organization_admin_may_not_write_areas(client: httpx.AsyncClient, app: FastAPI,
                                                      database: Database, areas: None) -> None:
    headers = await headers_for(app, staff(Role.ORGANIZATION_ADMIN, organization_id=1))
    response = await client.post(AREAS, json={"code": "320104", "name": "秦淮区", "level": "district",
                                              "parent_code": "320100"}, headers=headers)
    _problem(response, 403, "organization_scoped", "organization_id", "registry.organization_scope")
    assert await count(database, Area) == 6
