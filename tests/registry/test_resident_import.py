"""The residents import, a batch at a time: new, changed and unchanged rows together; every bad row named (row,
field, rule) and nothing written if there is one; duplicate ID numbers refused; the same file twice changes
nothing; one audit event per resident written, an update's naming the fields it changed."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.factories.registry import audit_events, count, csv_rows, import_rows, resident_id, resident_payload

from cityhealth.clock import SimulatedClock
from cityhealth.db.engine import Database
from cityhealth.errors import Conflict, ValidationFailed
from cityhealth.registry import imports, repository, service
from cityhealth.registry.identifiers import Sex, mask_resident_id
from cityhealth.registry.models import Resident
from cityhealth.registry.protection import ID_NUMBER, PHONE
from cityhealth.security.audit_verify import verify_chain
from cityhealth.security.crypto import FieldCipher

pytestmark = pytest.mark.usefixtures("seeded_areas")

@pytest.fixture(params=[imports.RESIDENT_BATCH_ROWS, 2], ids=["one-batch", "batches-of-2"])
def batch_rows(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Each test runs with the files in one batch, and again cut into batches of two rows."""
    monkeypatch.setattr(imports, "RESIDENT_BATCH_ROWS", request.param)
    return int(request.param)


def _person(seq: int, **overrides: Any) -> dict[str, Any]:
    """A row as a CSV file gives it: every value text."""
    return {k: str(v) for k, v in resident_payload(seq).items()} | overrides


async def _refused(database: Database, clock: SimulatedClock, cipher: FieldCipher,
                   rows: list[tuple[int, object]]) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationFailed) as caught:
        await import_rows(database, clock, "residents", rows, cipher)
    return [(e["row"], e["field"], e["rule"], e["value"]) for e in caught.value.errors]


async def _residents(database: Database, cipher: FieldCipher) -> dict[str, dict[str, Any]]:
    """Every resident by ID number, with its phone decrypted."""
    async with database.sessions() as session:
        rows = (await session.scalars(select(Resident).order_by(Resident.id))).all()
    return {cipher.decrypt(ID_NUMBER, r.id_number_enc): {
        "id": r.id, "name": r.name, "sex": r.sex, "birth_date": r.birth_date.isoformat(),
        "phone": cipher.decrypt(PHONE, r.phone_enc) if r.phone_enc else None,
        "address_area_code": r.address_area_code, "is_active": r.is_active, "updated_at": r.updated_at,
        "id_number_hash": r.id_number_hash} for r in rows}


async def test_new_changed_and_unchanged_rows_in_one_file(database: Database, clock: SimulatedClock,
                                                          cipher: FieldCipher, batch_rows: int) -> None:
    first = await import_rows(database, clock, "residents", csv_rows(_person(1), _person(2), _person(3)), cipher)
    assert (first.rows, first.created, first.updated, first.unchanged) == (3, 3, 0, 0)
    before = await _residents(database, cipher)
    clock.advance(timedelta(hours=1))

    second = await import_rows(database, clock, "residents", csv_rows(
        _person(1),  # unchanged
        _person(4, is_active="false"),  # new, registered inactive
        _person(2, name="改名", phone="02583626620"),  # two fields changed
        _person(3, address_area_code="", sex=""),  # the address cleared; an empty sex leaves it as it is
    ), cipher)
    assert (second.rows, second.created, second.updated, second.unchanged) == (4, 1, 2, 1)

    after = await _residents(database, cipher)
    one, two, three, four = (resident_payload(n)["id_number"] for n in (1, 2, 3, 4))
    assert after[one] == before[one]
    assert (after[two]["name"], after[two]["phone"]) == ("改名", "02583626620")
    assert after[two]["updated_at"] == clock.now() > before[two]["updated_at"]
    assert (after[three]["address_area_code"], after[three]["sex"]) == (None, before[three]["sex"])
    assert after[four] | {"id": 0, "updated_at": None, "id_number_hash": ""} == {
        "id": 0, "name": "居民4", "sex": 1, "birth_date": "1985-03-14", "phone": "13900000004",
        "address_area_code": "320102", "is_active": False, "updated_at": None, "id_number_hash": ""}
    assert after[four]["id_number_hash"] == service.id_number_hash(cipher, clock, four)

    events = [(e.action, e.resident_id, e.resource_id, e.detail, e.actor)
              for e in await audit_events(database, resource_type="resident")]
    assert events[3:] == [
        ("create", after[four]["id"], str(after[four]["id"]), "import", "cli:tester"),
        ("update", after[two]["id"], str(after[two]["id"]), "import; changed name, phone", "cli:tester"),
        ("update", after[three]["id"], str(after[three]["id"]), "import; changed address_area_code", "cli:tester"),
    ]
    assert [e[:2] for e in events[:3]] == [("create", before[resident_payload(n)["id_number"]]["id"])
                                           for n in (1, 2, 3)]
    assert (await verify_chain(database)).ok


