"""Registry API: organizations, their departments and practitioners, and client applications."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.factories.registry import (
    client_app_payload,
    count,
    department_payload,
    organization_payload,
    practitioner_payload,
    uscc,
)
from tests.factories.security import admin_headers, headers_for, machine, staff

from cityhealth.clock import SimulatedClock
from cityhealth.db.engine import Database
from cityhealth.registry.models import ClientApp, Department, Organization, Practitioner
from cityhealth.registry.service import platform_organization_code
from cityhealth.security.principals import Role, Scope

ORGS = "/api/registry/organizations"
APPS = "/api/registry/client-apps"


pytestmark = pytest.mark.usefixtures("seeded_areas")


@pytest.fixture
async def admin(app: FastAPI) -> dict[str, str]:
    return await admin_headers(app)


async def _create(client: httpx.AsyncClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = await client.post(ORGS, json=organization_payload(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _problem(response: httpx.Response, status: int, code: str, field: str, rule: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert (body["code"], body["field"], body["rule"]) == (code, field, rule)
    return body


# --- Organizations ------------------------------------------------------------------------------------


async def test_create_takes_the_credit_code_as_code_and_today_as_start(
        client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    credit_code = uscc()
    body = await _create(client, admin, uscc=credit_code)
    assert body["code"] == credit_code
    assert body["active_from"] == "2022-06-15"
    assert body["active_to"] is None
    assert (await client.get(f"{ORGS}/{body['id']}", headers=admin)).json() == body


async def test_without_credit_code_the_platform_assigns_a_stable_code(
        client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    body = await _create(client, admin, name="某某社区卫生服务中心", uscc=None, kind="community_health_centre")
    assert body["code"] == platform_organization_code("某某社区卫生服务中心")
    assert body["code"].startswith("P")


@pytest.mark.parametrize(("overrides", "field", "value", "rule"), [
    ({"kind": "clinic"}, "kind", "clinic", "organization.kind"),
    ({"area_code": "999999"}, "area_code", "999999", "area.unknown"),
    ({"uscc": "12320100MB0000001X"}, "uscc", "12320100MB0000001X", "uscc.check_char"),
    ({"uscc": "1232010000000"}, "uscc", "1232010000000", "uscc.length"),
    ({"ws218_type": "hospital"}, "ws218_type", "hospital", "organization.ws218_type"),
    ({"level": "特级"}, "level", "特级", "organization.level"),
    ({"area_code": "3201JB"}, "area_code", "3201JB", "organization.area_level"),
    ({"parent_id": 999}, "parent_id", 999, "organization.unknown"),
    ({"active_from": "2022-06-10", "active_to": "2022-06-01"}, "active_to", "2022-06-01",
     "organization.active_dates"),
    ({"id": 7}, "id", 7, "extra_forbidden"),
], ids=["kind", "area", "uscc-check", "uscc-length", "ws218", "level", "hospital-on-reporting-unit",
        "parent", "dates", "server-owned-field"])
async def test_bad_organization_is_422_naming_field_value_rule_and_writes_nothing(
        client: httpx.AsyncClient, admin: dict[str, str], database: Database,
        overrides: dict[str, Any], field: str, value: object, rule: str) -> None:
    response = await client.post(ORGS, json=organization_payload(**overrides), headers=admin)
    body = _problem(response, 422, "validation_failed", field, rule)
    assert body["value"] == value
    assert await count(database, Organization) == 0


@pytest.mark.parametrize("field", ["code", "name", "uscc"])
async def test_duplicate_code_name_or_credit_code_is_409(client: httpx.AsyncClient, admin: dict[str, str],
                                                         database: Database, field: str) -> None:
    first = await _create(client, admin, code="H001")
    response = await client.post(ORGS, json=organization_payload() | {"code": "H002", field: first[field]},
                                 headers=admin)
    body = _problem(response, 409, "organization_exists", field, f"organization.unique_{field}")
    assert body["value"] == first[field]
    assert await count(database, Organization) == 1


async def test_list_filters_by_kind_area_name_and_activity(client: httpx.AsyncClient,
                                                           admin: dict[str, str]) -> None:
    gulou = await _create(client, admin, name="南京鼓楼医院", area_code="320106")
    await _create(client, admin, name="玄武医院", area_code="320102")
    chc = await _create(client, admin, name="中央门社区卫生服务中心", kind="community_health_centre",
                        area_code="320106")
    closed = await _create(client, admin, name="鼓楼老医院", area_code="320106", active_from="2001-01-01",
                           active_to="2020-01-01")

    async def ids(**params: Any) -> list[int]:
        body = (await client.get(ORGS, params=params, headers=admin)).json()
        return [o["id"] for o in body["items"]]

    assert await ids(kind="community_health_centre") == [chc["id"]]
    assert await ids(area_code="320106") == [gulou["id"], chc["id"], closed["id"]]
    assert await ids(name="鼓楼") == [gulou["id"], closed["id"]]
    assert await ids(area_code="320106", active="true") == [gulou["id"], chc["id"]]
    assert await ids(active="false") == [closed["id"]]
    assert await ids(name="%") == []  # the pattern characters are matched literally


async def test_list_filter_with_an_unknown_kind_is_422(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.get(ORGS, params={"kind": "clinic"}, headers=admin)
    _problem(response, 422, "validation_failed", "query.kind", "organization.kind")


async def test_list_paginates_with_total(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    created = [(await _create(client, admin))["id"] for _ in range(5)]
    page = (await client.get(ORGS, params={"limit": 2, "offset": 2}, headers=admin)).json()
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 2)
    assert [o["id"] for o in page["items"]] == created[2:4]


async def test_patch_changes_only_the_given_fields(client: httpx.AsyncClient, admin: dict[str, str],
                                                   clock: SimulatedClock) -> None:
    body = await _create(client, admin, level="二级")
    clock.advance(timedelta(minutes=1))
    response = await client.patch(f"{ORGS}/{body['id']}", json={"level": "三级", "short_name": None},
                                  headers=admin)
    assert response.status_code == 200, response.text
    updated = response.json()
    assert (updated["level"], updated["short_name"], updated["name"]) == ("三级", None, body["name"])
    assert updated["updated_at"] > body["updated_at"]


async def test_patch_repeated_changes_nothing(client: httpx.AsyncClient, admin: dict[str, str],
                                              clock: SimulatedClock) -> None:
    body = await _create(client, admin)
    clock.advance(timedelta(minutes=1))
    response = await client.patch(f"{ORGS}/{body['id']}", json={"name": body["name"]}, headers=admin)
    assert response.json()["updated_at"] == body["updated_at"]


@pytest.mark.parametrize(("payload", "field", "rule"), [
    ({"code": "NEW"}, "code", "extra_forbidden"),
    ({"name": None}, "name", "not_null"),
    ({"kind": "pharmacy"}, "kind", "organization.kind"),
])
async def test_patch_refuses_immutable_null_and_bad_values(client: httpx.AsyncClient, admin: dict[str, str],
                                                           payload: dict[str, Any], field: str, rule: str) -> None:
    body = await _create(client, admin)
    response = await client.patch(f"{ORGS}/{body['id']}", json=payload, headers=admin)
    _problem(response, 422, "validation_failed", field, rule)
    assert (await client.get(f"{ORGS}/{body['id']}", headers=admin)).json() == body


async def test_address_and_booking_phone_are_kept_changed_and_cleared(client: httpx.AsyncClient,
                                                                       admin: dict[str, str]) -> None:
    address = {"address_line": "中山路321号", "address_city": "南京市", "address_district": "鼓楼区",
               "address_state": "江苏省", "postal_code": "210008", "booking_phone": "025-83106666"}
    body = await _create(client, admin, **address)
    assert {k: body[k] for k in address} == address
    response = await client.patch(f"{ORGS}/{body['id']}", json={"booking_phone": None, "postal_code": "210009"},
                                  headers=admin)
    assert response.status_code == 200, response.text
    assert (response.json()["booking_phone"], response.json()["postal_code"]) == (None, "210009")
    assert (await client.get(f"{ORGS}/{body['id']}", headers=admin)).json()["address_line"] == "中山路321号"


@pytest.mark.parametrize(("payload", "field", "rule"), [
    ({"postal_code": "2100"}, "postal_code", "organization.postal_code"),
    ({"booking_phone": "call us"}, "booking_phone", "organization.booking_phone"),
    ({"address_line": ""}, "address_line", "string_too_short"),
])
async def test_bad_address_or_booking_phone_is_422_naming_field_and_rule(
        client: httpx.AsyncClient, admin: dict[str, str], payload: dict[str, Any], field: str, rule: str) -> None:
    body = await _create(client, admin)
    response = await client.patch(f"{ORGS}/{body['id']}", json=payload, headers=admin)
    _problem(response, 422, "validation_failed", field, rule)
    assert (await client.get(f"{ORGS}/{body['id']}", headers=admin)).json() == body


async def test_parent_cycle_is_refused(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    parent = await _create(client, admin)
    campus = await _create(client, admin, parent_id=parent["id"])
    response = await client.patch(f"{ORGS}/{parent['id']}", json={"parent_id": campus["id"]}, headers=admin)
    _problem(response, 422, "validation_failed", "parent_id", "organization.parent_cycle")


async def test_deactivate_ends_today_keeps_the_row_and_a_retry_keeps_the_date(
        client: httpx.AsyncClient, app: FastAPI, admin: dict[str, str], database: Database,
        clock: SimulatedClock) -> None:
    body = await _create(client, admin, active_from="2010-01-01")
    response = await client.post(f"{ORGS}/{body['id']}/deactivate", headers=admin)
    assert response.status_code == 200
    assert response.json()["active_to"] == "2022-06-15"
    clock.advance(timedelta(days=3))
    retry = await client.post(f"{ORGS}/{body['id']}/deactivate", headers=await admin_headers(app))
    assert retry.json()["active_to"] == "2022-06-15"
    assert await count(database, Organization) == 1
    active = (await client.get(ORGS, params={"active": "true"}, headers=await admin_headers(app))).json()
    assert active["total"] == 0


async def test_deactivate_on_a_given_date(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    body = await _create(client, admin, active_from="2010-01-01")
    response = await client.post(f"{ORGS}/{body['id']}/deactivate", json={"active_to": "2022-07-01"},
                                 headers=admin)
    assert response.json()["active_to"] == "2022-07-01"
    # Closing next month: still active today.
    assert (await client.get(ORGS, params={"active": "true"}, headers=admin)).json()["total"] == 1


async def test_organization_admin_may_not_create_organizations(client: httpx.AsyncClient, app: FastAPI,
                                                               database: Database) -> None:
    headers = await headers_for(app, staff(Role.ORGANIZATION_ADMIN, organization_id=1))
    response = await client.post(ORGS, json=organization_payload(), headers=headers)
    _problem(response, 403, "organization_scoped", "organization_id", "registry.organization_scope")
    assert await count(database, Organization) == 0


# --- Departments and practitioners --------------------------------------------------------------------


async def test_departments_are_created_and_listed(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    org = await _create(client, admin)
    url = f"{ORGS}/{org['id']}/departments"
    created = await client.post(url, json=department_payload(local_code="HX", local_name="呼吸内科"),
                                headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["subject_code"] == "03.01"
    listed = (await client.get(url, headers=admin)).json()
    assert [d["local_name"] for d in listed["items"]] == ["呼吸内科"]


@pytest.mark.parametrize(("overrides", "status", "code", "field", "rule"), [
    ({"subject_code": "3.1"}, 422, "validation_failed", "subject_code", "department.subject_code"),
    ({"local_code": "HX"}, 409, "department_exists", "local_code", "department.unique_local_code"),
])
async def test_bad_or_duplicate_department_is_refused(
        client: httpx.AsyncClient, admin: dict[str, str], database: Database, overrides: dict[str, Any],
        status: int, code: str, field: str, rule: str) -> None:
    org = await _create(client, admin)
    url = f"{ORGS}/{org['id']}/departments"
    await client.post(url, json=department_payload(local_code="HX"), headers=admin)
    response = await client.post(url, json=department_payload(**overrides), headers=admin)
    _problem(response, status, code, field, rule)
    assert await count(database, Department) == 1


async def test_organization_admin_writes_own_departments_only(client: httpx.AsyncClient, app: FastAPI,
                                                              admin: dict[str, str], database: Database) -> None:
    own = await _create(client, admin)
    other = await _create(client, admin)
    headers = await headers_for(app, staff(Role.ORGANIZATION_ADMIN, organization_id=own["id"]))
    mine = await client.post(f"{ORGS}/{own['id']}/departments", json=department_payload(), headers=headers)
    assert mine.status_code == 201
    theirs = await client.post(f"{ORGS}/{other['id']}/departments", json=department_payload(), headers=headers)
    assert theirs.status_code == 404
    assert theirs.json()["code"] == "not_found"
    assert await count(database, Department) == 1
    patch = await client.patch(f"{ORGS}/{own['id']}/departments/{mine.json()['id']}",
                               json={"local_name": "呼吸与危重症医学科"}, headers=headers)
    assert patch.json()["local_name"] == "呼吸与危重症医学科"


async def test_organization_bound_client_writes_own_practitioners_only(
        client: httpx.AsyncClient, app: FastAPI, admin: dict[str, str], database: Database) -> None:
    own = await _create(client, admin)
    other = await _create(client, admin)
    his = await headers_for(app, machine(Scope.REGISTRY_READ, Scope.REGISTRY_WRITE, organization_id=own["id"]))
    assert (await client.post(f"{ORGS}/{own['id']}/practitioners", json=practitioner_payload(),
                              headers=his)).status_code == 201
    refused = await client.post(f"{ORGS}/{other['id']}/practitioners", json=practitioner_payload(), headers=his)
    assert refused.status_code == 404
    assert await count(database, Practitioner) == 1


async def test_practitioner_in_another_organizations_department_is_refused(
        client: httpx.AsyncClient, admin: dict[str, str], database: Database) -> None:
    first = await _create(client, admin)
    second = await _create(client, admin)
    department = (await client.post(f"{ORGS}/{second['id']}/departments", json=department_payload(),
                                    headers=admin)).json()
    response = await client.post(f"{ORGS}/{first['id']}/practitioners",
                                 json=practitioner_payload(department_id=department["id"]), headers=admin)
    _problem(response, 422, "validation_failed", "department_id", "practitioner.department")
    assert await count(database, Practitioner) == 0


async def test_practitioners_are_listed_by_department_and_deactivated(client: httpx.AsyncClient,
                                                                      admin: dict[str, str]) -> None:
    org = await _create(client, admin)
    base = f"{ORGS}/{org['id']}"
    department = (await client.post(f"{base}/departments", json=department_payload(), headers=admin)).json()
    doctor = (await client.post(f"{base}/practitioners", json=practitioner_payload(department_id=department["id"]),
                                headers=admin)).json()
    await client.post(f"{base}/practitioners", json=practitioner_payload(), headers=admin)
    in_department = (await client.get(f"{base}/practitioners", params={"department_id": department["id"]},
                                      headers=admin)).json()
    assert [p["id"] for p in in_department["items"]] == [doctor["id"]]
    gone = await client.post(f"{base}/practitioners/{doctor['id']}/deactivate", headers=admin)
    assert gone.json()["is_active"] is False
    active = (await client.get(f"{base}/practitioners", params={"active": "true"}, headers=admin)).json()
    assert doctor["id"] not in [p["id"] for p in active["items"]]
    assert (await client.get(f"{base}/practitioners/{doctor['id']}", headers=admin)).status_code == 200


async def test_duplicate_staff_code_is_409(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    org = await _create(client, admin)
    url = f"{ORGS}/{org['id']}/practitioners"
    await client.post(url, json=practitioner_payload(staff_code="S1"), headers=admin)
    response = await client.post(url, json=practitioner_payload(staff_code="S1"), headers=admin)
    _problem(response, 409, "practitioner_exists", "staff_code", "practitioner.unique_staff_code")


async def test_department_of_another_organization_is_not_found(client: httpx.AsyncClient,
                                                               admin: dict[str, str]) -> None:
    first = await _create(client, admin)
    second = await _create(client, admin)
    department = (await client.post(f"{ORGS}/{first['id']}/departments", json=department_payload(),
                                    headers=admin)).json()
    response = await client.get(f"{ORGS}/{second['id']}/departments/{department['id']}", headers=admin)
    assert response.status_code == 404


# --- Client applications ------------------------------------------------------------------------------


async def test_client_app_is_registered_listed_and_deactivated(client: httpx.AsyncClient, admin: dict[str, str],
                                                               database: Database) -> None:
    created = await client.post(APPS, json=client_app_payload(code="jiuyi-160", name="就医 160"), headers=admin)
    assert created.status_code == 201, created.text
    await client.post(APPS, json=client_app_payload(channel="online_12320"), headers=admin)
    third_party = (await client.get(APPS, params={"channel": "third_party"}, headers=admin)).json()
    assert [a["code"] for a in third_party["items"]] == ["jiuyi-160"]
    gone = await client.post(f"{APPS}/{created.json()['id']}/deactivate", headers=admin)
    assert gone.json()["is_active"] is False
    assert await count(database, ClientApp) == 2


@pytest.mark.parametrize(("overrides", "status", "code", "field", "rule"), [
    ({"channel": "fax"}, 422, "validation_failed", "channel", "client_app.channel"),
    ({"code": "Bad Code"}, 422, "validation_failed", "code", "client_app.code"),
    ({"organization_id": 999}, 422, "validation_failed", "organization_id", "organization.unknown"),
    ({"code": "taken"}, 409, "client_app_exists", "code", "client_app.unique_code"),
    ({"name": "已有应用"}, 409, "client_app_exists", "name", "client_app.unique_name"),
])
async def test_bad_or_duplicate_client_app_is_refused(
        client: httpx.AsyncClient, admin: dict[str, str], database: Database, overrides: dict[str, Any],
        status: int, code: str, field: str, rule: str) -> None:
    await client.post(APPS, json=client_app_payload(code="taken", name="已有应用"), headers=admin)
    response = await client.post(APPS, json=client_app_payload(**overrides), headers=admin)
    _problem(response, status, code, field, rule)
    assert await count(database, ClientApp) == 1


async def test_client_app_rename_to_a_taken_name_is_409(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await client.post(APPS, json=client_app_payload(name="甲"), headers=admin)
    second = (await client.post(APPS, json=client_app_payload(name="乙"), headers=admin)).json()
    response = await client.patch(f"{APPS}/{second['id']}", json={"name": "甲"}, headers=admin)
    _problem(response, 409, "client_app_exists", "name", "client_app.unique_name")


async def test_registry_reads_are_open_to_readers_not_to_residents(client: httpx.AsyncClient, app: FastAPI,
                                                                   admin: dict[str, str]) -> None:
    org = await _create(client, admin)
    doctor = await headers_for(app, staff(Role.READING_CENTRE_DOCTOR))
    assert (await client.get(f"{ORGS}/{org['id']}", headers=doctor)).status_code == 200
    assert (await client.post(f"{ORGS}/{org['id']}/deactivate", headers=doctor)).status_code == 403
    assert date.fromisoformat(org["active_from"]) == date(2022, 6, 15)
