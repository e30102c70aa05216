"""The resident app's sign-in and registration with the phone and a one-time SMS code, and every refusal."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from tests.factories.booking import World, add_resident
from tests.web.app_support import Member, account_on_phone, app_sign_in, ask_code, enter_code, last_code, token_of
from tests.web.conftest import csrf_of
from tests.web.pages_support import audit_events

from cityhealth.clock import SimulatedClock
from cityhealth.config import Environment, Settings
from cityhealth.db.engine import Database
from cityhealth.errors import Forbidden
from cityhealth.security import sms
from cityhealth.security.models import ResidentAccount, SmsCode, SmsMessage
from cityhealth.web.session import SESSION_COOKIE

PHONE = "13900001111"


@pytest.fixture
async def member(client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
                 world: World) -> Member:
    return await account_on_phone(client, database, settings, clock, 1, PHONE)


async def _codes(database: Database) -> list[SmsCode]:
    async with database.transaction() as session:
        return list((await session.execute(select(SmsCode))).scalars())


async def test_the_right_code_signs_in_and_opens_the_home(
        client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        member: Member) -> None:
    signed_in = await app_sign_in(client, database, settings, clock, PHONE)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/app/"
    assert SESSION_COOKIE in signed_in.cookies
    home = await client.get("/app/")
    assert home.status_code == 200
    assert 'href="/app/doctor"' in home.text


async def test_the_home_sends_a_visitor_to_the_phone_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/app/")
    assert response.status_code == 303
    assert response.headers["location"] == "/app/login?next=/app/"


async def test_the_code_is_kept_only_as_a_keyed_hash_and_the_text_is_erased_once_taken(
        client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        member: Member) -> None:
    await ask_code(client, PHONE)
    code = await last_code(database, settings, clock)
    (challenge,) = await _codes(database)
    assert code not in challenge.code_hash
    assert PHONE not in challenge.phone_enc
    async with database.transaction() as session:
        (message,) = (await session.execute(select(SmsMessage))).scalars()
    assert message.body_enc is None
    assert message.delivered_by == "dev-sink"


async def test_the_code_page_shows_the_phone_masked(client: httpx.AsyncClient, member: Member) -> None:
    asked = await ask_code(client, PHONE)
    assert "139****1111" in asked.text
    assert PHONE not in asked.text


async def test_a_wrong_code_is_refused_and_counted(client: httpx.AsyncClient, database: Database,
                                                   settings: Settings, clock: SimulatedClock,
                                                   member: Member) -> None:
    asked = await ask_code(client, PHONE)
    code = await last_code(database, settings, clock)
    response = await enter_code(client, asked, "111111" if code != "111111" else "222222")
    (challenge,) = await _codes(database)
    assert response.status_code == 401
    assert "验证码不正确" in response.text
    assert challenge.attempts == 1
    assert SESSION_COOKIE not in response.cookies


async def test_an_expired_code_is_refused(client: httpx.AsyncClient, database: Database, settings: Settings,
                                          clock: SimulatedClock, member: Member) -> None:
    asked = await ask_code(client, PHONE)
    code = await last_code(database, settings, clock)
    clock.advance(sms.CODE_TTL + timedelta(seconds=1))
    response = await enter_code(client, asked, code)
    assert response.status_code == 401
    assert "验证码已过期" in response.text
    assert SESSION_COOKIE not in response.cookies


async def test_too_many_wrong_codes_burn_the_challenge_even_for_the_right_code(
        client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        member: Member) -> None:
    asked = await ask_code(client, PHONE)
    code = await last_code(database, settings, clock)
    wrong = "111111" if code != "111111" else "222222"
    answers = [await enter_code(client, asked, wrong) for _ in range(sms.MAX_ATTEMPTS)]
    assert [a.status_code for a in answers] == [401] * (sms.MAX_ATTEMPTS - 1) + [429]
    response = await enter_code(client, asked, code)
    assert response.status_code == 429
    assert "错误次数过多" in response.text
    assert SESSION_COOKIE not in response.cookies


async def test_a_code_opens_one_session_only(client: httpx.AsyncClient, database: Database, settings: Settings,
                                             clock: SimulatedClock, member: Member) -> None:
    asked = await ask_code(client, PHONE)
    code = await last_code(database, settings, clock)
    assert (await enter_code(client, asked, code)).status_code == 303
    client.cookies.clear()
    fresh = await client.get("/app/login")
    again = await client.post("/app/login/code", data={"token": token_of(asked.text), "code": code,
                                                       "csrf_token": csrf_of(fresh.text)})
    assert again.status_code == 401
    assert "验证码已使用" in again.text


async def test_a_second_code_within_a_minute_is_refused(client: httpx.AsyncClient, member: Member) -> None:
    assert (await ask_code(client, PHONE)).status_code == 200
    again = await ask_code(client, PHONE)
    assert again.status_code == 429
    assert "一分钟后再试" in again.text


async def test_code_requests_are_rate_limited_per_phone(client: httpx.AsyncClient, app: FastAPI,
                                                        clock: SimulatedClock, member: Member) -> None:
    app.state.settings = app.state.settings.model_copy(update={"auth_attempts_per_minute": 2})
    app.state.security_rate_limiter = None
    for _ in range(2):
        await ask_code(client, PHONE)
        clock.advance(sms.RESEND_AFTER)
    refused = await ask_code(client, PHONE)
    assert refused.status_code == 429
    assert "操作过于频繁" in refused.text


async def test_a_phone_without_an_account_gets_the_same_answer_and_no_text(
        client: httpx.AsyncClient, database: Database, world: World) -> None:
    asked = await ask_code(client, "13700000000")
    assert asked.status_code == 200
    assert "验证码已发送至 137****0000" in asked.text
    async with database.transaction() as session:
        assert list((await session.execute(select(SmsMessage))).scalars()) == []


async def test_a_malformed_phone_is_refused(client: httpx.AsyncClient, world: World) -> None:
    asked = await ask_code(client, "12345")
    assert asked.status_code == 422
    assert "11 位手机号码" in asked.text


async def test_a_form_without_its_csrf_token_is_refused(client: httpx.AsyncClient, member: Member) -> None:
    await client.get("/app/login")
    response = await client.post("/app/login", data={"phone": PHONE, "csrf_token": "forged"})
    assert response.status_code == 403
    assert "表单已过期" in response.text


async def test_a_phone_with_two_accounts_chooses_one_by_masked_name(
        client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        member: Member) -> None:
    second = await account_on_phone(client, database, settings, clock, 2, PHONE)
    choose = await app_sign_in(client, database, settings, clock, PHONE)
    assert choose.status_code == 200
    assert "居*" in choose.text
    assert "居民2" not in choose.text
    async with database.transaction() as session:
        account = (await session.execute(select(ResidentAccount).where(
            ResidentAccount.resident_id == second.resident_id))).scalar_one()
    response = await client.post("/app/login/choose", data={
        "token": token_of(choose.text), "account_id": str(account.id), "csrf_token": csrf_of(choose.text)})
    assert response.status_code == 303
    listed = await audit_events(database, resource_type="resident_account", action="list")
    assert sorted(e.resident_id for e in listed) == sorted([member.resident_id, second.resident_id])


async def test_the_choice_of_an_account_on_another_phone_is_refused(
        client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        member: Member) -> None:
    await account_on_phone(client, database, settings, clock, 2, PHONE)
    other = await account_on_phone(client, database, settings, clock, 3, "13900002222")
    choose = await app_sign_in(client, database, settings, clock, PHONE)
    async with database.transaction() as session:
        account = (await session.execute(select(ResidentAccount).where(
            ResidentAccount.resident_id == other.resident_id))).scalar_one()
    response = await client.post("/app/login/choose", data={
        "token": token_of(choose.text), "account_id": str(account.id), "csrf_token": csrf_of(choose.text)})
    assert response.status_code == 401
    assert SESSION_COOKIE not in response.cookies


async def test_an_inactive_resident_cannot_sign_in(client: httpx.AsyncClient, database: Database,
                                                   settings: Settings, clock: SimulatedClock, member: Member) -> None:
    async with database.transaction() as session:
        account = (await session.execute(select(ResidentAccount))).scalar_one()
        account.is_active = False
    response = await app_sign_in(client, database, settings, clock, PHONE)
    assert response.status_code == 401
    assert "尚未绑定实名账户" in response.text


# --- registration --------------------------------------------------------------------------------------------


async def _register(client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
                    phone: str, id_number: str, name: str) -> httpx.Response:
    asked = await ask_code(client, phone, path="/app/register")
    assert asked.status_code == 200, asked.text
    code = await last_code(database, settings, clock)
    return await client.post("/app/register/complete", data={
        "token": token_of(asked.text), "code": code, "id_number": id_number, "name": name,
        "password": "a-good-password-1", "csrf_token": csrf_of(asked.text)})


async def test_registration_with_a_code_opens_a_real_name_account_and_signs_in(
        client: httpx.AsyncClient, database: Database, settings: Settings, clock: SimulatedClock,
        world: World) -> None:
    resident_id, number = await add_resident(database, settings, clock.now(), 7)
    response = await _register(client, database, settings, clock, PHONE, number, "居民7")
    assert response.status_code == 303
    assert response.headers["location"] == "/app/"
    async with database.transaction() as session:
        account = (await session.execute(select(ResidentAccount))).scalar_one()
    assert account.resident_id == resident_id
    assert account.phone_hash == sms.phone_hash(settings, PHONE)


async def test_registration_with_another_name_is_refused(client: httpx.AsyncClient, database: Database,
                                                         settings: Settings, clock: SimulatedClock,
                                                         world: World) -> None:
    _, number = await add_resident(database, settings, clock.now(), 7)
    response = await _register(client, database, settings, clock, PHONE, number, "别人")
    assert response.status_code == 422
    assert "身份证号码与姓名不匹配" in response.text
    async with database.transaction() as session:
        assert list((await session.execute(select(ResidentAccount))).scalars()) == []


async def test_a_fourth_account_on_a_phone_is_refused(client: httpx.AsyncClient, database: Database,
                                                      settings: Settings, clock: SimulatedClock,
                                                      member: Member) -> None:
    for seq in (2, 3):
        await account_on_phone(client, database, settings, clock, seq, PHONE)
    _, number = await add_resident(database, settings, clock.now(), 4)
    response = await _register(client, database, settings, clock, PHONE, number, "居民4")
    assert response.status_code == 409
    assert "已绑定 3 个账户" in response.text
    async with database.transaction() as session:
        assert len(list((await session.execute(select(ResidentAccount))).scalars())) == 3


# --- the development sink -----------------------------------------------------------------------------------


async def test_the_dev_sink_is_refused_in_production(database: Database, settings: Settings,
                                                     clock: SimulatedClock) -> None:
    production = settings.model_construct(**{**settings.__dict__, "env": Environment.PRODUCTION})
    async with database.transaction() as session:
        with pytest.raises(Forbidden) as refused:
            await sms.deliver_to_dev_sink(session, clock, production)
    assert refused.value.code == "dev_sink_disabled"
