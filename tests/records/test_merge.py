"""An operator's merge and unmerge of patient identities: the records follow, the history keeps every step, an
unmerge that would leave records belonging to no one is refused, and automation never undoes the operator."""

from __future__ import annotations

from tests.factories.registry import audit_events
from tests.records.support import LINKAGE, City, residents_of_timeline


async def _linked_with_a_visit(city: City) -> tuple[int, int]:
    first = await city.person(3)
    second = await city.person(5)
    await city.register(first)
    await city.visited()
    await city.link()
    return first.resident_id, second.resident_id


async def test_merge_moves_the_identity_and_its_records_and_is_audited(city: City) -> None:
    first, second = await _linked_with_a_visit(city)
    response = await city.client.post(f"{LINKAGE}/merge", headers=await city.operator(), json={
        "organization_id": city.world.hospital_id, "patient_key": "P001", "resident_id": second, "note": "ticket 7"})
    assert response.status_code == 200, response.text
    assert await residents_of_timeline(city.database) == {"v-1": second}
    assert (await city.events_of("P001"))[-1] == (
        "merged", first, second, "operator", "staff:42")
    events = await audit_events(city.database, resource_type="records_link", action="update")
    assert sorted((e.resource_id, e.resident_id) for e in events) == sorted(
        [(f"{city.world.hospital_id}/P001", first), (f"{city.world.hospital_id}/P001", second)])


async def test_the_linker_never_undoes_an_operators_merge(city: City) -> None:
    _, second = await _linked_with_a_visit(city)
    await city.client.post(f"{LINKAGE}/merge", headers=await city.operator(), json={
        "organization_id": city.world.hospital_id, "patient_key": "P001", "resident_id": second, "note": "ticket 7"})
    await city.link(rebuild=True)
    found = await city.link_of("P001")
    assert found is not None
    assert (found.resident_id, found.method) == (second, "operator")
    assert await residents_of_timeline(city.database) == {"v-1": second}


async def test_an_unmerge_that_would_orphan_records_is_refused_and_changes_nothing(city: City) -> None:
    first, _ = await _linked_with_a_visit(city)
    events = await city.events_of("P001")
    response = await city.client.post(f"{LINKAGE}/unmerge", headers=await city.operator(), json={
        "organization_id": city.world.hospital_id, "patient_key": "P001", "note": "wrong person"})
    assert response.status_code == 409, response.text
    body = response.json()
    assert (body["code"], body["field"], body["rule"]) == ("unmerge_orphans_records", "to_resident_id",
                                                           "unmerge.orphans")
    assert "1 records" in body["detail"]
    assert await residents_of_timeline(city.database) == {"v-1": first}
    assert await city.events_of("P001") == events


async def test_an_unmerge_onto_another_resident_moves_the_records_and_keeps_the_history(city: City) -> None:
    first, second = await _linked_with_a_visit(city)
    response = await city.client.post(f"{LINKAGE}/unmerge", headers=await city.operator(), json={
        "organization_id": city.world.hospital_id, "patient_key": "P001", "to_resident_id": second, "note": "mix-up"})
    assert response.status_code == 200, response.text
    assert await residents_of_timeline(city.database) == {"v-1": second}
    history = await city.client.get(f"{LINKAGE}/identities/{city.world.hospital_id}/P001",
                                    headers=await city.operator())
    assert [(e["kind"], e["from_resident_id"], e["to_resident_id"]) for e in history.json()["events"]] == [
        ("linked", None, first), ("unmerged", first, second)]


async def test_an_identity_without_records_may_be_unmerged_onto_no_one(city: City) -> None:
    await city.registered(3)
    await city.link()
    response = await city.client.post(f"{LINKAGE}/unmerge", headers=await city.operator(), json={
        "organization_id": city.world.hospital_id, "patient_key": "P001", "note": "registered by mistake"})
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["reason"]) == ("unlinked", "operator.unmerged")


async def test_merge_onto_a_resident_who_does_not_exist_is_not_found(city: City) -> None:
    await _linked_with_a_visit(city)
    response = await city.client.post(f"{LINKAGE}/merge", headers=await city.operator(), json={
        "organization_id": city.world.hospital_id, "patient_key": "P001", "resident_id": 9999, "note": "x"})
    assert response.status_code == 404, response.text
    assert (response.json()["code"], response.json()["field"]) == ("resident_not_found", "resident_id")


async def test_merge_of_an_unknown_identity_is_not_found(city: City) -> None:
    response = await city.client.post(f"{LINKAGE}/merge", headers=await city.operator(), json={
        "organization_id": city.world.hospital_id, "patient_key": "NOPE", "resident_id": 1, "note": "x"})
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "patient_identity_not_found"
