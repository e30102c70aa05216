"""Every registry query. Functions take the session and return ORM rows; they never commit."""

from __future__ import annotations

import operator
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Literal, NamedTuple, TypeVar

from sqlalchemy import Select, bindparam, delete, func, insert, or_, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.db.driver import is_postgres, pg_driver
from cityhealth.registry.models import (
    Area,
    AreaMapping,
    ClientApp,
    Department,
    Organization,
    Practitioner,
    Resident,
)

RowT = TypeVar("RowT")


async def page(session: AsyncSession, statement: Select[RowT], *, limit: int, offset: int
               ) -> tuple[Sequence[RowT], int]:
    """One page of a statement's rows (already ordered by the caller) and the total count."""
    total = await session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    rows = (await session.scalars(statement.limit(limit).offset(offset))).all()
    return rows, int(total or 0)


# --- Areas --------------------------------------------------------------------------------------------


async def get_area(session: AsyncSession, code: str) -> Area | None:
    return await session.get(Area, code)


async def areas_by_code(session: AsyncSession, codes: Collection[str]) -> dict[str, Area]:
    if not codes:
        return {}
    rows = await session.scalars(select(Area).where(Area.code.in_(codes)))
    return {area.code: area for area in rows}


def areas_query(*, level: str | None, parent_code: str | None, active: bool | None) -> Select[Area]:
    statement = select(Area).order_by(Area.code)
    if level is not None:
        statement = statement.where(Area.level == level)
    if parent_code is not None:
        statement = statement.where(Area.parent_code == parent_code)
    if active is not None:
        statement = statement.where(Area.is_active.is_(active))
    return statement


async def mappings_of(session: AsyncSession, codes: Collection[str]) -> dict[str, list[str]]:
    """Each reporting unit's districts, sorted, for the given area codes (absent: no mapping)."""
    if not codes:
        return {}
    rows = await session.execute(
        select(AreaMapping.reporting_unit_code, AreaMapping.district_code)
        .where(AreaMapping.reporting_unit_code.in_(codes))
        .order_by(AreaMapping.reporting_unit_code, AreaMapping.district_code)
    )
    result: dict[str, list[str]] = {}
    for unit, district in rows:
        result.setdefault(unit, []).append(district)
    return result


async def replace_mappings(session: AsyncSession, unit_code: str, district_codes: Collection[str]) -> None:
    await session.execute(delete(AreaMapping).where(AreaMapping.reporting_unit_code == unit_code))
    if district_codes:
        await session.execute(insert(AreaMapping), [
            {"reporting_unit_code": unit_code, "district_code": code} for code in sorted(district_codes)
        ])


# --- Organizations ------------------------------------------------------------------------------------


async def get_organization(session: AsyncSession, organization_id: int) -> Organization | None:
    return await session.get(Organization, organization_id)


async def organization_by(session: AsyncSession, column: Literal["code", "name", "uscc"], value: str
                          ) -> Organization | None:
    """The organization with this code, name or credit code (each unique)."""
    return await session.scalar(select(Organization).where(getattr(Organization, column) == value))


# A batch's lookups (the lab listener's), on the driver's connection on PostgreSQL: fixed SQL, prepared once.
_PG_ORGANIZATIONS_BY_CODE = "SELECT code, id FROM organizations WHERE code = ANY($1::varchar[])"
_PG_RESIDENTS_BY_HASH = "SELECT id_number_hash, id FROM residents WHERE id_number_hash = ANY($1::varchar[])"


async def organization_ids_by_code(session: AsyncSession, codes: Collection[str]) -> dict[str, int]:
    """The ids of the organizations among `codes` that exist, by code (one statement, no objects loaded)."""
    if not codes:
        return {}
    if is_postgres(session):  # a batch's lookup (the lab listener's): fixed SQL on the driver, prepared once
        driver = await pg_driver(session)
        found = await driver.fetch(_PG_ORGANIZATIONS_BY_CODE, sorted(set(codes)))
        return {code: organization_id for code, organization_id in found}
    connection = await session.connection()
    rows = await connection.execute(
        select(Organization.code, Organization.id).where(Organization.code.in_(sorted(set(codes))))
    )
    return {code: organization_id for code, organization_id in rows}