async def test_the_same_file_twice_changes_nothing_the_second_time(database: Database, clock: SimulatedClock,
                                                                   cipher: FieldCipher, batch_rows: int) -> None:
    rows = csv_rows(*(_person(n) for n in range(1, 8)))
    assert (await import_rows(database, clock, "residents", rows, cipher)).created == 7
    before, events = await _residents(database, cipher), len(await audit_events(database))
    clock.advance(timedelta(days=1))
    again = await import_rows(database, clock, "residents", rows, cipher)
    assert (again.rows, again.created, again.updated, again.unchanged) == (7, 0, 0, 7)
    assert await _residents(database, cipher) == before
    assert len(await audit_events(database)) == events


async def test_a_bad_row_in_the_middle_writes_nothing_and_is_named(database: Database, clock: SimulatedClock,
                                                                   cipher: FieldCipher, batch_rows: int) -> None:
    await import_rows(database, clock, "residents", csv_rows(_person(1)), cipher)
    before, events = await _residents(database, cipher), len(await audit_events(database))
    errors = await _refused(database, clock, cipher, csv_rows(
        _person(2), _person(1, name="改名"), _person(3, phone="12345"), _person(4), _person(5)))
    assert errors == [(4, "phone", "phone.format", "*****")]
    assert await _residents(database, cipher) == before
    assert len(await audit_events(database)) == events


async def test_every_bad_row_is_listed_in_row_order_with_its_rule(database: Database, clock: SimulatedClock,
                                                                  cipher: FieldCipher, batch_rows: int) -> None:
    await import_rows(database, clock, "residents", csv_rows(_person(1)), cipher)
    bad_check = resident_id(7)[:17] + ("0" if resident_id(7)[17] != "0" else "1")
    woman = resident_id(8, sex=Sex.FEMALE)
    errors = await _refused(database, clock, cipher, csv_rows(
        _person(2),
        _person(3, sex="5"),  # 3: the schema's rule
        {"id_number": bad_check, "name": "某"},  # 4: the ID number's check character
        ["not", "an", "object"],  # 5
        _person(4, birth_date="1990-01-01"),  # 6: a new resident's birth date against its number
        _person(1, birth_date="1990-01-01"),  # 7: a registered one's, changed
        _person(5, address_area_code="999999"),  # 8: no such area
        _person(2, name="又一次"),  # 9: the number of row 2 again
        {"id_number": woman, "name": "某", "sex": "1"},  # 10: sex against the number
        _person(6, unknown="x"),  # 11: a column the import does not know
    ))
    assert errors == [
        (3, "sex", "sex.code", "5"),
        (4, "id_number", "id_number.check_char", mask_resident_id(bad_check)),
        (5, "row", "import.row_shape", None),
        (6, "id_number", "id_number.birth_date_mismatch", mask_resident_id(resident_id(4))),
        (7, "id_number", "id_number.birth_date_mismatch", mask_resident_id(resident_id(1))),
        (8, "address_area_code", "area.unknown", "999999"),
        (9, "id_number", "import.duplicate_key", mask_resident_id(resident_id(2))),
        (10, "id_number", "id_number.sex_mismatch", mask_resident_id(woman)),
        (11, "unknown", "extra_forbidden", "x"),
    ]
    assert await count(database, Resident) == 1


