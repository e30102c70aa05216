"""The master patient index: one resident per ID number, its numbers stored only as HMAC + ciphertext.

An ID or phone number never leaves this module whole except in the resident's own view or a platform
administrator's (`reveal`); errors carry the masked form. Every read, search, list and write is audited,
one event per resident concerned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.db.driver import INTEGRITY_ERRORS
from cityhealth.errors import Conflict, Forbidden, NotFound, ValidationFailed
from cityhealth.registry import repository
from cityhealth.registry.identifiers import (
    IdentifierError,
    ResidentId,
    cross_check_resident_id,
    mask_phone,
    mask_resident_id,
    validate_phone,
)
from cityhealth.registry.models import Resident
from cityhealth.registry.protection import ID_NUMBER, PHONE
from cityhealth.registry.schemas import (
    Page,
    ResidentCreate,
    ResidentImport,
    ResidentRead,
    ResidentRevealed,
    ResidentUpdate,
)
from cityhealth.registry.service import (
    Change,
    apply_changes,
    check_area,
    differences,
    flush_unique,
    parse_id_number,
    require_area,
)
from cityhealth.security.audit import REVEALED, Action, record, record_each
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.principals import Principal, Scope

RESOURCE = "resident"


# --- Checks -------------------------------------------------------------------------------------------


def _cross_check(rid: ResidentId, sex: int, birth_date: date) -> None:
    try:
        cross_check_resident_id(rid, sex=sex, birth_date=birth_date)
    except IdentifierError as exc:
        raise ValidationFailed(exc.message, field="id_number", value=rid.masked, rule=exc.rule) from None


def _phone(value: str) -> str:
    try:
        return validate_phone(value)
    except IdentifierError as exc:
        raise ValidationFailed(exc.message, field="phone", value=mask_phone(value), rule=exc.rule) from None


def _exists(rid: ResidentId) -> Conflict:
    return Conflict(f"a resident with ID number {rid.masked} is already registered", code="resident_exists",
                    field="id_number", value=rid.masked, rule="resident.unique_id_number")


# --- Views --------------------------------------------------------------------------------------------


def _view(cipher: FieldCipher, resident: Resident) -> ResidentRead:
    phone = cipher.decrypt(PHONE, resident.phone_enc) if resident.phone_enc else None
    return ResidentRead(
        id=resident.id, id_number_masked=mask_resident_id(cipher.decrypt(ID_NUMBER, resident.id_number_enc)),
        name=resident.name, sex=resident.sex, birth_date=resident.birth_date,
        phone_masked=mask_phone(phone) if phone else None, address_area_code=resident.address_area_code,
        is_active=resident.is_active, created_at=resident.created_at, updated_at=resident.updated_at)


def _revealed(cipher: FieldCipher, resident: Resident) -> ResidentRevealed:
    phone = cipher.decrypt(PHONE, resident.phone_enc) if resident.phone_enc else None
    return ResidentRevealed(
        **_view(cipher, resident).model_dump(),
        id_number=cipher.decrypt(ID_NUMBER, resident.id_number_enc), phone=phone)


def _may_read(principal: Principal | None, resident_id: int) -> bool:
    if principal is None or principal.has(Scope.RESIDENT_READ):
        return True
    return principal.has(Scope.RESIDENT_SELF) and principal.resident_id == resident_id


def may_reveal(principal: Principal | None, resident_id: int) -> bool:
    """Whole numbers go only to the resident themself or a platform administrator."""
    if principal is None or principal.is_platform_admin:
        return True
    return principal.has(Scope.RESIDENT_SELF) and principal.resident_id == resident_id


async def _resident(session: AsyncSession, resident_id: int) -> Resident:
    resident = await repository.get_resident(session, resident_id)
    if resident is None:
        raise NotFound(f"resident {resident_id} not found", field="resident_id", value=resident_id)
    return resident


# --- Use cases ----------------------------------------------------------------------------------------


async def register_resident(session: AsyncSession, clock: Clock, cipher: FieldCipher,
                            principal: Principal | None, data: ResidentCreate) -> ResidentRead:
    """Add a resident to the index; 409 `resident_exists` if the ID number is already registered."""
    resident = await _insert(session, clock, cipher, data, is_active=True)
    record(session, clock, principal, Action.CREATE, RESOURCE, resource_id=resident.id,
           resident_ids=[resident.id])
    return _view(cipher, resident)


def _new_resident(now: datetime, cipher: FieldCipher, data: ResidentCreate, rid: ResidentId, id_hash: str, *,
                  is_active: bool) -> dict[str, Any]:
    """A new resident's columns, after the checks that need no database: its own sex and birth date against
    its ID number (each defaults to the number's), and its phone number."""
    sex = data.sex if data.sex is not None else int(rid.sex)
    birth_date = data.birth_date or rid.birth_date
    _cross_check(rid, sex, birth_date)
    phone = _phone(data.phone) if data.phone is not None else None
    return {
        "id_number_hash": id_hash, "id_number_enc": cipher.encrypt(ID_NUMBER, rid.number), "name": data.name,
        "sex": sex, "birth_date": birth_date, "phone_hash": cipher.lookup_hash(PHONE, phone) if phone else None,
        "phone_enc": cipher.encrypt(PHONE, phone) if phone else None, "address_area_code": data.address_area_code,
        "is_active": is_active, "created_at": now, "updated_at": now}


async def _insert(session: AsyncSession, clock: Clock, cipher: FieldCipher, data: ResidentCreate, *,
                  is_active: bool) -> Resident:
    rid = parse_id_number(data.id_number, clock)
    id_hash = cipher.lookup_hash(ID_NUMBER, rid.number)
    values = _new_resident(clock.now(), cipher, data, rid, id_hash, is_active=is_active)
    if data.address_area_code is not None:
        await require_area(session, data.address_area_code, field="address_area_code")
    if await repository.resident_by_id_number_hash(session, id_hash) is not None:
        raise _exists(rid)
    resident = Resident(**values)
    session.add(resident)
    await flush_unique(session, _exists(rid))
    return resident


def _column_changes(clock: Clock, cipher: FieldCipher, resident: Any, changes: Mapping[str, Any],
                    rid: ResidentId | None, *, number_changed: bool) -> dict[str, Any]:
    """The columns `changes` set on a resident (an ORM row, or a Core row read for comparison), checked as the
    whole record they make: sex and birth date against the ID number (`rid`, else the stored one) when either
    they or the number change, the phone number's format. The phone is compared by keyed hash. The caller
    checks a new address area; the ID number's own columns are the caller's too."""
    columns: dict[str, Any] = {k: changes[k] for k in ("name", "sex", "birth_date", "is_active") if k in changes}
    sex, birth_date = columns.get("sex", resident.sex), columns.get("birth_date", resident.birth_date)
    if number_changed or (sex, birth_date) != (resident.sex, resident.birth_date):
        if rid is None:
            rid = parse_id_number(cipher.decrypt(ID_NUMBER, resident.id_number_enc), clock)
        _cross_check(rid, sex, birth_date)
    if "phone" in changes:
        phone = _phone(changes["phone"]) if changes["phone"] is not None else None
        phone_hash = cipher.lookup_hash(PHONE, phone) if phone else None
        # Compare by keyed hash: re-encrypting an unchanged number would change the row on every retry.
        if phone_hash != resident.phone_hash:
            columns |= {"phone_hash": phone_hash, "phone_enc": cipher.encrypt(PHONE, phone) if phone else None}
    area_code = changes.get("address_area_code", resident.address_area_code)
    if area_code != resident.address_area_code:
        columns["address_area_code"] = area_code
    return columns


async def _change(session: AsyncSession, clock: Clock, cipher: FieldCipher, resident: Resident,
                  changes: Mapping[str, Any]) -> bool:
    """Apply the changes that differ, after checking the resulting record; True if anything changed."""
    number: dict[str, Any] = {}
    rid: ResidentId | None = None
    if "id_number" in changes:
        rid = parse_id_number(changes["id_number"], clock)
        id_hash = cipher.lookup_hash(ID_NUMBER, rid.number)
        if id_hash != resident.id_number_hash:
            if await repository.resident_by_id_number_hash(session, id_hash) is not None:
                raise _exists(rid)
            number = {"id_number_hash": id_hash, "id_number_enc": cipher.encrypt(ID_NUMBER, rid.number)}
    columns = _column_changes(clock, cipher, resident, changes, rid, number_changed=rid is not None) | number
    if columns.get("address_area_code") is not None:
        await require_area(session, columns["address_area_code"], field="address_area_code")
    changed = apply_changes(resident, columns, clock)
    if changed:
        await flush_unique(session, Conflict("a resident with this ID number was registered concurrently",
                                             code="resident_exists", field="id_number",
                                             rule="resident.unique_id_number"))
    return changed


async def get_resident(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal | None,
                       resident_id: int, *, reveal: bool = False) -> ResidentRead:
    """One resident, masked; whole numbers (`reveal`) only for the resident themself or a platform admin."""
    if not _may_read(principal, resident_id):
        raise NotFound(f"resident {resident_id} not found", field="resident_id", value=resident_id)
    if reveal and not may_reveal(principal, resident_id):
        raise _reveal_refused()
    resident = await _resident(session, resident_id)
    record(session, clock, principal, Action.READ, RESOURCE, resource_id=resident.id, resident_ids=[resident.id],
           detail=REVEALED if reveal else None)
    return _revealed(cipher, resident) if reveal else _view(cipher, resident)


def _reveal_refused() -> Forbidden:
    return Forbidden("only the resident themself or a platform administrator may see the whole numbers",
                     code="reveal_not_allowed", field="reveal", value="true", rule="resident.reveal")


def not_registered(id_number: str) -> NotFound:
    """The answer to a lookup that found no one (the number shown masked)."""
    return NotFound(f"no resident has ID number {mask_resident_id(id_number)}", code="resident_not_found",
                    field="id_number", value=mask_resident_id(id_number))


async def find_resident_by_id_number(session: AsyncSession, clock: Clock, cipher: FieldCipher,
                                     principal: Principal | None, id_number: str) -> ResidentRead | None:
    """The resident with this ID number (either form), masked; None if unregistered. Audited when found."""
    rid = parse_id_number(id_number, clock)
    resident = await repository.resident_by_id_number_hash(session, cipher.lookup_hash(ID_NUMBER, rid.number))
    if resident is None:
        return None
    record(session, clock, principal, Action.SEARCH, RESOURCE, resource_id=resident.id,
           resident_ids=[resident.id], detail="lookup by id_number")
    return _view(cipher, resident)


async def match_residents(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal | None,
                          *, purpose: str, id_number: str | None = None, name: str | None = None,
                          birth_date: date | None = None, phone: str | None = None,
                          limit: int = 5) -> list[tuple[int, ResidentRead]]:
    """The residents an identification names (an ID number; a name and birth date; a phone number), masked,
    for a caller that checked its own rule first (`purpose`, e.g. "call:12", goes into the audit trail).

    Every lookup is audited, the one that finds no one too (one event per resident found)."""
    if id_number is not None:
        rid = parse_id_number(id_number, clock)
        found = await repository.resident_by_id_number_hash(session, cipher.lookup_hash(ID_NUMBER, rid.number))
        rows, method = ([found] if found is not None and found.is_active else []), "id_number"
    elif phone is not None:
        rows = await repository.residents_matching(session, phone_hash=cipher.lookup_hash(PHONE, _phone(phone)),
                                                   limit=limit)
        method = "phone"
    elif name is not None and birth_date is not None:
        rows = await repository.residents_matching(session, name=name, birth_date=birth_date, limit=limit)
        method = "name_birth_date"
    else:
        raise ValidationFailed("identify by id_number, by name with birth_date, or by phone", field="id_number",
                               rule="resident.lookup.method")
    record(session, clock, principal, Action.SEARCH, RESOURCE, resource_id=purpose,
           resident_ids=[row.id for row in rows], detail=f"lookup by {method}; {purpose}; found={len(rows)}")
    return [(row.id, _view(cipher, row)) for row in rows]


def id_number_of(cipher: FieldCipher, resident: Resident) -> str:
    """A resident's whole ID number, for a service that acts for them (never shown; the caller audits)."""
    return cipher.decrypt(ID_NUMBER, resident.id_number_enc)


async def resident_of(session: AsyncSession, resident_id: int) -> Resident:
    """A resident's row, unaudited (the caller audits its use); 404 when there is none."""
    return await _resident(session, resident_id)


def view_of(cipher: FieldCipher, resident: Resident) -> ResidentRead:
    """A resident masked (ID and phone numbers), as every read shows it."""
    return _view(cipher, resident)


def phone_of(cipher: FieldCipher, resident: Resident) -> str | None:
    """A resident's whole phone number, for a call back (the caller audits it as revealed)."""
    return cipher.decrypt(PHONE, resident.phone_enc) if resident.phone_enc else None


async def list_residents(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal | None,
                         *, name: str | None = None, address_area_code: str | None = None,
                         active: bool | None = None, limit: int = 100, offset: int = 0) -> Page[ResidentRead]:
    """Residents by exact name and/or address area, masked; one audit event per resident returned."""
    rows, total = await repository.page(session, repository.residents_query(
        name=name, address_area_code=address_area_code, active=active), limit=limit, offset=offset)
    searched = name is not None or address_area_code is not None
    record(session, clock, principal, Action.SEARCH if searched else Action.LIST, RESOURCE,
           resident_ids=[r.id for r in rows])
    return Page(items=[_view(cipher, r) for r in rows], total=total, limit=limit, offset=offset)


async def update_resident(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal | None,
                          resident_id: int, data: ResidentUpdate) -> ResidentRead:
    resident = await _resident(session, resident_id)
    await _change(session, clock, cipher, resident, data.model_dump(exclude_unset=True))
    record(session, clock, principal, Action.UPDATE, RESOURCE, resource_id=resident.id, resident_ids=[resident.id])
    return _view(cipher, resident)


async def deactivate_resident(session: AsyncSession, clock: Clock, cipher: FieldCipher,
                              principal: Principal | None, resident_id: int) -> ResidentRead:
    """Mark the resident inactive (e.g. deceased, merged); the record stays."""
    resident = await _resident(session, resident_id)
    await _change(session, clock, cipher, resident, {"is_active": False})
    record(session, clock, principal, Action.DEACTIVATE, RESOURCE,
           resource_id=resident.id, resident_ids=[resident.id])
    return _view(cipher, resident)


@dataclass(frozen=True, slots=True)
class ImportedResident:
    """One row of a resident import, valid as far as the row alone tells: its fields (`present`: the ones it
    gives, registry/imports.py), its checked ID number and that number's keyed hash."""

    number: int
    data: ResidentImport
    present: frozenset[str]
    rid: ResidentId
    id_hash: str


# The changed columns an import's audit event names (the phone's two columns are one field).
_FIELD_OF_COLUMN = {"phone_hash": "phone", "phone_enc": "phone"}


async def save_residents(session: AsyncSession, clock: Clock, cipher: FieldCipher, rows: Sequence[ImportedResident],
                         *, actor: str, write: bool = True) -> list[Change | ValidationFailed]:
    """Bring the residents of an import's rows (distinct ID numbers) to the fields they give: a new number is
    inserted, a registered one changed where it differs; each written resident audited, the change naming the
    fields it changed. One outcome per row: its Change, or the refusal of the first rule it breaks.

    The whole batch is read in two statements (the residents, the areas it names) and written in one statement
    per kind of write; `write=False` only checks (for an import that already failed)."""
    stored = await repository.residents_to_compare(session, [row.id_hash for row in rows])
    named = {row.data.address_area_code for row in rows if row.data.address_area_code is not None}
    areas = {code: area.is_active for code, area in (await repository.areas_by_code(session, named)).items()}
    now = clock.now()
    outcomes: list[Change | ValidationFailed] = []
    new: list[dict[str, Any]] = []
    changed: list[tuple[int, dict[str, Any]]] = []
    trail: list[tuple[Action, int | None, str]] = []  # in row order; a new resident's id once inserted
    for row in rows:
        current = stored.get(row.id_hash)
        try:
            if current is None:
                values = _new_resident(now, cipher, row.data, row.rid, row.id_hash,
                                       is_active=row.data.is_active is not False)
                area_code = row.data.address_area_code
            else:
                changes = row.data.model_dump(include=set(row.present - {"id_number"}))
                values = differences(current, _column_changes(clock, cipher, current, changes, row.rid,
                                                              number_changed=False))
                area_code = values.get("address_area_code")
            if area_code is not None:
                check_area(area_code, areas.get(area_code), field="address_area_code")
        except ValidationFailed as exc:
            outcomes.append(exc)
            continue
        if current is None:
            new.append(values)
            trail.append((Action.CREATE, None, "import"))
            outcomes.append(Change.CREATED)
        elif values:
            changed.append((current.id, values))
            fields = dict.fromkeys(_FIELD_OF_COLUMN.get(column, column) for column in values)
            trail.append((Action.UPDATE, current.id, f"import; changed {', '.join(fields)}"))
            outcomes.append(Change.UPDATED)
        else:
            outcomes.append(Change.UNCHANGED)
    if not write:
        return outcomes
    try:
        new_ids = iter(await repository.insert_residents(session, new))
    except INTEGRITY_ERRORS as exc:
        raise Conflict("a resident with one of these ID numbers was registered concurrently",
                       code="resident_exists", field="id_number", rule="resident.unique_id_number") from exc
    await repository.update_residents(session, changed, now)
    record_each(session, clock, None, RESOURCE,
                [(action, next(new_ids) if resident_id is None else resident_id, detail)
                 for action, resident_id, detail in trail], actor=actor)
    return outcomes
