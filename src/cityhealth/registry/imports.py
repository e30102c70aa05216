"""Bulk import of registry records, and the reference data shipped with the package.

An import is one transaction: every row is checked (and written, so later rows may refer to earlier
ones), every problem is collected with its row number, field and rule, and if there is any the caller's
transaction rolls back, leaving nothing written. A row whose natural key (area code, organization code or
else name, department local code, staff code, app code, ID number) exists updates that record, writing
only what differs, so importing the same file twice changes nothing the second time.

Residents, whose files run to millions of rows, go a batch at a time instead of a row at a time (the same rules:
registry/residents.py save_residents): a batch is validated in one call, read in one statement and written in one
statement per kind of write. Once a row is bad, the later batches are still checked but no longer written.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock, business_date
from cityhealth.errors import DomainError, ValidationFailed
from cityhealth.registry import (
    client_apps,
    departments,
    facilities,
    facility_reference,
    facility_repository,
    repository,
    residents,
    service,
)
from cityhealth.registry.identifiers import mask_phone, mask_resident_id
from cityhealth.registry.models import Area, ClientApp, Department, Organization, Practitioner, Resident
from cityhealth.registry.protection import ID_NUMBER
from cityhealth.registry.schemas import (
    AreaImport,
    ClientAppImport,
    DepartmentImport,
    OrganizationImport,
    PractitionerImport,
    ResidentImport,
)
from cityhealth.registry.service import Change
from cityhealth.security.crypto import FieldCipher

IMPORT_SCHEMAS: dict[str, type[BaseModel]] = {
    "areas": AreaImport,
    "organizations": OrganizationImport,
    "departments": DepartmentImport,
    "practitioners": PractitionerImport,
    "client-apps": ClientAppImport,
    "residents": ResidentImport,
}
_TABLES = {"areas": Area, "organizations": Organization, "departments": Department,
           "practitioners": Practitioner, "client-apps": ClientApp, "residents": Resident}
# More errors than this are counted, not listed: a wholly wrong file must not flood the operator.
MAX_LISTED_ERRORS = 1000
_SENSITIVE = {"id_number": mask_resident_id, "phone": mask_phone}
_LIST_SEPARATORS = re.compile(r"[;,\s]+")

# The institutions the bulletin names were active in the month it reports; their real start dates are not
# in the source, so the reference data takes the first day of that month.
REFERENCE_ACTIVE_FROM = date(2022, 6, 1)
_LEVEL_ORDER = {"province": 0, "city": 1, "district": 2, "reporting_unit": 3}

Row = tuple[int, object]


@dataclass
class ImportReport:
    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def count(self, change: Change) -> None:
        self.rows += 1
        setattr(self, change.value, getattr(self, change.value) + 1)


def _clean(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Strip keys and text; an empty cell means null. A list column may come as "a;b" from a CSV cell."""
    cleaned: dict[str, Any] = {}
    for key, value in raw.items():
        text = value.strip() if isinstance(value, str) else value
        if str(key).strip() == "maps_to" and isinstance(text, str) and text:
            text = [part for part in _LIST_SEPARATORS.split(text) if part]
        cleaned[str(key).strip()] = None if text == "" else text
    return cleaned


@functools.cache
def _kept_as_is(kind: str) -> frozenset[str]:
    columns = _TABLES[kind].__table__.columns
    return frozenset({"maps_to"} | {c.name for c in columns if not c.nullable})


def _present(kind: str, data: BaseModel) -> set[str]:
    """The fields the row gives. A null for a column that cannot be null means "leave as is"."""
    keeps_as_is, values = _kept_as_is(kind), data.__dict__
    return {name for name in data.model_fields_set if name not in keeps_as_is or values[name] is not None}


def _pick(data: BaseModel, present: set[str], fields: Iterable[str]) -> dict[str, Any]:
    return {name: getattr(data, name) for name in fields if name in present}