async def organization_ancestors(session: AsyncSession, organization_id: int, *, limit: int = 32) -> list[int]:
    """The ids up the parent chain from an organization (itself excluded), nearest first."""
    chain: list[int] = []
    current: int | None = organization_id
    while current is not None and len(chain) < limit:
        current = await session.scalar(select(Organization.parent_id).where(Organization.id == current))
        if current is not None:
            chain.append(current)
    return chain


def organizations_query(*, kind: str | None, area_code: str | None, name: str | None,
                        active_on: date | None, inactive_on: date | None) -> Select[Organization]:
    statement = select(Organization).order_by(Organization.id)
    if kind is not None:
        statement = statement.where(Organization.kind == kind)
    if area_code is not None:
        statement = statement.where(Organization.area_code == area_code)
    if name is not None:
        statement = statement.where(or_(Organization.name.contains(name, autoescape=True),
                                        Organization.short_name.contains(name, autoescape=True)))
    if active_on is not None:
        statement = statement.where(Organization.active_from <= active_on,
                                    or_(Organization.active_to.is_(None), Organization.active_to > active_on))
    if inactive_on is not None:
        statement = statement.where(or_(Organization.active_from > inactive_on,
                                        Organization.active_to <= inactive_on))
    return statement


async def organization_names(session: AsyncSession, ids: Collection[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Organization.id, Organization.name).where(Organization.id.in_(ids)))
    return {row.id: row.name for row in rows}


async def organization_words(session: AsyncSession) -> list[tuple[str, str | None]]:
    """(name, short name) of every organization."""
    return [(name, short) for name, short in await session.execute(select(Organization.name,
                                                                           Organization.short_name))]


# --- Departments and practitioners --------------------------------------------------------------------


async def department_names(session: AsyncSession) -> list[str]:
    """Every department's local name, once."""
    return list((await session.scalars(select(Department.local_name).distinct())).all())


async def get_department(session: AsyncSession, organization_id: int, department_id: int) -> Department | None:
    return await session.scalar(select(Department).where(
        Department.id == department_id, Department.organization_id == organization_id))


async def department_by_local_code(session: AsyncSession, organization_id: int, local_code: str
                                   ) -> Department | None:
    return await session.scalar(select(Department).where(
        Department.organization_id == organization_id, Department.local_code == local_code))


def departments_query(organization_id: int, *, active: bool | None) -> Select[Department]:
    statement = select(Department).where(Department.organization_id == organization_id).order_by(Department.id)
    if active is not None:
        statement = statement.where(Department.is_active.is_(active))
    return statement


async def get_practitioner(session: AsyncSession, organization_id: int, practitioner_id: int
                           ) -> Practitioner | None:
    return await session.scalar(select(Practitioner).where(
        Practitioner.id == practitioner_id, Practitioner.organization_id == organization_id))


async def practitioner_by_staff_code(session: AsyncSession, organization_id: int, staff_code: str
                                     ) -> Practitioner | None:
    return await session.scalar(select(Practitioner).where(
        Practitioner.organization_id == organization_id, Practitioner.staff_code == staff_code))


def practitioners_query(organization_id: int, *, department_id: int | None, active: bool | None
                        ) -> Select[Practitioner]:
    statement = (select(Practitioner).where(Practitioner.organization_id == organization_id)
                 .order_by(Practitioner.id))
    if department_id is not None:
        statement = statement.where(Practitioner.department_id == department_id)
    if active is not None:
        statement = statement.where(Practitioner.is_active.is_(active))
    return statement


# --- Client applications ------------------------------------------------------------------------------


async def get_client_app(session: AsyncSession, app_id: int) -> ClientApp | None:
    return await session.get(ClientApp, app_id)


