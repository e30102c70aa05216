"""Records test support: a small city (tests.factories.booking's world), its hospitals uploading through the
collection API, residents of the master index, the linker run as its task runs it, and the callers.

`City` (the `city` fixture) holds what a linkage or shared-record test works with, so that each test asks for
one fixture and says only what its own case uploads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.records.linkage import PassCounts
from cityhealth.records.models import LinkEvent, LinkReview, PatientLink, TimelineEntry
from cityhealth.records.tasks import run_linker
from cityhealth.registry.models import Resident
from cityhealth.registry.protection import cipher_for
from cityhealth.security.principals import Role, Scope
from tests.factories.booking import World, add_resident
from tests.factories.collection import make_record
from tests.factories.security import headers_for, machine, resident, staff

RECORDS = "/api/records"
LINKAGE = "/api/records/linkage"
GULOU, CHILD = "H-GULOU", "H-CHILD"  # the codes of the world's hospital and other hospital


@dataclass(frozen=True)
class Person:
    resident_id: int
    id_number: str
    name: str
    sex: int
    birth: str  # yyyyMMdd


async def person(database: Database, settings: Settings, clock: SimulatedClock, seq: int,
                 phone: str | None = "13812345678") -> Person:
    """A resident of the master index (tests.factories.booking.add_resident) and what a hospital knows of them."""
    resident_id, number = await add_resident(database, settings, clock.now(), seq, phone=phone)
    async with database.transaction() as session:
        row = await session.get(Resident, resident_id)
        assert row is not None
        return Person(resident_id, number, row.name, row.sex, row.birth_date.strftime("%Y%m%d"))


async def upload(client: httpx.AsyncClient, app: FastAPI, organization_id: int, form: str,
                 records: list[dict[str, Any]]) -> None:
    headers = await headers_for(app, machine(Scope.COLLECTION_UPLOAD, organization_id=organization_id,
                                             client_id=f"his-{organization_id}"))
    response = await client.post(f"/api/collection/forms/{form}/records", json=records, headers=headers)
    assert response.status_code == 200, response.text
    assert {item["status"] for item in response.json()["records"]} <= {"accepted", "amended", "revoked"}, \
        response.json()


def master(org_code: str, record_id: str, at: datetime, patient_id: str, who: Person | None = None,
           **overrides: Any) -> dict[str, Any]:
    """A patient master record of `who` (their ID number, name, sex, birth date), fields overridden."""
    fields: dict[str, Any] = {"patient_id": patient_id}
    if who is not None:
        fields |= {"name": who.name, "id_number": who.id_number, "sex_code": str(who.sex),
                   "sex_name": "男" if who.sex == 1 else "女", "birth_date": who.birth, "phone": "13812345678",
                   "address_area_code": None}
    return make_record("patient_master_index", org_code, record_id, at, **(fields | overrides))


def visit(org_code: str, record_id: str, at: datetime, patient_id: str, visit_no: str,
          **overrides: Any) -> dict[str, Any]:
    return make_record("outpatient_visit", org_code, record_id, at, patient_id=patient_id, visit_no=visit_no,
                       **overrides)


def diagnosis(org_code: str, record_id: str, at: datetime, visit_no: str, code: str = "I10",
              name: str = "原发性高血压") -> dict[str, Any]:
    return make_record("outpatient_diagnosis", org_code, record_id, at, visit_no=visit_no, diagnosis_code=code,
                       diagnosis_name=name)


def passport_master(org_code: str, record_id: str, at: datetime, patient_id: str, who: Person,
                    **overrides: Any) -> dict[str, Any]:
    """A patient registered with a passport: no resident ID number to link by, so the score decides."""
    return master(org_code, record_id, at, patient_id, who, id_type_code="03", id_type_name="护照",
                  id_number="E12345678", **overrides)


async def link(database: Database, clock: SimulatedClock, settings: Settings, **options: Any) -> PassCounts:
    return await run_linker(database, clock, cipher_for(settings), **options)


async def link_of(database: Database, organization_id: int, patient_key: str) -> PatientLink | None:
    async with database.transaction() as session:
        return await session.get(PatientLink, (organization_id, patient_key))


async def timeline_rows(database: Database) -> list[tuple[Any, ...]]:
    async with database.transaction() as session:
        rows = await session.scalars(select(TimelineEntry).order_by(TimelineEntry.organization_id,
                                                                    TimelineEntry.form, TimelineEntry.record_id))
        return [(r.organization_id, r.form, r.record_id, r.version, r.category, r.encounter_kind, r.encounter_no,
                 r.patient_key, r.resident_id, r.event_time, r.summary) for r in rows]


async def residents_of_timeline(database: Database) -> dict[str, int | None]:
    """record id -> resident, for every indexed record."""
    return {row[2]: row[8] for row in await timeline_rows(database)}


async def events_of(database: Database, organization_id: int, patient_key: str) -> list[tuple[Any, ...]]:
    async with database.transaction() as session:
        rows = await session.scalars(select(LinkEvent).where(LinkEvent.organization_id == organization_id,
                                                             LinkEvent.patient_key == patient_key)
                                     .order_by(LinkEvent.id))
        return [(r.kind, r.from_resident_id, r.to_resident_id, r.method, r.actor) for r in rows]


async def open_reviews(database: Database) -> list[LinkReview]:
    async with database.transaction() as session:
        return list((await session.scalars(select(LinkReview).where(LinkReview.status == "open")
                                           .order_by(LinkReview.id))).all())


async def clinician(app: FastAPI, organization_id: int, user_id: int = 41) -> dict[str, str]:
    return await headers_for(app, staff(Role.CLINICIAN, organization_id=organization_id, user_id=user_id))


async def operator(app: FastAPI) -> dict[str, str]:
    return await headers_for(app, staff(Role.DATA_QUALITY_OPERATOR, user_id=42))


async def auditor(app: FastAPI) -> dict[str, str]:
    return await headers_for(app, staff(Role.PLATFORM_ADMIN, user_id=43))


async def resident_headers(app: FastAPI, resident_id: int) -> dict[str, str]:
    return await headers_for(app, resident(resident_id, account_id=resident_id))


def hours_ago(clock: SimulatedClock, hours: float) -> datetime:
    return clock.now() - timedelta(hours=hours)


@dataclass(frozen=True)
class City:
    """The app and its client, the database, settings and clock, and the world's hospitals; uploads go to the
    world's hospital (Gulou) unless `organization_id` names another."""

    app: FastAPI
    client: httpx.AsyncClient
    database: Database
    settings: Settings
    clock: SimulatedClock
    world: World

    def hours_ago(self, hours: float) -> datetime:
        return hours_ago(self.clock, hours)

    async def person(self, seq: int, phone: str | None = "13812345678") -> Person:
        return await person(self.database, self.settings, self.clock, seq, phone)

    async def upload(self, form: str, records: list[dict[str, Any]], organization_id: int | None = None) -> None:
        await upload(self.client, self.app, organization_id or self.world.hospital_id, form, records)

    async def register(self, who: Person, *, hours: float = 3, patient_id: str = "P001", by_passport: bool = False,
                       **overrides: Any) -> None:
        """Gulou's master record of `who` (m-1, as its patient `patient_id`, fields overridden), `hours` ago;
        `by_passport`: with a passport instead of the ID number (passport_master)."""
        record = (passport_master if by_passport else master)(GULOU, "m-1", self.hours_ago(hours), patient_id, who,
                                                              **overrides)
        await self.upload("patient_master_index", [record])

    async def registered(self, seq: int, *, hours: float = 3, patient_id: str = "P001", by_passport: bool = False,
                         **overrides: Any) -> Person:
        """A new resident of the index, registered at Gulou (`register`)."""
        who = await self.person(seq)
        await self.register(who, hours=hours, patient_id=patient_id, by_passport=by_passport, **overrides)
        return who

    async def visited(self, *, record_id: str = "v-1", hours: float = 2, patient_id: str = "P001",
                      visit_no: str = "V9", **overrides: Any) -> None:
        """An outpatient visit at Gulou, `hours` ago."""
        await self.upload("outpatient_visit",
                          [visit(GULOU, record_id, self.hours_ago(hours), patient_id, visit_no, **overrides)])

    async def diagnosed(self, *, hours: float = 2, visit_no: str = "V9") -> None:
        """The I10 diagnosis (d-1) of a visit at Gulou, `hours` ago."""
        await self.upload("outpatient_diagnosis", [diagnosis(GULOU, "d-1", self.hours_ago(hours), visit_no)])

    async def clinician(self, organization_id: int | None = None, user_id: int = 41) -> dict[str, str]:
        """Headers of a clinician of `organization_id` (the world's hospital unless named)."""
        return await clinician(self.app, organization_id or self.world.hospital_id, user_id)

    async def operator(self) -> dict[str, str]:
        return await operator(self.app)

    async def auditor(self) -> dict[str, str]:
        return await auditor(self.app)

    async def resident_headers(self, resident_id: int) -> dict[str, str]:
        return await resident_headers(self.app, resident_id)

    async def link(self, **options: Any) -> PassCounts:
        return await link(self.database, self.clock, self.settings, **options)

    async def link_of(self, patient_key: str) -> PatientLink | None:
        return await link_of(self.database, self.world.hospital_id, patient_key)

    async def events_of(self, patient_key: str) -> list[tuple[Any, ...]]:
        return await events_of(self.database, self.world.hospital_id, patient_key)