def _error(row: int, field: str | None, rule: str | None, message: str, value: object) -> dict[str, Any]:
    if field in _SENSITIVE and isinstance(value, str):
        value = _SENSITIVE[field](value)
    shown = value if isinstance(value, str | int | float | bool) or value is None else None
    return {"row": row, "field": field, "rule": rule, "message": message, "value": shown}


async def _organization_id(session: AsyncSession, code: str | None, field: str) -> int | None:
    if code is None:
        return None
    organization = await repository.organization_by(session, "code", code)
    if organization is None:
        raise ValidationFailed(f"{field}: no organization has code {code}", field=field, value=code,
                               rule="organization.unknown")
    return organization.id


async def _save_area(session: AsyncSession, clock: Clock, data: AreaImport, present: set[str]) -> Change:
    existing = await repository.get_area(session, data.code)
    if existing is None:
        await service.insert_area(session, clock, data, is_active=data.is_active is not False)
        return Change.CREATED
    if data.level != existing.level:
        raise ValidationFailed(f"level: area {data.code} is a {existing.level}; its level cannot change",
                               field="level", value=data.level, rule="area.level_immutable")
    changes = _pick(data, present, ("name", "parent_code", "maps_to", "is_active"))
    return Change.UPDATED if await service.change_area(session, clock, existing, changes) else Change.UNCHANGED


_ADDRESS_FIELDS = ("address_line", "address_city", "address_district", "address_state", "postal_code",
                   "booking_phone")
_ORGANIZATION_FIELDS = ("code", "name", "short_name", "uscc", "ws218_type", "level", "kind", "area_code",
                        "active_from", "active_to", *_ADDRESS_FIELDS)


async def _save_organization(session: AsyncSession, clock: Clock, data: OrganizationImport,
                             present: set[str]) -> Change:
    values = _pick(data, present, _ORGANIZATION_FIELDS)
    if "parent_code" in present:
        values["parent_id"] = await _organization_id(session, data.parent_code, "parent_code")
    # A row without a code is matched by name: reference data and hand-made files rarely know the code.
    existing = await repository.organization_by(session, "code", data.code) if data.code else \
        await repository.organization_by(session, "name", data.name)
    if existing is None:
        await service.insert_organization(session, clock, values)
        return Change.CREATED
    values.pop("code", None)
    changed = await service.change_organization(session, clock, existing, values)
    return Change.UPDATED if changed else Change.UNCHANGED


async def _save_department(session: AsyncSession, clock: Clock, data: DepartmentImport,
                           present: set[str]) -> Change:
    organization_id = await _organization_id(session, data.organization_code, "organization_code")
    assert organization_id is not None  # noqa: S101 - organization_code is required by the schema
    values = _pick(data, present, ("subject_code", "local_code", "local_name", "is_active"))
    existing = await repository.department_by_local_code(session, organization_id, data.local_code)
    if existing is None:
        await departments.insert_department(session, clock, organization_id, values)
        return Change.CREATED
    changed = service.apply_changes(existing, values, clock)
    await session.flush()
    return Change.UPDATED if changed else Change.UNCHANGED


async def _save_practitioner(session: AsyncSession, clock: Clock, data: PractitionerImport,
                             present: set[str]) -> Change:
    organization_id = await _organization_id(session, data.organization_code, "organization_code")
    assert organization_id is not None  # noqa: S101 - organization_code is required by the schema
    values = _pick(data, present, ("staff_code", "name", "title", "is_active"))
    if "department_local_code" in present:
        department = None
        if data.department_local_code is not None:
            department = await repository.department_by_local_code(
                session, organization_id, data.department_local_code)
            if department is None:
                raise ValidationFailed(
                    f"department_local_code: organization {data.organization_code} has no department "
                    f"{data.department_local_code}", field="department_local_code",
                    value=data.department_local_code, rule="practitioner.department")
        values["department_id"] = department.id if department else None
    existing = await repository.practitioner_by_staff_code(session, organization_id, data.staff_code)
    if existing is None:
        await departments.insert_practitioner(session, clock, organization_id, values)
        return Change.CREATED
    changed = service.apply_changes(existing, values, clock)
    await session.flush()
    return Change.UPDATED if changed else Change.UNCHANGED


