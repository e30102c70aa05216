"""`cityhealth keys rotate`: every encrypted column moves to the new key; reads work throughout; re-runs are no-ops."""

from __future__ import annotations

import base64

import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import Column, Integer, String, Table, select

from cityhealth.config import Settings
from cityhealth.db.base import Base
from cityhealth.registry.models import Resident
from cityhealth.registry.protection import ID_NUMBER, PHONE
from cityhealth.security.crypto import FieldCipher, Purpose
from cityhealth.security.keys import KNOWN_COLUMNS, UnknownKeyError, count_stale, encrypted_columns, rotate_column
from cityhealth.security.models import ResidentAccount, StaffUser
from cityhealth.security.principals import Role
from tests.factories.security import headers_for, resident
from tests.security.support import add_residents, add_staff

OLD, NEW, LOOKUP = b"o" * 32, b"n" * 32, b"l" * 32


@pytest.fixture
def settings(settings: Settings) -> Settings:
    def key(raw: bytes) -> SecretStr:
        return SecretStr(base64.urlsafe_b64encode(raw).decode())

    return settings.model_copy(update={"field_encryption_key": key(OLD), "lookup_hmac_key": key(LOOKUP)})


async def _plaintexts(app: FastAPI, cipher: FieldCipher) -> dict[str, list[str]]:
    async with app.state.database.sessions() as session:
        residents = (await session.execute(select(Resident).order_by(Resident.id))).scalars().all()
        accounts = (await session.execute(select(ResidentAccount))).scalars().all()
        users = (await session.execute(select(StaffUser).where(StaffUser.totp_secret_enc.is_not(None)))).scalars().all()
    return {
        "id_numbers": [cipher.decrypt(ID_NUMBER, r.id_number_enc) for r in residents],
        "phones": [cipher.decrypt(PHONE, r.phone_enc) for r in residents if r.phone_enc],
        "account_phones": [cipher.decrypt(Purpose.ACCOUNT_PHONE, a.phone_enc) for a in accounts],
        "totp": [cipher.decrypt(Purpose.STAFF_TOTP_SECRET, u.totp_secret_enc or "") for u in users],
        "hashes": [r.id_number_hash for r in residents],
    }


async def _seed(app: FastAPI) -> None:
    people = await add_residents(app, 7)
    for person in people[:3]:
        await headers_for(app, resident(person.id))  # an account with an encrypted phone
    await add_staff(app, "agent", Role.HOTLINE_AGENT)  # an encrypted TOTP secret


async def _rotate_all(app: FastAPI, cipher: FieldCipher, batch: int = 2) -> int:
    return sum([(await rotate_column(app.state.database, cipher, item, batch=batch)).rotated
                for item in encrypted_columns()])


async def test_rotation_moves_every_value_to_the_new_key_and_keeps_it_readable(app: FastAPI) -> None:
    await _seed(app)
    before = await _plaintexts(app, FieldCipher(OLD, LOOKUP))
    rotating = FieldCipher(NEW, LOOKUP, [OLD])
    rotated = await _rotate_all(app, rotating)
    assert rotated == 7 + 7 + 3 + 1
    assert await _plaintexts(app, FieldCipher(NEW, LOOKUP)) == before  # the old key is no longer needed
    for item in encrypted_columns():
        assert await count_stale(app.state.database, rotating, item) == 0


async def test_rotation_is_idempotent(app: FastAPI) -> None:
    await _seed(app)
    rotating = FieldCipher(NEW, LOOKUP, [OLD])
    await _rotate_all(app, rotating)
    assert await _rotate_all(app, rotating) == 0


async def test_reads_work_with_both_generations_mid_rotation(app: FastAPI) -> None:
    await _seed(app)
    before = await _plaintexts(app, FieldCipher(OLD, LOOKUP))
    rotating = FieldCipher(NEW, LOOKUP, [OLD])
    [id_numbers] = [item for item in KNOWN_COLUMNS if item.label == "residents.id_number_enc"]
    await rotate_column(app.state.database, rotating, id_numbers)  # one column done, the others not yet
    assert await _plaintexts(app, rotating) == before


async def test_an_unknown_key_stops_the_rotation_naming_the_row(app: FastAPI) -> None:
    await _seed(app)
    stranger = FieldCipher(NEW, LOOKUP)  # the old key was not configured as a previous key
    [id_numbers] = [item for item in KNOWN_COLUMNS if item.label == "residents.id_number_enc"]
    with pytest.raises(UnknownKeyError, match=r"residents.id_number_enc row \d+"):
        await rotate_column(app.state.database, stranger, id_numbers)


def test_columns_declared_by_later_rooms_are_found() -> None:
    table = Table("probe_encrypted", Base.metadata, Column("id", Integer, primary_key=True),
                  Column("secret_enc", String, info={"encrypted_purpose": "probe.secret"}))
    try:
        assert ("probe_encrypted.secret_enc", "probe.secret") in {(c.label, c.purpose) for c in encrypted_columns()}
    finally:
        Base.metadata.remove(table)
