"""The master patient index: one resident per ID number, its numbers stored only as HMAC + ciphertext.

An ID or phone number never leaves this module whole except in the resident's own view or a platform
administrator's (`reveal`); errors carry the masked form. Every read, search, list and write is audited,
one event per resident concerned.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
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
    flush_unique,
    parse_id_number,
    require_area,
)
from cityhealth.security.audit import REVEALED, Action, record
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
    resident = await _insert(session, clock, cipher, data, is_active=True, known_absent=False)
    record(session, clock, principal, Action.CREATE, RESOURCE, resource_id=resident.id,
           resident_ids=[resident.id])
    return _view(cipher, resident)


async def _insert(session: AsyncSession, clock: Clock, cipher: FieldCipher, data: ResidentCreate, *,
                  is_active: bool, known_absent: bool) -> Resident:
    rid = parse_id_number(data.id_number, clock)
    sex = data.sex if data.sex is not None else int(rid.sex)
    birth_date = data.birth_date or rid.birth_date
    _cross_check(rid, sex, birth_date)
    phone = _phone(data.phone) if data.phone is not None else None
    if data.address_area_code is not None:
        await require_area(session, data.address_area_code, field="address_area_code")
    id_hash = cipher.lookup_hash(ID_NUMBER, rid.number)
    if not known_absent and await repository.resident_by_id_number_hash(session, id_hash) is not None:
        raise _exists(rid)
    now = clock.now()
    resident = Resident(
        id_number_hash=id_hash, id_number_enc=cipher.encrypt(ID_NUMBER, rid.number), name=data.name, sex=sex,
        birth_date=birth_date, phone_hash=cipher.lookup_hash(PHONE, phone) if phone else None,
        phone_enc=cipher.encrypt(PHONE, phone) if phone else None, address_area_code=data.address_area_code,
        is_active=is_active, created_at=now, updated_at=now)
    session.add(resident)
    await flush_unique(session, _exists(rid))
    return resident


async def _change(session: AsyncSession, clock: Clock, cipher: FieldCipher, resident: Resident,
                  changes: Mapping[str, Any]) -> bool:
    """Apply the changes that differ, after checking the resulting record; True if anything changed."""
    columns: dict[str, Any] = {k: changes[k] for k in ("name", "sex", "birth_date", "is_active") if k in changes}
    rid: ResidentId | None = None
    if "id_number" in changes:
        rid = parse_id_number(changes["id_number"], clock)
        id_hash = cipher.lookup_hash(ID_NUMBER, rid.number)
        if id_hash != resident.id_number_hash:
            if await repository.resident_by_id_number_hash(session, id_hash) is not None:
                raise _exists(rid)
            columns |= {"id_number_hash": id_hash, "id_number_enc": cipher.encrypt(ID_NUMBER, rid.number)}
    sex, birth_date = columns.get("sex", resident.sex), columns.get("birth_date", resident.birth_date)
    if rid is not None or (sex, birth_date) != (resident.sex, resident.birth_date):
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
        if area_code is not None:
            await require_area(session, area_code, field="address_area_code")
        columns["address_area_code"] = area_code
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


async def save_resident(session: AsyncSession, clock: Clock, cipher: FieldCipher, data: ResidentImport,
                        present: set[str], *, actor: str) -> Change:
    """Create, or bring the resident with this ID number to the given fields (imports); audited if written."""
    rid = parse_id_number(data.id_number, clock)
    existing = await repository.resident_by_id_number_hash(session, cipher.lookup_hash(ID_NUMBER, rid.number))
    if existing is None:
        resident = await _insert(session, clock, cipher, data, is_active=data.is_active is not False,
                                 known_absent=True)
        record(session, clock, None, Action.CREATE, RESOURCE, resource_id=resident.id,
               resident_ids=[resident.id], actor=actor)
        return Change.CREATED
    changes = data.model_dump(include=present - {"id_number"})
    if not await _change(session, clock, cipher, existing, changes):
        return Change.UNCHANGED
    record(session, clock, None, Action.UPDATE, RESOURCE, resource_id=existing.id, resident_ids=[existing.id],
           actor=actor)
    return Change.UPDATED
