"""What the other rooms ask the registry, re-exported by `registry.service`, the one registry module they import.

Organizations by id or code and their names, the departments' names, and a resident by id for a use case that
has checked its own access rule and audits what it shows (the hotline desk: a caller within the agent's open
call, the call-back list). Nothing here audits: the asking use case does, with its own reason.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock, business_date
from cityhealth.errors import ValidationFailed
from cityhealth.registry import repository
from cityhealth.registry.identifiers import (
    IdentifierError,
    ResidentId,
    mask_resident_id,
    parse_resident_id,
    validate_phone,
)
from cityhealth.registry.models import Resident
from cityhealth.registry.protection import ID_NUMBER, PHONE
from cityhealth.registry.schemas import ResidentRead
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.principals import Principal


@dataclass(frozen=True)
class OrganizationRef:
    """An organization as another room names it."""

    id: int
    code: str
    name: str


async def organization_by_id(session: AsyncSession, organization_id: int) -> OrganizationRef | None:
    found = await repository.get_organization(session, organization_id)
    return OrganizationRef(found.id, found.code, found.name) if found is not None else None


async def organization_by_code(session: AsyncSession, code: str) -> OrganizationRef | None:
    found = await repository.organization_by(session, "code", code)
    return OrganizationRef(found.id, found.code, found.name) if found is not None else None


async def organization_ids_by_code(session: AsyncSession, codes: Collection[str]) -> dict[str, int]:
    """The ids of the organizations among `codes` that exist, by code."""
    return await repository.organization_ids_by_code(session, codes)


@dataclass
class OrganizationIds:
    """organization_ids_by_code for a long-running process that asks about the same few codes all day (the lab
    listener crediting its senders): an id found is trusted for `ttl` without asking again. A code not found is
    asked again every time, so an organization registered a moment ago counts at once."""

    clock: Clock
    ttl: timedelta = timedelta(seconds=60)
    _known: dict[str, tuple[int, datetime]] = field(default_factory=dict)

    async def by_code(self, session: AsyncSession, codes: Collection[str]) -> dict[str, int]:
        now = self.clock.now()
        found: dict[str, int] = {}
        missing: set[str] = set()
        for code in codes:
            entry = self._known.get(code)
            if entry is not None and timedelta(0) <= now - entry[1] < self.ttl:
                found[code] = entry[0]
            else:
                missing.add(code)
        if missing:
            fresh = await repository.organization_ids_by_code(session, missing)
            self._known.update({code: (organization_id, now) for code, organization_id in fresh.items()})
            found.update(fresh)
        return found


async def organization_names(session: AsyncSession, ids: Collection[int]) -> dict[int, str]:
    """The names of the organizations `ids` (those that exist)."""
    return await repository.organization_names(session, ids)


async def organization_words(session: AsyncSession) -> list[tuple[str, str | None]]:
    """(name, short name) of every organization: the words a text search must keep whole."""
    return await repository.organization_words(session)


async def department_names(session: AsyncSession) -> list[str]:
    """Every department's local name, once."""
    return await repository.department_names(session)


# The resident functions are registry.residents' (which builds on registry.service, hence the imports inside).


async def match_residents(session: AsyncSession, clock: Clock, cipher: FieldCipher, principal: Principal | None,
                          *, purpose: str, id_number: str | None = None, name: str | None = None,
                          birth_date: date | None = None, phone: str | None = None) -> list[tuple[int, ResidentRead]]:
    """The residents an identification names, masked; audited with `purpose` (registry/residents.py)."""
    from cityhealth.registry import residents

    return await residents.match_residents(session, clock, cipher, principal, purpose=purpose, id_number=id_number,
                                           name=name, birth_date=birth_date, phone=phone)


async def resident_view(session: AsyncSession, cipher: FieldCipher, resident_id: int) -> ResidentRead:
    """A resident masked, as every read shows them (unaudited: the caller audits); 404 when there is none."""
    from cityhealth.registry import residents

    return residents.view_of(cipher, await residents.resident_of(session, resident_id))


