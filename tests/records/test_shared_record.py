"""The shared record as a clinician opens it: the first page (masked identity, health flags), the encounters of
every hospital newest first and paged, and the public-health record — all from the index, linked by the linker."""

from __future__ import annotations

from cityhealth.registry.identifiers import mask_resident_id
from tests.factories.collection import add_organization, make_record
from tests.records.support import CHILD, GULOU, RECORDS, City, master, visit


async def _consented(city: City, resident_id: int) -> None:
    """The resident's consent to the world's hospital, for a week."""
    response = await city.client.post(f"{RECORDS}/me/consents", headers=await city.resident_headers(resident_id),
                                      json={"organization_id": city.world.hospital_id, "days": 7})
    assert response.status_code == 201, response.text


async def test_the_timeline_joins_every_hospital_newest_first(city: City) -> None:
    who = await city.registered(3, hours=100, patient_id="G-7")
    await city.upload("patient_master_index", [master(CHILD, "m-1", city.hours_ago(100), "C-3", who)],
                      city.world.other_hospital_id)
    await city.visited(hours=50, patient_id="G-7", visit_no="V1")
    await city.upload("outpatient_visit", [visit(CHILD, "v-1", city.hours_ago(30), "C-3", "V1")],
                      city.world.other_hospital_id)
    await city.diagnosed(hours=49, visit_no="V1")
    await city.link()
    await _consented(city, who.resident_id)
    response = await city.client.get(f"{RECORDS}/residents/{who.resident_id}", headers=await city.clinician())
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(item["organization_name"], item["category"]) for item in body["timeline"]] == [
        ("南京市儿童医院", "visit"), ("南京鼓楼医院", "diagnosis"), ("南京鼓楼医院", "visit")]
    assert body["linked_identities"] == 2
    assert body["resident"]["id_number_masked"] == mask_resident_id(who.id_number)
    assert body["flags"]["hypertension"] is True  # the I10 diagnosis
    assert who.id_number not in response.text


async def test_the_timeline_is_paged_with_the_token_it_gives(city: City) -> None:
    who = await city.registered(3, hours=100, patient_id="G-7")
    await city.upload("outpatient_visit",
                      [visit(GULOU, f"v-{n}", city.hours_ago(10 + n), "G-7", f"V{n}") for n in range(5)])
    await city.link()
    await _consented(city, who.resident_id)
    headers = await city.clinician()
    seen: list[str] = []
    before = None
    while True:
        params = {"limit": 2} | ({"before": before} if before else {})
        page = (await city.client.get(f"{RECORDS}/residents/{who.resident_id}", headers=headers, params=params)).json()
        seen += [item["record_id"] for item in page["timeline"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == ["v-0", "v-1", "v-2", "v-3", "v-4"]


async def test_a_broken_page_token_is_malformed(city: City) -> None:
    who = await city.person(3)
    await _consented(city, who.resident_id)
    response = await city.client.get(f"{RECORDS}/residents/{who.resident_id}", params={"before": "not-a-token"},
                                     headers=await city.clinician())
    assert response.status_code == 422, response.text
    assert (response.json()["field"], response.json()["rule"]) == ("before", "page.cursor")


async def test_the_public_health_record_and_its_follow_ups_link_through_the_health_record_number(city: City) -> None:
    who = await city.person(3)
    district = await add_organization(city.database, city.clock, "D320115", kind="district_platform",
                                      area_code="320115")
    number = "32011500100100042"
    await city.upload("health_record", [make_record(
        "health_record", "D320115", "hr-1", city.hours_ago(400), record_no=number, name=who.name,
        id_number=who.id_number, sex_code=str(who.sex), sex_name="男" if who.sex == 1 else "女",
        birth_date=who.birth)], district.id)
    await city.upload("hypertension_followup", [make_record(
        "hypertension_followup", "D320115", "f-1", city.hours_ago(48), health_record_no=number, sbp=150, dbp=95,
        classification_code="2", classification_name="控制不满意")], district.id)
    await city.link()
    await _consented(city, who.resident_id)
    body = (await city.client.get(f"{RECORDS}/residents/{who.resident_id}", headers=await city.clinician())).json()
    assert [item["category"] for item in body["public_health"]] == ["hypertension_followup", "health_record"]
    assert body["flags"]["hypertension"] is True
    assert body["flags"]["last_blood_pressure"] == "150/95"
    assert body["timeline"] == []


async def test_the_blood_group_comes_from_the_latest_discharge(city: City) -> None:
    who = await city.registered(3, hours=201, patient_id="G-7")  # an hour before the admission
    admitted = city.hours_ago(200)
    await city.upload("admission", [make_record(
        "admission", GULOU, "a-1", admitted, patient_id="G-7", admission_no="A1")])
    await city.upload("discharge", [make_record(
        "discharge", GULOU, "x-1", city.hours_ago(100), admission_no="A1",
        admission_time=make_record("admission", GULOU, "a-1", admitted)["admission_time"])])
    await city.link()
    await _consented(city, who.resident_id)
    body = (await city.client.get(f"{RECORDS}/residents/{who.resident_id}", headers=await city.clinician())).json()
    assert body["flags"]["blood_group"] == "A 阳性"
    assert [item["category"] for item in body["timeline"]] == ["discharge", "admission"]
