"""Registry test data: valid request payloads, a small area tree, the reference load, row counts."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

from sqlalchemy import func, select

from cityhealth.clock import Clock
from cityhealth.db.engine import Database
from cityhealth.registry import imports, service
from cityhealth.registry.identifiers import Sex, make_resident_id, make_uscc
from cityhealth.registry.schemas import AreaCreate
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.models import AuditEvent

_sequence = itertools.count(1)

# Enough of the GB/T 2260 tree for most tests: Jiangsu, Nanjing, two districts and 江北新区.
SMALL_AREA_TREE = [
    AreaCreate(code="320000", name="江苏省", level="province"),
    AreaCreate(code="320100", name="南京市", level="city", parent_code="320000"),
    AreaCreate(code="320102", name="玄武区", level="district", parent_code="320100"),
    AreaCreate(code="320106", name="鼓楼区", level="district", parent_code="320100"),
    AreaCreate(code="320111", name="浦口区", level="district", parent_code="320100"),
    AreaCreate(code="3201JB", name="江北新区", level="reporting_unit", parent_code="320100", maps_to=["320111"]),
]


async def seed_areas(database: Database, clock: Clock) -> None:
    async with database.transaction() as session:
        for area in SMALL_AREA_TREE:
            await service.insert_area(session, clock, area)


def csv_rows(*records: object) -> list[tuple[int, object]]:
    """Rows numbered as a CSV file's lines would be (the header is line 1)."""
    return list(enumerate(records, 2))


async def import_rows(database: Database, clock: Clock, kind: str, rows: list[tuple[int, object]],
                      cipher: FieldCipher | None = None) -> imports.ImportReport:
    """An import of `kind` in one transaction, as the CLI's operator would run it."""
    async with database.transaction() as session:
        return await imports.import_records(session, clock, kind, rows, cipher=cipher, actor="cli:tester")


async def load_nanjing(database: Database, clock: Clock) -> dict[str, imports.ImportReport]:
    async with database.transaction() as session:
        return await imports.load_reference(session, clock, "nanjing")


def uscc(n: int | None = None) -> str:
    """A valid credit code of a Nanjing public institution (12 = 机构编制, 事业单位).

    The organization-code part carries letters: an all-digit code is shaped like an ID number, and the
    platform's scrubber masks those in every error message.
    """
    return make_uscc(f"12320100MB{next(_sequence) if n is None else n:07d}")


def organization_payload(**overrides: Any) -> dict[str, Any]:
    n = next(_sequence)
    payload: dict[str, Any] = {
        "name": f"测试医院{n}", "short_name": f"测试{n}", "uscc": uscc(n), "ws218_type": "A100",
        "level": "三级", "kind": "hospital", "area_code": "320106",
    }
    return payload | overrides


def department_payload(**overrides: Any) -> dict[str, Any]:
    n = next(_sequence)
    return {"subject_code": "03.01", "local_code": f"D{n:04d}", "local_name": "呼吸内科"} | overrides


def practitioner_payload(**overrides: Any) -> dict[str, Any]:
    n = next(_sequence)
    return {"staff_code": f"S{n:05d}", "name": f"医生{n}", "title": "主任医师"} | overrides


def client_app_payload(**overrides: Any) -> dict[str, Any]:
    n = next(_sequence)
    return {"code": f"test-app-{n}", "name": f"测试应用{n}", "channel": "third_party", "operator": "测试"} | overrides


def resident_id(seq: int = 1, *, sex: Sex = Sex.MALE, birth_date: date = date(1985, 3, 14),
                area_code: str = "320102") -> str:
    """A valid 18-character ID number; `seq` is made odd for men and even for women."""
    seq = seq * 2 + (1 if sex is Sex.MALE else 0)
    return make_resident_id(area_code, birth_date, seq % 1000, sex)


def resident_payload(seq: int = 1, *, sex: Sex = Sex.MALE, birth_date: date = date(1985, 3, 14),
                     **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id_number": resident_id(seq, sex=sex, birth_date=birth_date), "name": f"居民{seq}",
        "sex": int(sex), "birth_date": birth_date.isoformat(), "phone": f"139{seq:08d}",
        "address_area_code": "320102",
    }
    return payload | overrides


async def count(database: Database, model: Any) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def audit_events(database: Database, **criteria: Any) -> list[AuditEvent]:
    async with database.sessions() as session:
        statement = select(AuditEvent).order_by(AuditEvent.id)
        for column, value in criteria.items():
            statement = statement.where(getattr(AuditEvent, column) == value)
        return list((await session.scalars(statement)).all())