async def resident_id_number(session: AsyncSession, cipher: FieldCipher, resident_id: int) -> str:
    """A resident's whole ID number, for a service acting for them (never shown; the caller audits)."""
    from cityhealth.registry import residents

    return residents.id_number_of(cipher, await residents.resident_of(session, resident_id))


async def resident_phone(session: AsyncSession, cipher: FieldCipher, resident_id: int) -> str | None:
    """A resident's whole phone number, for a call back (the caller audits it as revealed)."""
    from cityhealth.registry import residents

    return residents.phone_of(cipher, await residents.resident_of(session, resident_id))


def parse_id_number(value: str, clock: Clock, *, field: str = "id_number", today: date | None = None) -> ResidentId:
    """A checked ID number (15-digit legacy forms converted to 18), or 422 with the masked value. Birth dates are
    bounded by the clock's business date, or by `today` if given (a batch reads the clock once)."""
    try:
        return parse_resident_id(value, today=today or business_date(clock.now()))
    except IdentifierError as exc:
        raise ValidationFailed(exc.message, field=field, value=mask_resident_id(value), rule=exc.rule) from None


async def resident_for_account(session: AsyncSession, id_number_hash: str) -> Resident | None:
    """The resident an account registration or login names, unaudited: the caller audits the attempt."""
    return await repository.resident_by_id_number_hash(session, id_number_hash)


def id_number_hash(cipher: FieldCipher, clock: Clock, value: str) -> str | None:
    """The keyed hash the master index is searched by, of `value` if it is a valid ID number (15-digit legacy
    forms converted to 18), else None; for a room that receives ID numbers from another system (lab messages)."""
    try:
        number = parse_resident_id(value, today=business_date(clock.now())).number
    except IdentifierError:
        return None
    return cipher.lookup_hash(ID_NUMBER, number)


async def resident_ids_by_id_number_hash(session: AsyncSession, hashes: Collection[str]) -> dict[str, int]:
    """The residents whose ID numbers have these keyed hashes, by hash (unaudited: the caller audits)."""
    return await repository.resident_ids_by_id_number_hashes(session, hashes)


@dataclass(frozen=True)
class ResidentTraits:
    """What patient linkage compares of a resident: no ID number, the phone only as its keyed hash."""

    id: int
    name: str
    sex: int
    birth_date: date
    phone_hash: str | None
    address_area_code: str | None


def phone_hash(cipher: FieldCipher, value: str) -> str | None:
    """The keyed hash the master index keeps of `value` if it is a valid phone number, else None."""
    try:
        return cipher.lookup_hash(PHONE, validate_phone(value))
    except IdentifierError:
        return None


async def link_candidates(session: AsyncSession, *, name: str | None, birth_date: date | None,
                          phone_hash: str | None, limit: int = 10) -> list[ResidentTraits]:
    """The active residents sharing a name and birth date, or a birth date alone, or a phone number (blocking
    for the match score), unaudited: linkage reads no personal value out of them."""
    found: dict[int, ResidentTraits] = {}
    for row in await repository.link_candidate_rows(session, name=name, birth_date=birth_date,
                                                    phone_hash=phone_hash, limit=limit):
        found.setdefault(row.id, ResidentTraits(row.id, row.name, row.sex, row.birth_date, row.phone_hash,
                                                row.address_area_code))
    return list(found.values())


async def resident_traits(session: AsyncSession, resident_id: int) -> ResidentTraits | None:
    return (await residents_traits(session, [resident_id])).get(resident_id)


async def residents_traits(session: AsyncSession, resident_ids: Collection[int]) -> dict[int, ResidentTraits]:
    """What linkage compares of these residents, by id, in one statement (unaudited, as link_candidates)."""
    rows = await repository.resident_trait_rows(session, resident_ids)
    return {row.id: ResidentTraits(row.id, row.name, row.sex, row.birth_date, row.phone_hash, row.address_area_code)
            for row in rows}