async def _save_client_app(session: AsyncSession, clock: Clock, data: ClientAppImport,
                           present: set[str]) -> Change:
    values = _pick(data, present, ("code", "name", "channel", "other_channels", "operator", "is_active"))
    if "organization_code" in present:
        values["organization_id"] = await _organization_id(session, data.organization_code, "organization_code")
    existing = await repository.client_app_by(session, "code", data.code)
    if existing is None:
        await client_apps.insert_client_app(session, clock, values)
        return Change.CREATED
    changed = await client_apps.change_client_app(session, clock, existing, values)
    return Change.UPDATED if changed else Change.UNCHANGED


def _natural_key(kind: str, data: Any) -> tuple[str, object]:
    """The field that identifies a row's record, and its value (for duplicate detection within a file)."""
    if kind == "organizations":
        return ("code", data.code) if data.code else ("name", data.name)
    if kind == "departments":
        return "local_code", (data.organization_code, data.local_code)
    if kind == "practitioners":
        return "staff_code", (data.organization_code, data.staff_code)
    return "code", data.code


class _Problems:
    """An import's bad rows: every one counted, the first MAX_LISTED_ERRORS problems listed, in row order."""

    def __init__(self) -> None:
        self.rows = 0
        self.errors: list[dict[str, Any]] = []

    def add(self, problems: list[dict[str, Any]]) -> None:
        self.rows += 1
        self.errors.extend(problems[: max(0, MAX_LISTED_ERRORS - len(self.errors))])

    def raise_if_any(self, kind: str, good_rows: int) -> None:
        if self.rows:
            raise ValidationFailed(
                f"{self.rows} of {good_rows + self.rows} {kind} rows are invalid; nothing was imported",
                code="import_failed", errors=self.errors)


def _validation_problems(number: int, exc: ValidationError) -> list[dict[str, Any]]:
    return [_error(number, ".".join(str(p) for p in item["loc"]) or None, item["type"], item["msg"],
                   item.get("input")) for item in exc.errors()]


def _domain_problem(number: int, exc: DomainError) -> list[dict[str, Any]]:
    return [_error(number, exc.field, exc.rule or exc.code, exc.message, exc.value)]


def _shape_problem(number: int) -> list[dict[str, Any]]:
    return _domain_problem(number, ValidationFailed("a row must be an object of field names to values", field="row",
                                                    value=None, rule="import.row_shape"))


