"""Networks and members: joining (idempotent), leaving, cities across borders, designations, coverage."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.telemed.support import API, admin, centre, ensure_areas, join, organization, requester


async def test_the_five_networks_are_listed_with_their_targets(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/networks", headers=await admin(app))
    assert response.status_code == 200
    networks = {n["code"]: n for n in response.json()}
    assert set(networks) == {"teleconsultation", "ecg", "lab", "imaging", "pathology"}
    assert networks["lab"]["case_types"] == ["lab_report", "lab_specimen"]
    assert [t["priority"] for t in networks["ecg"]["targets"]] == ["stat", "asap", "urgent", "routine"]


async def test_a_join_sent_twice_is_one_membership_and_takes_its_city_from_the_organization(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await ensure_areas(app)
    organization_id = await organization(app, "320106")
    body = {"organization_id": organization_id, "kind": "tertiary", "role": "both", "joined_on": "2022-01-01"}
    headers = await admin(app)
    first = await client.post(f"{API}/networks/ecg/members", json=body, headers=headers)
    again = await client.post(f"{API}/networks/ecg/members", json=body, headers=headers)
    assert first.status_code == again.status_code == 200, first.text
    assert first.json() == again.json()
    assert (first.json()["city_code"], first.json()["area_code"]) == ("320100", "320106")
    changed = await client.post(f"{API}/networks/ecg/members", json=body | {"role": "requester"}, headers=headers)
    assert changed.status_code == 409
    assert changed.json()["rule"] == "telemed.member.same_join"
    later = await client.post(f"{API}/networks/ecg/members", json=body | {"joined_on": "2022-03-01"}, headers=headers)
    assert later.status_code == 409
    assert later.json()["rule"] == "telemed.member.one_at_a_time"


async def test_a_member_across_the_city_border_keeps_its_own_city(app: FastAPI, client: httpx.AsyncClient) -> None:
    maanshan = await organization(app, "340500")
    member_id = await join(app, maanshan, "requester", kind="metro_city")
    listed = (await client.get(f"{API}/networks/ecg/members", headers=await admin(app))).json()
    assert [(m["id"], m["city_code"], m["area_code"], m["kind"]) for m in listed] == [
        (member_id, "340500", None, "metro_city")
    ]


async def test_an_unknown_organization_or_an_area_outside_the_city_is_refused_naming_the_field(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await ensure_areas(app)
    headers = await admin(app)
    unknown = await client.post(
        f"{API}/networks/ecg/members",
        headers=headers,
        json={"organization_id": 99999, "kind": "aid", "role": "requester", "joined_on": "2022-01-01"},
    )
    assert unknown.status_code == 422
    assert (unknown.json()["field"], unknown.json()["value"]) == ("organization_id", 99999)
    organization_id = await organization(app, "320106")
    elsewhere = await client.post(
        f"{API}/networks/ecg/members",
        headers=headers,
        json={
            "organization_id": organization_id,
            "kind": "aid",
            "role": "requester",
            "joined_on": "2022-01-01",
            "city_code": "340500",
        },
    )
    assert elsewhere.status_code == 422
    assert elsewhere.json()["rule"] == "telemed.member.area_in_city"


async def test_coverage_is_counted_from_the_members_on_the_day(app: FastAPI, client: httpx.AsyncClient) -> None:
    xuanwu = await requester(app, area_code="320102")
    await centre(app, area_code="320106")
    await requester(app, area_code="340500")  # Ma'anshan: no Nanjing district gains coverage
    headers = await admin(app)
    seen = (await client.get(f"{API}/networks/ecg/coverage", params={"city": "320100"}, headers=headers)).json()
    covered = {a["code"]: a["covered"] for a in seen["areas"]}
    assert covered == {"320102": True, "320106": True, "320111": False, "3201JB": False}
    assert (seen["covered"], seen["not_covered"]) == (2, 2)
    left = await client.post(f"{API}/members/{xuanwu.member_id}/leave", json={"left_on": "2022-06-01"}, headers=headers)
    assert left.status_code == 200
    before = (await client.get(f"{API}/networks/ecg/coverage", params={"on": "2022-05-31"}, headers=headers)).json()
    after = (await client.get(f"{API}/networks/ecg/coverage", params={"on": "2022-06-01"}, headers=headers)).json()
    assert [a["covered"] for a in before["areas"] if a["code"] == "320102"] == [True]
    assert [a["covered"] for a in after["areas"] if a["code"] == "320102"] == [False]
    other = (await client.get(f"{API}/networks/lab/coverage", headers=headers)).json()
    assert other["covered"] == 0


async def test_a_requester_designates_only_reading_centres_of_its_own_network(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    side = await requester(app)
    reader = await centre(app)
    lab_centre = await centre(app, network="lab")
    headers = await admin(app)
    wrong = await client.put(
        f"{API}/members/{side.member_id}/designations",
        json={"centre_member_ids": [lab_centre.member_id]},
        headers=headers,
    )
    assert wrong.status_code == 422
    assert (wrong.json()["field"], wrong.json()["value"]) == ("centre_member_ids", lab_centre.member_id)
    right = await client.put(
        f"{API}/members/{side.member_id}/designations", json={"centre_member_ids": [reader.member_id]}, headers=headers
    )
    assert right.status_code == 200
    assert right.json()["designated_centre_ids"] == [reader.member_id]


async def test_members_are_managed_by_administrators_only(app: FastAPI, client: httpx.AsyncClient) -> None:
    side = await requester(app)
    refused = await client.post(
        f"{API}/members/{side.member_id}/leave", json={"left_on": "2022-06-01"}, headers=side.headers
    )
    assert refused.status_code == 403


async def test_a_centre_reading_a_case_type_its_network_does_not_carry_is_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    organization_id = await organization(app, "320106")
    refused = await client.post(
        f"{API}/networks/ecg/members",
        headers=await admin(app),
        json={
            "organization_id": organization_id,
            "kind": "tertiary",
            "role": "reading_centre",
            "joined_on": "2022-01-01",
            "reads_case_types": ["pathology_case"],
        },
    )
    assert (refused.status_code, refused.json()["field"], refused.json()["value"]) == (
        422,
        "reads_case_types",
        "pathology_case",
    )
