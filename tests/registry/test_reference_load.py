"""Loading the shipped Nanjing reference data into the registry: complete, linked, and idempotent."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from tests.factories.registry import count, load_nanjing

from cityhealth.clock import SimulatedClock
from cityhealth.db.engine import Database
from cityhealth.errors import ValidationFailed
from cityhealth.registry import imports, service
from cityhealth.registry.models import Area, AreaMapping, ClientApp, Organization

REPORTING_AREAS = {"320102", "320104", "320105", "320106", "320111", "320113", "320114", "320115", "320116",
                   "320117", "320118", "3201JB"}


async def test_first_load_creates_every_area_institution_and_app(database: Database,
                                                                 clock: SimulatedClock) -> None:
    reports = await load_nanjing(database, clock)
    assert {k: (r.rows, r.created) for k, r in reports.items()} == {
        "areas": (23, 23), "organizations": (59, 59), "facilities": (45, 45), "client-apps": (7, 7)}
    assert (await count(database, Area), await count(database, Organization), await count(database, ClientApp)) \
        == (23, 59, 7)


async def test_loading_twice_changes_nothing(database: Database, clock: SimulatedClock) -> None:
    await load_nanjing(database, clock)
    async with database.sessions() as session:
        before = [(o.id, o.code, o.updated_at) for o in await session.scalars(select(Organization))]
    clock.advance(timedelta(days=1))
    reports = await load_nanjing(database, clock)
    assert {k: (r.created, r.updated, r.unchanged) for k, r in reports.items()} == {
        "areas": (0, 0, 23), "organizations": (0, 0, 59), "facilities": (0, 0, 45), "client-apps": (0, 0, 7)}
    async with database.sessions() as session:
        after = [(o.id, o.code, o.updated_at) for o in await session.scalars(select(Organization))]
    assert after == before
    assert await count(database, AreaMapping) == 3


async def test_the_twelve_reporting_areas_each_have_their_district_platform(database: Database,
                                                                            clock: SimulatedClock) -> None:
    await load_nanjing(database, clock)
    async with database.sessions() as session:
        platforms = (await session.scalars(
            select(Organization).where(Organization.kind == "district_platform"))).all()
        mappings = (await session.scalars(
            select(AreaMapping.district_code).where(AreaMapping.reporting_unit_code == "3201JB"))).all()
    assert {p.area_code for p in platforms} == REPORTING_AREAS
    assert sorted(mappings) == ["320111", "320113", "320116"]


async def test_campuses_are_linked_to_their_organization(database: Database, clock: SimulatedClock) -> None:
    await load_nanjing(database, clock)
    async with database.sessions() as session:
        by_name = {o.name: o for o in await session.scalars(select(Organization))}
    assert by_name["南京市江宁医院（湖山路）"].parent_id == by_name["南京市江宁医院"].id
    assert by_name["东部战区总医院秦淮医疗区"].parent_id == by_name["东部战区总医院"].id


async def test_institutions_get_stable_platform_codes_and_the_bulletin_month_as_start(
        database: Database, clock: SimulatedClock) -> None:
    await load_nanjing(database, clock)
    async with database.sessions() as session:
        gulou = (await session.scalars(select(Organization).where(Organization.name == "南京鼓楼医院"))).one()
    assert gulou.code == service.platform_organization_code("南京鼓楼医院")
    assert (gulou.kind, gulou.area_code, gulou.ws218_type, gulou.level) == ("hospital", "320106", "A100", "三级")
    assert gulou.active_from == date(2022, 6, 1)
    assert gulou.uscc is None


async def test_a_reload_does_not_undo_an_operators_deactivation(database: Database, clock: SimulatedClock) -> None:
    await load_nanjing(database, clock)
    async with database.transaction() as session:
        org = (await session.scalars(select(Organization).where(Organization.name == "南京明基医院"))).one()
        await service.deactivate_organization(session, clock, None, org.id)
    reports = await load_nanjing(database, clock)
    assert reports["organizations"].updated == 0
    async with database.sessions() as session:
        assert (await session.get(Organization, org.id)).active_to == date(2022, 6, 15)  # type: ignore[union-attr]


async def test_an_unknown_reference_set_is_refused(database: Database, clock: SimulatedClock) -> None:
    with pytest.raises(ValidationFailed) as caught:
        async with database.transaction() as session:
            await imports.load_reference(session, clock, "shanghai")
    assert (caught.value.field, caught.value.rule) == ("name", "reference.unknown")
    assert "nanjing" in caught.value.message


async def test_the_12320_apps_also_book_third_party(database: Database, clock: SimulatedClock) -> None:
    await load_nanjing(database, clock)
    async with database.transaction() as session:
        rows = (await session.execute(select(ClientApp))).scalars()
        apps = {app.name: (app.channel, app.other_channels) for app in rows}
    assert apps["健康南京客户端"] == ("online_12320", "third_party")
    assert apps["就医 160"] == ("third_party", "")


async def test_demo_hospitals_get_an_address_and_a_booking_phone(database: Database, clock: SimulatedClock) -> None:
    await load_nanjing(database, clock)
    async with database.transaction() as tx:
        gulou = (await tx.execute(select(Organization).where(Organization.name == "南京鼓楼医院"))).scalar_one()
    assert (gulou.address_city, gulou.address_district, gulou.postal_code) == ("南京市", "鼓楼区", "210008")
    assert gulou.address_line
    assert (gulou.booking_phone or "").startswith("025-")