async def import_records(session: AsyncSession, clock: Clock, kind: str, rows: Iterable[Row], *,
                         cipher: FieldCipher | None = None, actor: str = "cli",
                         progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import (row number, record) pairs of one kind; raises ValidationFailed listing every bad row."""
    schema = IMPORT_SCHEMAS.get(kind)
    if schema is None:
        raise ValidationFailed(f"kind: unknown import kind {kind}; use one of {', '.join(IMPORT_SCHEMAS)}",
                               field="kind", value=kind, rule="import.kind")
    if kind == "residents":
        if cipher is None:
            raise ValueError("importing residents needs the field cipher")
        return await _import_residents(session, clock, rows, cipher, actor, progress)
    report = ImportReport(kind)
    problems = _Problems()
    seen: dict[tuple[str, object], int] = {}
    for number, raw in rows:
        try:
            if not isinstance(raw, Mapping):
                problems.add(_shape_problem(number))
                continue
            data: Any = schema.model_validate(_clean(raw))
            field, key = _natural_key(kind, data)
            if (field, key) in seen:
                raise ValidationFailed(f"{field}: the same record as row {seen[field, key]}", field=field,
                                       value=getattr(data, field), rule="import.duplicate_key")
            seen[field, key] = number
            report.count(await _save(session, clock, kind, data, _present(kind, data)))
        except ValidationError as exc:
            problems.add(_validation_problems(number, exc))
        except DomainError as exc:
            problems.add(_domain_problem(number, exc))
        finally:
            if progress is not None:
                progress(1)
    problems.raise_if_any(kind, report.rows)
    return report


async def _save(session: AsyncSession, clock: Clock, kind: str, data: Any, present: set[str]) -> Change:
    if kind == "areas":
        return await _save_area(session, clock, data, present)
    if kind == "organizations":
        return await _save_organization(session, clock, data, present)
    if kind == "departments":
        return await _save_department(session, clock, data, present)
    if kind == "practitioners":
        return await _save_practitioner(session, clock, data, present)
    return await _save_client_app(session, clock, data, present)


@contextlib.contextmanager
def heap_frozen() -> Iterator[None]:
    """For a command importing a large file: the objects alive before the import (the modules, the file's rows) kept
    out of the garbage collector's full passes, then handed back to it.

    Each batch leaves thousands of objects alive until its transaction ends (audit events, rows to write), so full
    passes come every few batches, and each walked the whole file again: a fifth of the CPU of a 40,000-row load.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


# Residents come in files of millions: they are checked, compared and written a batch at a time (one statement per
# kind of read or write, registry/residents.py save_residents), never row by row.
RESIDENT_BATCH_ROWS = 2_000
_RESIDENT_ROWS = TypeAdapter(list[ResidentImport])


async def _import_residents(session: AsyncSession, clock: Clock, rows: Iterable[Row], cipher: FieldCipher,
                            actor: str, progress: Callable[[int], None] | None) -> ImportReport:
    report = ImportReport("residents")
    problems = _Problems()
    seen: dict[str, int] = {}  # ID number hash → the row that gave it
    pending = iter(rows)
    while batch := list(itertools.islice(pending, RESIDENT_BATCH_ROWS)):
        found: dict[int, list[dict[str, Any]]] = {}  # a bad row's problems, by its place in the batch
        checked: list[tuple[int, residents.ImportedResident]] = []
        today = business_date(clock.now())
        for place, number, data in _validated_residents(batch, found):
            try:
                rid = service.parse_id_number(data.id_number, clock, today=today)
                id_hash = cipher.lookup_hash(ID_NUMBER, rid.number)
                if id_hash in seen:
                    raise ValidationFailed(f"id_number: the same record as row {seen[id_hash]}", field="id_number",
                                           value=data.id_number, rule="import.duplicate_key")
            except DomainError as exc:
                found[place] = _domain_problem(number, exc)
                continue
            seen[id_hash] = number
            checked.append((place, residents.ImportedResident(
                number, data, frozenset(_present("residents", data)), rid, id_hash)))
        outcomes = await residents.save_residents(session, clock, cipher, [row for _, row in checked], actor=actor,
                                                  write=not (problems.rows or found))
        for (place, row), outcome in zip(checked, outcomes, strict=True):
            if isinstance(outcome, Change):
                report.count(outcome)
            else:
                found[place] = _domain_problem(row.number, outcome)
        for place in sorted(found):
            problems.add(found[place])
        if progress is not None:
            progress(len(batch))
    problems.raise_if_any("residents", report.rows)
    return report


def _validated_residents(batch: list[Row], found: dict[int, list[dict[str, Any]]]
                         ) -> list[tuple[int, int, ResidentImport]]:
    """The batch's rows that pass the schema, as (place in the batch, row number, fields); the others' problems
    go into `found`. The whole batch is validated in one call; only a batch with a bad row is gone through again
    row by row, to keep its good rows."""
    places: list[int] = []
    cleaned: list[dict[str, Any]] = []
    for place, (number, raw) in enumerate(batch):
        if isinstance(raw, Mapping):
            places.append(place)
            cleaned.append(_clean(raw))
        else:
            found[place] = _shape_problem(number)
    try:
        return [(place, batch[place][0], data)
                for place, data in zip(places, _RESIDENT_ROWS.validate_python(cleaned), strict=True)]
    except ValidationError:
        pass
    valid = []
    for place, fields in zip(places, cleaned, strict=True):
        number = batch[place][0]
        try:
            valid.append((place, number, ResidentImport.model_validate(fields)))
        except ValidationError as exc:
            found[place] = _validation_problems(number, exc)
    return valid


# --- Reference data -----------------------------------------------------------------------------------


def reference_names() -> list[str]:
    folder = resources.files("cityhealth.registry.reference")
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))