async def client_app_by(session: AsyncSession, column: Literal["code", "name"], value: str) -> ClientApp | None:
    """The client app with this code or name (each unique)."""
    return await session.scalar(select(ClientApp).where(getattr(ClientApp, column) == value))


def client_apps_query(*, channel: str | None, active: bool | None) -> Select[ClientApp]:
    statement = select(ClientApp).order_by(ClientApp.id)
    if channel is not None:
        statement = statement.where(ClientApp.channel == channel)
    if active is not None:
        statement = statement.where(ClientApp.is_active.is_(active))
    return statement


# --- Residents ----------------------------------------------------------------------------------------


async def get_resident(session: AsyncSession, resident_id: int) -> Resident | None:
    return await session.get(Resident, resident_id)


async def resident_trait_rows(session: AsyncSession, resident_ids: Collection[int]) -> list[Any]:
    """id, name, sex, birth date, phone hash and address area of these residents (Core rows, no objects)."""
    if not resident_ids:
        return []
    connection = await session.connection()
    return list(await connection.execute(select(
        Resident.id, Resident.name, Resident.sex, Resident.birth_date, Resident.phone_hash, Resident.address_area_code,
    ).where(Resident.id.in_(sorted(set(resident_ids))))))


async def resident_by_id_number_hash(session: AsyncSession, id_number_hash: str) -> Resident | None:
    return await session.scalar(select(Resident).where(Resident.id_number_hash == id_number_hash))


async def resident_ids_by_id_number_hashes(session: AsyncSession, hashes: Collection[str]) -> dict[str, int]:
    if not hashes:
        return {}
    if is_postgres(session):  # one array: one statement text whatever the count, prepared once, on the driver
        driver = await pg_driver(session)
        found = await driver.fetch(_PG_RESIDENTS_BY_HASH, sorted(set(hashes)))
        return {found_hash: resident_id for found_hash, resident_id in found}
    connection = await session.connection()  # Core: a batch's lookup, no objects loaded
    rows = await connection.execute(select(Resident.id_number_hash, Resident.id)
                                    .where(Resident.id_number_hash.in_(sorted(set(hashes)))))
    return {found_hash: resident_id for found_hash, resident_id in rows}


class StoredResident(NamedTuple):
    """What an import compares of a registered resident (its ID number only as the keyed hash)."""

    id: int
    id_number_hash: str
    name: str
    sex: int
    birth_date: date
    phone_hash: str | None
    phone_enc: str | None
    address_area_code: str | None
    is_active: bool


_STORED_COLUMNS = [Resident.__table__.c[name] for name in StoredResident._fields]
_PG_STORED_BY_HASH = ("SELECT id, id_number_hash, name, sex, birth_date, phone_hash, phone_enc, address_area_code, "
                      "is_active FROM residents WHERE id_number_hash = ANY($1::varchar[])")
# A new resident's columns, in the order insert_residents sends them (the id first).
NEW_RESIDENT_COLUMNS = ("id_number_hash", "id_number_enc", "name", "sex", "birth_date", "phone_hash", "phone_enc",
                        "address_area_code", "is_active", "created_at", "updated_at")
_NEW_RESIDENT_VALUES = operator.itemgetter(*NEW_RESIDENT_COLUMNS)
_PG_NEW_IDS = "SELECT nextval(pg_get_serial_sequence('residents', 'id')) FROM generate_series(1, $1)"


async def residents_to_compare(session: AsyncSession, hashes: Collection[str]) -> dict[str, StoredResident]:
    """The registered residents among these ID number hashes, by hash, in one statement (no objects loaded)."""
    if not hashes:
        return {}
    if is_postgres(session):
        driver = await pg_driver(session)
        found = await driver.fetch(_PG_STORED_BY_HASH, list(hashes))
        return {row[1]: StoredResident(*row) for row in found}
    connection = await session.connection()
    rows = await connection.execute(select(*_STORED_COLUMNS).where(Resident.id_number_hash.in_(list(hashes))))
    return {row[1]: StoredResident(*row) for row in rows}


