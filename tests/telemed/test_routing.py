"""Routing: the requester's designated centre first, then the least loaded; modality and type; a rejection
re-routes the case (never back to a centre that rejected it), and a case no centre may take is rejected."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from cityhealth.telemed.routing import Centre, choose, reads
from tests.telemed.support import API, CASES, admin, case_body, centre, designate, requester, step, submit


async def test_a_case_goes_to_the_least_loaded_centre(app: FastAPI, client: httpx.AsyncClient) -> None:
    side = await requester(app)
    first = await centre(app)
    second = await centre(app)
    routed = [(await submit(client, side))["centre_member_id"] for _ in range(4)]
    assert routed == [first.member_id, second.member_id, first.member_id, second.member_id]


async def test_the_designated_centre_is_chosen_whatever_its_load(app: FastAPI, client: httpx.AsyncClient) -> None:
    side = await requester(app)
    await centre(app)
    designated = await centre(app)
    await designate(app, side.member_id, designated.member_id)
    routed = {(await submit(client, side))["centre_member_id"] for _ in range(3)}
    assert routed == {designated.member_id}


async def test_a_centre_that_does_not_read_the_modality_is_passed_over(app: FastAPI, client: httpx.AsyncClient) -> None:
    side = await requester(app, network="imaging")
    ct_only = await centre(app, network="imaging", reads_modalities=["CT"])
    everything = await centre(app, network="imaging")
    await designate(app, side.member_id, ct_only.member_id)
    mr = await submit(client, side, network_code="imaging", case_type="imaging_study", modality="mr")
    ct = await submit(client, side, network_code="imaging", case_type="imaging_study", modality="CT")
    assert (mr["centre_member_id"], mr["modality"]) == (everything.member_id, "MR")
    assert ct["centre_member_id"] == ct_only.member_id


async def test_a_case_no_centre_reads_is_refused_and_nothing_is_kept(app: FastAPI, client: httpx.AsyncClient) -> None:
    side = await requester(app, network="imaging")
    await centre(app, network="imaging", reads_modalities=["CT"])
    refused = await client.post(
        CASES, json=case_body(network_code="imaging", case_type="imaging_study", modality="US"), headers=side.headers
    )
    assert refused.status_code == 409
    assert (refused.json()["code"], refused.json()["field"], refused.json()["value"]) == (
        "no_reading_centre",
        "modality",
        "US",
    )
    assert (await client.get(CASES, headers=side.headers)).json() == []


async def test_a_case_type_its_network_does_not_carry_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    side = await requester(app)
    await centre(app)
    refused = await client.post(CASES, json=case_body(case_type="pathology_case"), headers=side.headers)
    assert (refused.status_code, refused.json()["field"], refused.json()["rule"]) == (
        422,
        "case_type",
        "telemed.case.type_of_network",
    )


async def test_a_rejected_case_is_rerouted_and_leaves_the_rejecting_centre(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    side = await requester(app)
    first = await centre(app)
    second = await centre(app)
    await designate(app, side.member_id, first.member_id)
    case_id = (await submit(client, side))["id"]
    rejected = await step(client, first.headers, case_id, "reject", reason="导联脱落", request_key="rej-1")
    assert rejected.status_code == 200, rejected.text
    again = await step(client, first.headers, case_id, "reject", reason="导联脱落", request_key="rej-1")
    assert again.status_code == 200  # a retry of the same rejection
    assert (await client.get(f"{CASES}/{case_id}", headers=first.headers)).status_code == 404
    moved = (await client.get(f"{CASES}/{case_id}", headers=second.headers)).json()
    assert (moved["status"], moved["business_status"], moved["centre_member_id"]) == (
        "requested",
        "rerouted",
        second.member_id,
    )
    assert [e["kind"] for e in moved["events"]] == ["submitted", "routed", "rejected", "routed"]
    last = await step(client, second.headers, case_id, "reject", reason="非本中心业务")
    assert last.status_code == 200
    seen = (await client.get(f"{CASES}/{case_id}", headers=side.headers)).json()
    assert (seen["status"], seen["business_status"], seen["centre_member_id"]) == (
        "rejected",
        "no-centre-available",
        None,
    )


async def test_a_centre_that_left_the_network_receives_no_case(app: FastAPI, client: httpx.AsyncClient) -> None:
    side = await requester(app)
    gone = await centre(app)
    staying = await centre(app)
    left = await client.post(
        f"{API}/members/{gone.member_id}/leave", json={"left_on": "2022-06-01"}, headers=await admin(app)
    )
    assert left.status_code == 200
    assert {(await submit(client, side))["centre_member_id"] for _ in range(2)} == {staying.member_id}


_centres = st.lists(
    st.builds(
        Centre,
        member_id=st.integers(1, 30),
        organization_id=st.integers(1, 6),
        reads_case_types=st.none() | st.lists(st.sampled_from(["ecg", "imaging_study"]), max_size=2),
        reads_modalities=st.none() | st.lists(st.sampled_from(["CT", "MR"]), max_size=2),
        open_cases=st.integers(0, 5),
    ),
    max_size=8,
    unique_by=lambda c: c.member_id,
)


@given(
    centres=_centres,
    requester_organization=st.integers(1, 6),
    designated=st.dictionaries(st.integers(1, 30), st.integers(0, 5), max_size=4),
    excluded=st.sets(st.integers(1, 30), max_size=4),
    modality=st.none() | st.sampled_from(["CT", "MR"]),
)
def test_the_chosen_centre_obeys_every_rule(
    centres: list[Centre],
    requester_organization: int,
    designated: dict[int, int],
    excluded: set[int],
    modality: str | None,
) -> None:
    chosen = choose(
        centres,
        case_type="imaging_study",
        modality=modality,
        requester_organization_id=requester_organization,
        designated=designated,
        excluded=excluded,
    )
    eligible = [
        c
        for c in centres
        if c.organization_id != requester_organization
        and c.member_id not in excluded
        and reads(c, "imaging_study", modality)
    ]
    if not eligible:
        assert chosen is None
        return
    assert chosen in eligible
    preferred = [c for c in eligible if c.member_id in designated]
    if preferred:
        assert designated[chosen.member_id] == min(designated[c.member_id] for c in preferred)
    else:
        assert chosen.open_cases == min(c.open_cases for c in eligible)