def _reference(name: str) -> dict[str, Any]:
    if name not in reference_names():
        raise ValidationFailed(f"name: no reference data set {name}; available: {', '.join(reference_names())}",
                               field="name", value=name, rule="reference.unknown")
    text = resources.files("cityhealth.registry.reference").joinpath(f"{name}.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _parents_first(organizations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ordered: list[dict[str, Any]] = []
    placed: set[str] = set()
    pending = list(organizations)
    while pending:
        ready = [o for o in pending if o.get("campus_of") is None or o["campus_of"] in placed]
        if not ready:
            raise ValueError("reference data: campus_of forms a cycle or names a missing organization")
        ordered += ready
        placed |= {o["name"] for o in ready}
        pending = [o for o in pending if o["name"] not in placed]
    return ordered


async def load_reference(session: AsyncSession, clock: Clock, name: str) -> dict[str, ImportReport]:
    """Load a shipped reference data set (areas, institutions, client apps); loading it again changes nothing."""
    data = _reference(name)
    areas = sorted(data["areas"], key=lambda a: _LEVEL_ORDER[a["level"]])
    area_rows = [{k: a[k] for k in ("code", "name", "level", "parent_code", "maps_to") if k in a} for a in areas]

    organizations = _parents_first(data["organizations"])
    parents = {o["campus_of"] for o in organizations if o.get("campus_of")}
    known = {p: await repository.organization_by(session, "name", p) for p in parents}
    # A parent is loaded before its campuses; one that is not yet registered gets its platform code.
    parent_codes = {p: org.code if org else service.platform_organization_code(p) for p, org in known.items()}
    organization_rows = [
        {"name": o["name"], "short_name": o["short_name"], "uscc": o["uscc"], "ws218_type": o["ws218_type"],
         "level": o["level"], "kind": o["kind"], "area_code": o["area_code"], "active_from": REFERENCE_ACTIVE_FROM,
         "parent_code": parent_codes[o["campus_of"]] if o.get("campus_of") else None,
         **{k: o[k] for k in _ADDRESS_FIELDS if k in o}}
        for o in organizations
    ]
    app_rows = [{k: a[k] for k in ("code", "name", "channel", "other_channels", "operator") if k in a}
                for a in data["client_apps"]]
    return {
        "areas": await import_records(session, clock, "areas", enumerate(area_rows, 1)),
        "organizations": await import_records(session, clock, "organizations", enumerate(organization_rows, 1)),
        "facilities": await _load_facilities(session, clock, name, organizations),
        "client-apps": await import_records(session, clock, "client-apps", enumerate(app_rows, 1)),
    }


async def _load_facilities(session: AsyncSession, clock: Clock, name: str,
                           organizations: list[dict[str, Any]]) -> ImportReport:
    """The demo's facility profiles of the set's institutions (registry/facility_reference.py), audited as the
    reference loader's."""
    report = ImportReport("facilities")
    for institution in organizations:
        profile = facility_reference.demo_profile(institution)
        organization = await repository.organization_by(session, "name", institution["name"])
        if profile is None or organization is None:
            continue
        existed = await facility_repository.get_profile(session, organization.id) is not None
        _, changed = await facilities.put_profile(session, clock, None, organization.id, profile,
                                                  actor=f"reference:{name}")
        report.count(Change.UNCHANGED if not changed else Change.UPDATED if existed else Change.CREATED)
    return report