async def test_both_forms_of_one_number_in_a_file_are_duplicates(database: Database, clock: SimulatedClock,
                                                                 cipher: FieldCipher, batch_rows: int) -> None:
    number = resident_id(5)
    legacy = number[:6] + number[8:17]  # the 15-digit form of a number born in the 1900s
    errors = await _refused(database, clock, cipher, csv_rows(_person(1), _person(5), _person(6),
                                                           _person(5, id_number=legacy)))
    assert errors == [(5, "id_number", "import.duplicate_key", mask_resident_id(legacy))]
    assert await count(database, Resident) == 0


async def test_an_inactive_area_is_refused_for_new_and_moved_residents_only(
        database: Database, clock: SimulatedClock, cipher: FieldCipher, batch_rows: int) -> None:
    await import_rows(database, clock, "residents", csv_rows(_person(1, address_area_code="320106")), cipher)
    async with database.transaction() as session:
        await service.deactivate_area(session, clock, None, "320106")
    errors = await _refused(database, clock, cipher, csv_rows(
        _person(1, address_area_code="320106"),  # stays where it is: allowed
        _person(2, address_area_code="320106"),
        _person(3, address_area_code="320102"),
    ))
    assert errors == [(3, "address_area_code", "area.inactive", "320106")]
    rows = csv_rows(_person(1, address_area_code="320106"), _person(3))
    report = await import_rows(database, clock, "residents", rows, cipher)
    assert (report.unchanged, report.created) == (1, 1)


async def test_a_file_of_many_batches_audits_each_new_resident_by_its_own_id(
        database: Database, clock: SimulatedClock, cipher: FieldCipher, batch_rows: int) -> None:
    report = await import_rows(database, clock, "residents", csv_rows(*(_person(n) for n in range(1, 12))), cipher)
    assert report.created == 11
    stored = await _residents(database, cipher)
    events = await audit_events(database, resource_type="resident", action="create")
    assert [(e.resident_id, e.resource_id) for e in events] == [
        (stored[resident_payload(n)["id_number"]]["id"], str(stored[resident_payload(n)["id_number"]]["id"]))
        for n in range(1, 12)]
    assert (await verify_chain(database)).ok


async def test_progress_counts_every_row(database: Database, clock: SimulatedClock, cipher: FieldCipher,
                                         batch_rows: int) -> None:
    seen: list[int] = []
    async with database.transaction() as session:
        await imports.import_records(session, clock, "residents", csv_rows(*(_person(n) for n in range(1, 6))),
                                     cipher=cipher, progress=seen.append)
    assert sum(seen) == 5
    assert len(seen) == -(-5 // batch_rows)


async def test_a_resident_registered_meanwhile_fails_the_import_as_a_conflict(
        database: Database, clock: SimulatedClock, cipher: FieldCipher, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another writer registers the number between the batch's read and its insert: the unique index refuses it.
    await import_rows(database, clock, "residents", csv_rows(_person(2)), cipher)
    monkeypatch.setattr(repository, "residents_to_compare", _none_registered)
    with pytest.raises(Conflict) as caught:
        await import_rows(database, clock, "residents", csv_rows(_person(1), _person(2), _person(3)), cipher)
    assert (caught.value.code, caught.value.rule) == ("resident_exists", "resident.unique_id_number")
    assert await count(database, Resident) == 1


async def _none_registered(session: AsyncSession, hashes: Collection[str]) -> dict[str, Any]:
    return {}
