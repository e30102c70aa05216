"""Registry services: imports (idempotent, all-or-nothing, per-row errors) and the use cases behind the API."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from tests.factories.registry import (
    audit_events,
    count,
    csv_rows,
    import_rows,
    resident_id,
    resident_payload,
    uscc,
)

from cityhealth.clock import SimulatedClock
from cityhealth.db.engine import Database
from cityhealth.errors import ValidationFailed
from cityhealth.registry import residents, service
from cityhealth.registry.identifiers import mask_resident_id
from cityhealth.registry.models import Area, AreaMapping, Department, Organization, Practitioner, Resident
from cityhealth.registry.schemas import OrganizationUpdate, ResidentCreate
from cityhealth.security.crypto import FieldCipher

pytestmark = pytest.mark.usefixtures("seeded_areas")


ORGANIZATIONS = csv_rows(
    {"code": "H1", "name": "甲医院", "kind": "hospital", "area_code": "320106", "level": "三级", "short_name": ""},
    {"code": "H2", "name": "乙医院", "kind": "hospital", "area_code": "320102", "uscc": uscc(), "level": ""},
    {"code": "H2-1", "name": "乙医院分院", "kind": "hospital", "area_code": "320102", "parent_code": "H2"},
)


async def test_import_creates_then_the_same_file_changes_nothing(database: Database,
                                                                 clock: SimulatedClock) -> None:
    first = await import_rows(database, clock, "organizations", ORGANIZATIONS)
    assert (first.rows, first.created, first.updated, first.unchanged) == (3, 3, 0, 0)
    async with database.sessions() as session:
        before = {o.code: (o.updated_at, o.parent_id) for o in await session.scalars(select(Organization))}
    clock.advance(timedelta(hours=1))
    second = await import_rows(database, clock, "organizations", ORGANIZATIONS)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 3)
    async with database.sessions() as session:
        after = {o.code: (o.updated_at, o.parent_id) for o in await session.scalars(select(Organization))}
    assert after == before
    assert after["H2-1"][1] is not None  # the branch found its parent, written two rows earlier


async def test_a_row_matching_an_existing_record_updates_it(database: Database, clock: SimulatedClock) -> None:
    await import_rows(database, clock, "organizations", ORGANIZATIONS)
    report = await import_rows(database, clock, "organizations", csv_rows(
        {"code": "H1", "name": "甲医院（总院）", "kind": "hospital", "area_code": "320106"}))
    assert (report.created, report.updated) == (0, 1)
    assert await count(database, Organization) == 3


async def test_a_row_without_code_is_matched_by_name(database: Database, clock: SimulatedClock) -> None:
    await import_rows(database, clock, "organizations", ORGANIZATIONS)
    report = await import_rows(database, clock, "organizations", csv_rows(
        {"name": "甲医院", "kind": "hospital", "level": "二级"}))
    assert report.updated == 1
    async with database.sessions() as session:
        organization = (await session.scalars(select(Organization).where(Organization.code == "H1"))).one()
    assert (organization.level, organization.area_code) == ("二级", "320106")  # absent column: left as is


async def test_any_invalid_row_fails_the_file_listing_every_problem_and_nothing_is_written(
        database: Database, clock: SimulatedClock) -> None:
    rows = csv_rows(
        {"code": "H1", "name": "甲医院", "kind": "hospital"},
        {"code": "H2", "name": "乙医院", "kind": "clinic"},
        {"code": "H3", "name": "丙医院", "kind": "hospital", "area_code": "999999"},
        {"code": "H4", "name": "丁医院", "kind": "hospital", "uscc": "12320100MB0000001X", "colour": "red"},
    )
    with pytest.raises(ValidationFailed) as caught:
        await import_rows(database, clock, "organizations", rows)
    problems = [(e["row"], e["field"], e["rule"]) for e in caught.value.errors]
    assert problems == [
        (3, "kind", "organization.kind"),
        (4, "area_code", "area.unknown"),
        (5, "uscc", "uscc.check_char"),
        (5, "colour", "extra_forbidden"),
    ]
    assert caught.value.code == "import_failed"
    assert "3 of 4" in caught.value.message
    assert await count(database, Organization) == 0


async def test_a_key_twice_in_one_file_is_refused(database: Database, clock: SimulatedClock) -> None:
    rows = csv_rows({"code": "320104", "name": "秦淮区", "level": "district", "parent_code": "320100"},
                 {"code": "320104", "name": "秦淮", "level": "district", "parent_code": "320100"})
    with pytest.raises(ValidationFailed) as caught:
        await import_rows(database, clock, "areas", rows)
    assert [(e["row"], e["field"], e["rule"]) for e in caught.value.errors] == [(3, "code", "import.duplicate_key")]


async def test_a_row_that_is_not_an_object_is_reported(database: Database, clock: SimulatedClock) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await import_rows(database, clock, "areas", [(1, ["320104", "秦淮区"])])
    assert caught.value.errors[0]["rule"] == "import.row_shape"


async def test_unknown_kind_is_refused(database: Database, clock: SimulatedClock) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await import_rows(database, clock, "hospitals", [])
    assert (caught.value.field, caught.value.rule) == ("kind", "import.kind")


async def test_areas_import_with_parents_and_mappings_from_csv_cells(database: Database,
                                                                     clock: SimulatedClock) -> None:
    rows = csv_rows(
        {"code": "320500", "name": "苏州市", "level": "city", "parent_code": "320000", "maps_to": ""},
        {"code": "320505", "name": "虎丘区", "level": "district", "parent_code": "320500", "maps_to": ""},
        {"code": "3205SIP", "name": "苏州工业园区", "level": "reporting_unit", "parent_code": "320500",
         "maps_to": "320505"},
    )
    assert (await import_rows(database, clock, "areas", rows)).created == 3
    assert (await import_rows(database, clock, "areas", rows)).unchanged == 3
    assert await count(database, AreaMapping) == 2  # 江北新区's and the park's
    changed_level = csv_rows({"code": "320505", "name": "虎丘区", "level": "city", "parent_code": "320000"})
    with pytest.raises(ValidationFailed) as caught:
        await import_rows(database, clock, "areas", changed_level)
    assert caught.value.errors[0]["rule"] == "area.level_immutable"
    assert await count(database, Area) == 9


async def test_departments_and_practitioners_refer_to_their_organization_by_code(
        database: Database, clock: SimulatedClock) -> None:
    await import_rows(database, clock, "organizations", ORGANIZATIONS)
    departments = csv_rows({"organization_code": "H1", "subject_code": "03.01", "local_code": "HX",
                         "local_name": "呼吸内科"},
                        {"organization_code": "H2", "subject_code": "07", "local_code": "EK", "local_name": "儿科"})
    assert (await import_rows(database, clock, "departments", departments)).created == 2
    practitioners = csv_rows({"organization_code": "H1", "staff_code": "0001", "name": "王医生", "title": "主任医师",
                           "department_local_code": "HX"},
                          {"organization_code": "H1", "staff_code": "0002", "name": "李医生",
                           "department_local_code": "EK"})
    with pytest.raises(ValidationFailed) as caught:
        await import_rows(database, clock, "practitioners", practitioners)
    assert [(e["row"], e["field"], e["rule"]) for e in caught.value.errors] == [
        (3, "department_local_code", "practitioner.department")]
    assert await count(database, Practitioner) == 0
    assert (await import_rows(database, clock, "practitioners", practitioners[:1])).created == 1
    assert (await import_rows(database, clock, "departments", departments)).unchanged == 2
    assert await count(database, Department) == 2


async def test_client_apps_import_is_idempotent(database: Database, clock: SimulatedClock) -> None:
    rows = csv_rows({"code": "jiuyi-160", "name": "就医 160", "channel": "third_party", "operator": "91160.com"})
    assert (await import_rows(database, clock, "client-apps", rows)).created == 1
    assert (await import_rows(database, clock, "client-apps", rows)).unchanged == 1


async def test_residents_import_is_idempotent_audited_and_reports_masked_numbers(
        database: Database, clock: SimulatedClock, cipher: FieldCipher) -> None:
    good = {k: str(v) for k, v in resident_payload(1).items()}
    assert (await import_rows(database, clock, "residents", csv_rows(good), cipher)).created == 1
    assert (await import_rows(database, clock, "residents", csv_rows(good), cipher)).unchanged == 1
    events = await audit_events(database, resource_type="resident")
    assert [(e.action, e.actor) for e in events] == [("create", "cli:tester")]

    bad_number = resident_id(2)[:17] + ("0" if resident_id(2)[17] != "0" else "1")
    rows = csv_rows(resident_payload(3) | {"name": "新名字"}, {"id_number": bad_number, "name": "某"},
                 good | {"phone": "12345"})
    with pytest.raises(ValidationFailed) as caught:
        await import_rows(database, clock, "residents", rows, cipher)
    assert [(e["row"], e["field"], e["rule"], e["value"]) for e in caught.value.errors] == [
        (3, "id_number", "id_number.check_char", mask_resident_id(bad_number)),
        (4, "phone", "phone.format", "*****"),
    ]
    assert bad_number not in str(caught.value.errors)
    assert await count(database, Resident) == 1


async def test_an_update_that_changes_nothing_keeps_updated_at(database: Database, clock: SimulatedClock) -> None:
    await import_rows(database, clock, "organizations", ORGANIZATIONS)
    clock.advance(timedelta(days=1))
    async with database.transaction() as session:
        organization = (await session.scalars(select(Organization).where(Organization.code == "H1"))).one()
        before = organization.updated_at
        result = await service.update_organization(session, clock, None, organization.id,
                                                   OrganizationUpdate(name="甲医院", level="三级"))
    assert result.updated_at == before


async def test_deactivating_a_not_yet_active_organization_ends_it_at_its_start(
        database: Database, clock: SimulatedClock) -> None:
    await import_rows(database, clock, "organizations", csv_rows(
        {"code": "NEW", "name": "新院区", "kind": "hospital", "active_from": "2022-09-01"}))
    async with database.transaction() as session:
        organization = (await session.scalars(select(Organization))).one()
        result = await service.deactivate_organization(session, clock, None, organization.id)
    assert (result.active_from, result.active_to) == (date(2022, 9, 1), date(2022, 9, 1))


async def test_register_and_find_by_either_form_of_the_number(database: Database, clock: SimulatedClock,
                                                              cipher: FieldCipher) -> None:
    payload = resident_payload(5)
    async with database.transaction() as session:
        created = await residents.register_resident(session, clock, cipher, None, ResidentCreate(**payload))
        found = await residents.find_resident_by_id_number(session, clock, cipher, None, payload["id_number"])
        missing = await residents.find_resident_by_id_number(session, clock, cipher, None, resident_id(6))
    assert found == created
    assert missing is None


def test_platform_codes_are_stable_and_distinct() -> None:
    assert service.platform_organization_code("南京市第一医院") == service.platform_organization_code("南京市第一医院")
    assert service.platform_organization_code("南京市第一医院") != service.platform_organization_code("南京市第二医院")
