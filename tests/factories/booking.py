"""Booking test data: a small city (two hospitals, departments, apps, residents) and sessions to book."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, text

from cityhealth.booking.models import Booking
from cityhealth.clock import BUSINESS_TZ
from cityhealth.db.engine import Database
from cityhealth.registry.identifiers import make_resident_id
from cityhealth.registry.models import ClientApp, Department, Organization, Practitioner, Resident
from cityhealth.registry.protection import ID_NUMBER, PHONE, cipher_for
from cityhealth.security.principals import Principal, Role, Scope
from tests.factories.security import headers_for, machine, resident, staff

# Tables a refused request must leave untouched ("nothing written").
BOOKING_TABLES = ("bookings", "booking_idempotency_keys", "booking_stats_monthly", "booking_resident_days",
                  "booking_waitlist", "booking_notifications", "booking_callbacks", "booking_sanctions")
TOMORROW = date(2022, 6, 16)  # the test clock stands at 2022-06-15 09:30 Asia/Shanghai
IN_TWO_DAYS = date(2022, 6, 17)


@dataclass(frozen=True)
class World:
    hospital_id: int
    other_hospital_id: int
    department_id: int  # 内科 at the hospital
    second_department_id: int
    third_department_id: int
    other_department_id: int  # at the other hospital
    practitioner_id: int
    online_app_id: int
    third_party_app_id: int
    phone_app_id: int  # registered with a channel apps cannot book through


async def build_world(database: Database, now: datetime) -> World:
    async with database.transaction() as tx:
        def org(name: str, code: str) -> Organization:
            return Organization(code=code, name=name, kind="hospital", active_from=date(2000, 1, 1),
                                created_at=now, updated_at=now)

        hospital, other = org("南京鼓楼医院", "H-GULOU"), org("南京市儿童医院", "H-CHILD")
        tx.add_all([hospital, other])
        await tx.flush()

        def dept(organization_id: int, code: str, name: str) -> Department:
            return Department(organization_id=organization_id, subject_code="03", local_code=code, local_name=name,
                              is_active=True, created_at=now, updated_at=now)

        departments = [dept(hospital.id, "NK", "内科"), dept(hospital.id, "WK", "外科"),
                       dept(hospital.id, "EK", "眼科"), dept(other.id, "EK", "儿科")]
        tx.add_all(departments)
        await tx.flush()
        practitioner = Practitioner(organization_id=hospital.id, department_id=departments[0].id, staff_code="D001",
                                    name="王医生", title="主任医师", is_active=True, created_at=now, updated_at=now)

        def app(code: str, name: str, channel: str) -> ClientApp:
            return ClientApp(code=code, name=name, channel=channel, is_active=True, created_at=now, updated_at=now)

        apps = [app("jiankang-nanjing", "健康南京客户端", "online_12320"), app("jiuyi-160", "就医 160", "third_party"),
                app("ivr", "12320 语音", "phone")]
        tx.add(practitioner)
        tx.add_all(apps)
        await tx.flush()
        return World(hospital.id, other.id, departments[0].id, departments[1].id, departments[2].id,
                     departments[3].id, practitioner.id, apps[0].id, apps[1].id, apps[2].id)


async def add_resident(database: Database, settings: Any, now: datetime, seq: int, *,
                       phone: str | None = "13812345678", area: str = "320102") -> tuple[int, str]:
    """A master-index resident; returns (resident id, ID number)."""
    cipher = cipher_for(settings)
    number = make_resident_id(area, date(1980 + seq % 30, 1 + seq % 12, 1 + seq % 28), seq % 1000)
    async with database.transaction() as tx:
        row = Resident(id_number_hash=cipher.lookup_hash(ID_NUMBER, number),
                       id_number_enc=cipher.encrypt(ID_NUMBER, number), name=f"居民{seq}", sex=1 if seq % 2 else 2,
                       birth_date=date(1980 + seq % 30, 1 + seq % 12, 1 + seq % 28),
                       phone_hash=cipher.lookup_hash(PHONE, phone) if phone else None,
                       phone_enc=cipher.encrypt(PHONE, phone) if phone else None,
                       is_active=True, created_at=now, updated_at=now)
        tx.add(row)
        await tx.flush()
        return row.id, number


def scheduler(world: World, organization_id: int | None = None) -> Principal:
    return machine(Scope.BOOKING_SCHEDULE, Scope.BOOKING_WRITE, Scope.BOOKING_READ,
                   organization_id=organization_id or world.hospital_id, client_id="his-gulou")


def online_app(world: World) -> Principal:
    return machine(Scope.BOOKING_READ, Scope.BOOKING_WRITE, client_app_id=world.online_app_id, client_id="jkn")


def third_party(world: World) -> Principal:
    return machine(Scope.BOOKING_READ, Scope.BOOKING_WRITE, client_app_id=world.third_party_app_id,
                   client_id="jiuyi160")


AGENT_ID = 7  # the hotline agent who takes the tests' phone bookings


async def book_by_phone(client: httpx.AsyncClient, app: FastAPI, session_id: int, id_number: str, *,
                        call: str | None = None, key: str | None = None) -> httpx.Response:
    """A phone booking as the platform takes one: the telephony reports a call answered by the agent, who
    identifies the caller by ID number at the desk and books for them there, and the call ends (the desk's
    answer: the call id, the action and the booking)."""
    from tests.hotline.desk_support import DESK, end_call, identify, open_call

    telephony_id = call or f"phone-{uuid.uuid4().hex[:12]}"
    call_id = await open_call(app, client, telephony_id, agent=f"staff:{AGENT_ID}")
    headers = await headers_for(app, staff(Role.HOTLINE_AGENT, user_id=AGENT_ID))
    found = await identify(client, headers, call_id, id_number=id_number)
    assert (found.status_code, found.json().get("matches")) == (200, 1), found.text
    booked = await client.post(f"{DESK}/calls/{call_id}/bookings", json={"session_id": session_id},
                               headers=headers | {"Idempotency-Key": key or uuid.uuid4().hex})
    await end_call(app, client, telephony_id)
    return booked


def booking_admin() -> Principal:
    return staff(Role.PLATFORM_ADMIN, user_id=9)


def resident_principal(resident_id: int) -> Principal:
    return resident(resident_id, account_id=resident_id)


async def publish(client: httpx.AsyncClient, app: FastAPI, world: World, *, service_date: date = IN_TWO_DAYS,
                  start: time = time(8, 0), end: time = time(12, 0), capacity: int = 5,
                  department_id: int | None = None, organization_id: int | None = None,
                  quotas: dict[str, int] | None = None) -> dict[str, Any]:
    """Publish a session through the API as the hospital's system; returns the session."""
    organization_id = organization_id or world.hospital_id
    headers = await headers_for(app, scheduler(world, organization_id))
    response = await client.post("/api/booking/sessions", headers=headers,
                                 json={"external_id": uuid.uuid4().hex[:12], "organization_id": organization_id,
                                       "department_id": department_id or world.department_id,
                                       "service_date": service_date.isoformat(), "start_time": start.isoformat(),
                                       "end_time": end.isoformat(), "capacity": capacity, "quotas": quotas or {}})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def put_policy(client: httpx.AsyncClient, app: FastAPI, world: World, **rules: Any) -> dict[str, Any]:
    """Set the hospital's release policy through the API as its system (rules not given take their defaults)."""
    headers = await headers_for(app, scheduler(world))
    response = await client.put(f"/api/booking/policies/{world.hospital_id}", headers=headers, json=rules)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def book(client: httpx.AsyncClient, app: FastAPI, principal: Principal, session_id: int,
               id_number: str | None = None, *, key: str | None = None, **extra: Any) -> httpx.Response:
    payload: dict[str, Any] = {"session_id": session_id, **extra}
    if id_number is not None:
        payload["id_number"] = id_number
    headers = await headers_for(app, principal) | {"Idempotency-Key": key or uuid.uuid4().hex}
    return await client.post("/api/booking/bookings", json=payload, headers=headers)


async def row_counts(database: Database) -> dict[str, int]:
    async with database.transaction() as tx:
        return {table: int((await tx.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())  # noqa: S608
                for table in BOOKING_TABLES}


async def active_bookings(database: Database, session_id: int | None = None) -> list[Booking]:
    async with database.transaction() as tx:
        statement = select(Booking).where(Booking.status.in_(("held", "booked", "checked_in")))
        if session_id is not None:
            statement = statement.where(Booking.session_id == session_id)
        return list((await tx.execute(statement.order_by(Booking.id))).scalars().all())


async def count(database: Database, model: Any, *criteria: Any) -> int:
    async with database.transaction() as tx:
        return int((await tx.execute(select(func.count()).select_from(model).where(*criteria))).scalar_one())


def local(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, tzinfo=BUSINESS_TZ)