async def insert_residents(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert new residents (NEW_RESIDENT_COLUMNS of each); their ids, in the same order.

    PostgreSQL: the ids drawn from the table's sequence in one statement, then the rows sent by COPY (the driver
    encodes them; no statement per row). SQLite: one executemany returning the ids in the rows' order."""
    if not rows:
        return []
    if is_postgres(session):
        driver = await pg_driver(session)
        ids = [row[0] for row in await driver.fetch(_PG_NEW_IDS, len(rows))]
        await driver.copy_records_to_table(
            "residents", columns=["id", *NEW_RESIDENT_COLUMNS],
            records=[(resident_id, *_NEW_RESIDENT_VALUES(row)) for resident_id, row in zip(ids, rows, strict=True)])
        return ids
    connection = await session.connection()
    result = await connection.execute(
        insert(Resident).returning(Resident.id, sort_by_parameter_order=True), list(rows))
    return [row[0] for row in result]


async def update_residents(session: AsyncSession, changes: Sequence[tuple[int, Mapping[str, Any]]],
                           now: datetime) -> None:
    """Write each resident's changed columns and stamp its updated_at: one executemany per set of columns that
    change together (an import's changes are mostly of the same few kinds)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for resident_id, columns in changes:
        groups.setdefault(tuple(sorted(columns)), []).append(
            {"resident_id": resident_id, "new_updated_at": now, **{f"new_{k}": v for k, v in columns.items()}})
    if not groups:
        return
    connection = await session.connection()
    for names, parameters in groups.items():
        statement = (update(Resident).where(Resident.id == bindparam("resident_id"))
                     .values({name: bindparam(f"new_{name}") for name in (*names, "updated_at")}))
        await connection.execute(statement, parameters)


async def residents_matching(session: AsyncSession, *, name: str | None = None, birth_date: date | None = None,
                             phone_hash: str | None = None, limit: int) -> list[Resident]:
    """Active residents by name and birth date, or by phone number's keyed hash (at most `limit`)."""
    statement = select(Resident).where(Resident.is_active.is_(True)).order_by(Resident.id).limit(limit)
    if phone_hash is not None:
        statement = statement.where(Resident.phone_hash == phone_hash)
    if name is not None:
        statement = statement.where(Resident.name == name)
    if birth_date is not None:
        statement = statement.where(Resident.birth_date == birth_date)
    return list((await session.scalars(statement)).all())


async def link_candidate_rows(session: AsyncSession, *, name: str | None, birth_date: date | None,
                              phone_hash: str | None, limit: int) -> list[Any]:
    """linkage's blocks in one statement: active residents of the name and birth date, of the birth date alone
    (the name may be misspelt) and of the phone's keyed hash, at most `limit` of each (Core rows of the traits)."""
    blocks = []
    if birth_date is not None and name is not None:
        blocks.append([Resident.name == name, Resident.birth_date == birth_date])
    if birth_date is not None:
        blocks.append([Resident.birth_date == birth_date])
    if phone_hash is not None:
        blocks.append([Resident.phone_hash == phone_hash])
    if not blocks:
        return []
    traits = (Resident.id, Resident.name, Resident.sex, Resident.birth_date, Resident.phone_hash,
              Resident.address_area_code)
    parts = [select(*traits).where(Resident.is_active.is_(True), *block).order_by(Resident.id).limit(limit)
             .subquery().select() for block in blocks]
    connection = await session.connection()
    return list(await connection.execute(union_all(*parts)))


def residents_query(*, name: str | None, address_area_code: str | None, active: bool | None
                    ) -> Select[Resident]:
    statement = select(Resident).order_by(Resident.id)
    if name is not None:
        statement = statement.where(Resident.name == name)
    if address_area_code is not None:
        statement = statement.where(Resident.address_area_code == address_area_code)
    if active is not None:
        statement = statement.where(Resident.is_active.is_(active))
    return statement
