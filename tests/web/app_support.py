"""Helpers of the resident app's tests: residents with accounts on a phone, the SMS code from the dev sink."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
from tests.factories.booking import add_resident
from tests.web.conftest import RESIDENT_PASSWORD, csrf_of

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security import sms

_TOKEN = re.compile(r'name="token" value="([^"]+)"')
_CODE = re.compile(r"验证码 ([0-9]{6})")


@dataclass(frozen=True)
class Member:
    resident_id: int
    id_number: str
    name: str
    phone: str


async def account_on_phone(client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
                           seq: int, phone: str) -> Member:
    """A master-index resident with an account (registered through the API) on `phone`."""
    resident_id, number = await add_resident(database, settings, clock.now(), seq)
    response = await client.post("/api/auth/residents/register", json={
        "id_number": number, "name": f"居民{seq}", "phone": phone, "password": RESIDENT_PASSWORD})
    assert response.status_code == 201, response.text
    return Member(resident_id, number, f"居民{seq}", phone)


def token_of(html: str) -> str:
    found = _TOKEN.search(html)
    assert found is not None, "the page carries no challenge token"
    return found.group(1)


async def last_code(database: Database, settings: Settings, clock: SimulatedClock) -> str:
    """The code of the last text the outbox holds, taken as the development sink takes it."""
    async with database.transaction() as session:
        taken = await sms.deliver_to_dev_sink(session, clock, settings)
    assert taken, "no text in the outbox"
    found = _CODE.search(taken[-1].text)
    assert found is not None, taken[-1].text
    return found.group(1)


async def ask_code(client: httpx.AsyncClient, phone: str, *, path: str = "/app/login") -> httpx.Response:
    form = await client.get(path)
    return await client.post(path, data={"phone": phone, "csrf_token": csrf_of(form.text)})


async def enter_code(client: httpx.AsyncClient, asked: httpx.Response, code: str) -> httpx.Response:
    return await client.post("/app/login/code", data={"token": token_of(asked.text), "code": code,
                                                     "csrf_token": csrf_of(asked.text)})


async def app_sign_in(client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
                      phone: str) -> httpx.Response:
    asked = await ask_code(client, phone)
    assert asked.status_code == 200, asked.text
    return await enter_code(client, asked, await last_code(database, settings, clock))
