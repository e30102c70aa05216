"""Patient linkage as records arrive: the ID number's keyed hash links, and what it cannot link is kept and
reported; the records of a linked patient follow into the resident's index, whatever order they came in."""

from __future__ import annotations

from sqlalchemy import select

from cityhealth.collection.models import Record
from cityhealth.records.models import LinkCursor, PatientLink
from tests.records.support import GULOU, LINKAGE, City, master, residents_of_timeline, timeline_rows, visit


async def test_a_valid_id_number_links_the_patient_to_its_resident(city: City) -> None:
    who = await city.registered(3)
    counts = await city.link()
    found = await city.link_of("P001")
    assert found is not None
    assert (found.status, found.resident_id, found.method, found.reason) == ("linked", who.resident_id, "id_number",
                                                                             None)
    assert (counts.read, counts.linked) == (1, 1)
    assert await city.events_of("P001") == [
        ("linked", None, who.resident_id, "id_number", "records-linker")]


async def test_the_visit_and_its_diagnosis_enter_the_residents_index(city: City) -> None:
    who = await city.registered(3)
    await city.visited()
    await city.diagnosed()
    await city.link()
    rows = {row[2]: row for row in await timeline_rows(city.database)}
    assert set(rows) == {"v-1", "d-1"}
    assert rows["d-1"][4:9] == ("diagnosis", "visit", "V9", "P001", who.resident_id)
    assert rows["d-1"][10]["diagnosis_code"] == "I10"


async def test_a_diagnosis_that_arrives_before_its_visit_is_adopted_when_the_visit_arrives(city: City) -> None:
    who = await city.person(3)
    await city.diagnosed()
    await city.link()
    assert await residents_of_timeline(city.database) == {"d-1": None}
    await city.register(who)
    await city.visited()
    await city.link()
    assert await residents_of_timeline(city.database) == {"d-1": who.resident_id, "v-1": who.resident_id}


async def test_records_indexed_before_their_patient_is_linked_follow_the_link(city: City) -> None:
    who = await city.person(3)
    await city.visited()
    await city.link()
    await city.register(who)
    await city.link()
    assert await residents_of_timeline(city.database) == {"v-1": who.resident_id}


async def test_an_id_number_the_index_does_not_know_is_kept_unlinked_and_reported(city: City) -> None:
    await city.upload("patient_master_index",
                      [master(GULOU, "m-1", city.hours_ago(3), "P001")])  # make_record's own valid number
    await city.visited()
    counts = await city.link()
    found = await city.link_of("P001")
    assert found is not None
    assert (found.status, found.resident_id, found.reason) == ("unlinked", None, "id_number.not_in_index")
    assert counts.unlinked == 1
    assert await residents_of_timeline(city.database) == {"v-1": None}  # kept, tied to no one
    response = await city.client.get(f"{LINKAGE}/identities", params={"status": "unlinked"},
                                     headers=await city.operator())
    assert response.status_code == 200, response.text
    assert [(row["patient_key"], row["reason"]) for row in response.json()] == [("P001", "id_number.not_in_index")]


async def test_an_id_number_under_another_surname_is_a_conflict_kept_not_linked(city: City) -> None:
    await city.registered(3, name="李四")
    await city.link()
    found = await city.link_of("P001")
    assert found is not None
    assert (found.status, found.resident_id, found.reason) == ("unlinked", None, "id_number.conflict")
    async with city.database.transaction() as session:
        stored = await session.scalar(select(Record).where(Record.record_id == "m-1"))
    assert stored is not None
    assert stored.version == 1


async def test_the_link_table_holds_no_id_or_phone_number(city: City) -> None:
    who = await city.registered(3)
    await city.link()
    text = repr(await timeline_rows(city.database)) + repr(await city.events_of("P001"))
    async with city.database.transaction() as session:
        text += repr([vars(row) for row in (await session.scalars(select(PatientLink))).all()])
    assert who.id_number not in text
    assert "13812345678" not in text


async def test_an_amended_master_record_relinks_and_the_history_keeps_both(city: City) -> None:
    first = await city.person(3)
    second = await city.person(5)
    await city.register(first)
    await city.visited()
    await city.link()
    await city.register(second, action=2)
    await city.link()
    assert await residents_of_timeline(city.database) == {"v-1": second.resident_id}
    assert [event[:3] for event in await city.events_of("P001")] == [
        ("linked", None, first.resident_id), ("linked", first.resident_id, second.resident_id)]


async def test_a_revoked_record_leaves_the_index(city: City) -> None:
    await city.visited()
    await city.link()
    await city.visited(action=3)
    await city.link()
    assert await timeline_rows(city.database) == []


async def test_running_the_linker_again_changes_nothing(city: City) -> None:
    await city.registered(3)
    await city.visited()
    await city.link()
    before = (await timeline_rows(city.database), await city.events_of("P001"))
    again = await city.link()
    assert (again.indexed, again.linked) == (0, 0)  # re-read within the lag, nothing new
    assert (await timeline_rows(city.database), await city.events_of("P001")) == before


async def test_the_linker_pages_through_the_records_and_keeps_its_cursor(city: City) -> None:
    await city.upload("outpatient_visit",
                      [visit(GULOU, f"v-{n}", city.hours_ago(2), f"P{n}", f"V{n}") for n in range(5)])
    counts = await city.link(page=2)
    assert (counts.read, counts.indexed) == (5, 5)
    async with city.database.transaction() as session:
        cursor = await session.get(LinkCursor, "timeline")
    assert cursor is not None
    assert cursor.record_id == "v-4"


async def test_rebuild_fills_the_same_index_from_the_stored_records(city: City) -> None:
    await city.registered(3)
    await city.visited()
    await city.diagnosed()
    await city.link()
    before = await timeline_rows(city.database)
    rebuilt = await city.link(rebuild=True)
    assert rebuilt.indexed == 2
    assert await timeline_rows(city.database) == before
