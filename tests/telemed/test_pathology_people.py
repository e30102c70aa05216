"""The pathology network's experts and doctors: registered only for members in a fitting role, once per key,
by an administrator or their own organization; deactivated once."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI

from tests.telemed.pathology_support import PATHOLOGY, network, person, problem
from tests.telemed.support import organization, requester


async def test_the_same_registration_twice_is_one_person(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    body = {"key": "E-001", "kind": "expert", "organization_id": net.centre.organization_id, "name": "李教授"}
    first = await client.post(f"{PATHOLOGY}/people", json=body, headers=net.admin)
    again = await client.post(f"{PATHOLOGY}/people", json=body, headers=net.admin)
    assert first.status_code == again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["active"] is True
    listed = await client.get(f"{PATHOLOGY}/people", params={"kind": "expert"}, headers=net.admin)
    assert [p["key"] for p in listed.json()] == ["E-001"]


async def test_the_same_key_with_other_details_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    body = {"key": "E-002", "kind": "expert", "organization_id": net.centre.organization_id, "name": "李教授"}
    assert (await client.post(f"{PATHOLOGY}/people", json=body, headers=net.admin)).status_code == 200
    changed = await client.post(f"{PATHOLOGY}/people", json=body | {"name": "张教授"}, headers=net.admin)
    assert problem(changed) == (409, "key", "E-002", "telemed.pathology.person.same_key")


async def test_an_expert_of_an_organization_outside_the_network_is_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    net = await network(app)
    outsider = await organization(app, "320111")
    ecg_member = await requester(app, network="ecg")  # a member, but of another network
    for organization_id in (outsider, ecg_member.organization_id):
        refused = await client.post(
            f"{PATHOLOGY}/people",
            json={"key": "E-9", "kind": "expert", "organization_id": organization_id, "name": "赵医生"},
            headers=net.admin,
        )
        assert problem(refused) == (422, "organization_id", organization_id, "telemed.pathology.person_member")


async def test_a_person_must_fit_the_role_of_the_membership(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    expert_at_hospital = await client.post(
        f"{PATHOLOGY}/people",
        json={"key": "X-1", "kind": "expert", "organization_id": net.hospital.organization_id, "name": "甲"},
        headers=net.admin,
    )
    doctor_at_centre = await client.post(
        f"{PATHOLOGY}/people",
        json={"key": "X-2", "kind": "doctor", "organization_id": net.centre.organization_id, "name": "乙"},
        headers=net.admin,
    )
    assert problem(expert_at_hospital) == (422, "kind", "expert", "telemed.pathology.person_role")
    assert problem(doctor_at_centre) == (422, "kind", "doctor", "telemed.pathology.person_role")


async def test_a_member_registers_only_its_own_people(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    own = await person(client, net.hospital.headers, net.hospital.organization_id, "doctor")
    assert own["organization_id"] == net.hospital.organization_id
    refused = await client.post(
        f"{PATHOLOGY}/people",
        json={"key": "E-3", "kind": "expert", "organization_id": net.centre.organization_id, "name": "李教授"},
        headers=net.hospital.headers,
    )
    assert problem(refused) == (
        403,
        "organization_id",
        net.centre.organization_id,
        "telemed.pathology.own_organization",
    )


async def test_deactivation_is_kept_and_idempotent(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    expert = await person(client, net.admin, net.centre.organization_id, "expert")
    url = f"{PATHOLOGY}/people/{expert['id']}/deactivate"
    first = await client.post(url, json={"reason": "退休"}, headers=net.admin)
    app.state.clock.advance(timedelta(minutes=1))  # a repeat later must not move the deactivation time
    again = await client.post(url, json={}, headers=net.admin)
    assert first.status_code == again.status_code == 200
    assert first.json()["active"] is False
    assert again.json()["deactivated_at"] == first.json()["deactivated_at"]
    active = await client.get(f"{PATHOLOGY}/people", params={"kind": "expert"}, headers=net.admin)
    gone = await client.get(f"{PATHOLOGY}/people", params={"kind": "expert", "active": False}, headers=net.admin)
    assert active.json() == []
    assert [p["id"] for p in gone.json()] == [expert["id"]]


async def test_another_organization_cannot_deactivate_a_person(app: FastAPI, client: httpx.AsyncClient) -> None:
    net = await network(app)
    expert = await person(client, net.admin, net.centre.organization_id, "expert")
    refused = await client.post(f"{PATHOLOGY}/people/{expert['id']}/deactivate", json={}, headers=net.hospital.headers)
    assert problem(refused) == (404, "person_id", expert["id"], "telemed.pathology.person")
