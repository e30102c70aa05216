"""The simulator's actors: every request within a timeout, every failure a SimulationError, every client closed."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import jwt
import pyotp
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.simulation.actors import TOKEN_MARGIN_S, TOKEN_PATH, Actors, MachineClient, Operator, SimulationError
from tests.simulation.fakes import START, Caller


def _platform() -> FastAPI:
    app = FastAPI()

    @app.get("/ok")
    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({"authorization": request.headers.get("authorization")})

    @app.get("/conflict")
    async def conflict() -> JSONResponse:
        return JSONResponse({"detail": "taken"}, status_code=409)

    @app.get("/hang")
    async def hang() -> JSONResponse:
        await asyncio.sleep(3600)
        return JSONResponse({})

    @app.get("/crash")
    async def crash() -> JSONResponse:
        raise RuntimeError("boom")

    return app


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


async def test_a_call_sends_the_bearer_token_and_returns_the_expected_answer(clock: SimulatedClock) -> None:
    async with Actors() as actors:
        caller = actors.add(Caller(_platform(), clock))
        response = await caller.call("GET", "/ok")
    assert response.json() == {"authorization": "Bearer token-1"}
    assert caller.http.is_closed


async def test_an_unexpected_status_is_a_simulation_error_naming_the_request(clock: SimulatedClock) -> None:
    async with Actors() as actors:
        caller = actors.add(Caller(_platform(), clock))
        with pytest.raises(SimulationError) as caught:
            await caller.call("GET", "/conflict")
        assert (await caller.call("GET", "/conflict", expect=(409,))).status_code == 409
    assert caught.value.message.startswith("test caller: GET /conflict answered 409: ")
    assert "taken" in caught.value.message


async def test_a_platform_that_never_answers_times_out(clock: SimulatedClock) -> None:
    async with Actors() as actors:
        caller = actors.add(Caller(_platform(), clock, timeout_s=0.2))
        started = time.monotonic()
        with pytest.raises(SimulationError) as caught:
            async with asyncio.timeout(10):  # without its own timeout the call would fail this one instead
                await caller.call("GET", "/hang")
        waited = time.monotonic() - started
    assert caught.value.code == "simulation_timeout"
    assert caught.value.message == "test caller: GET /hang did not answer within 0.2 s"
    assert 0.2 <= waited < 5
    assert caller.http.is_closed


async def test_a_platform_that_crashes_is_a_500_not_an_exception_from_inside_it(clock: SimulatedClock) -> None:
    async with Actors() as actors:
        caller = actors.add(Caller(_platform(), clock))
        with pytest.raises(SimulationError) as caught:
            await caller.call("GET", "/crash")
    assert caught.value.message.startswith("test caller: GET /crash answered 500")
    assert caught.value.code == "simulation_failed"


async def test_concurrent_callers_renew_a_stale_token_once(clock: SimulatedClock) -> None:
    async with Actors() as actors:
        caller = actors.add(Caller(_platform(), clock))
        answers = await asyncio.gather(*(caller.call("GET", "/ok") for _ in range(8)))
        assert caller.renewals == 1
        clock.advance(timedelta(seconds=300 - TOKEN_MARGIN_S - 1))
        await caller.call("GET", "/ok")
        assert caller.renewals == 1  # kept: not yet within the margin of its expiry
        clock.advance(timedelta(seconds=1))
        answers += await asyncio.gather(*(caller.call("GET", "/ok") for _ in range(4)))
    assert caller.renewals == 2
    assert {answer.json()["authorization"] for answer in answers} == {"Bearer token-1", "Bearer token-2"}


async def test_actors_close_every_client_when_the_block_fails(clock: SimulatedClock) -> None:
    made: list[Caller] = []
    actors = Actors()

    async def run() -> None:
        async with actors:
            made.extend(actors.add(Caller(_platform(), clock)) for _ in range(3))
            await made[0].call("GET", "/conflict")

    with pytest.raises(SimulationError):
        await run()
    assert [caller.http.is_closed for caller in made] == [True, True, True]
    assert len(actors) == 0


async def test_actors_close_every_client_when_the_block_is_cancelled(clock: SimulatedClock) -> None:
    made: list[Caller] = []
    entered = asyncio.Event()

    async def run() -> None:
        async with Actors() as actors:
            made.extend(actors.add(Caller(_platform(), clock, timeout_s=60)) for _ in range(2))
            entered.set()
            await made[1].call("GET", "/hang")

    task = asyncio.create_task(run())
    await entered.wait()
    await asyncio.sleep(0.05)  # the request is in flight
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [caller.http.is_closed for caller in made] == [True, True]


async def test_a_failing_close_does_not_keep_the_others_open(clock: SimulatedClock) -> None:
    actors = Actors()
    first, broken, last = (actors.add(Caller(_platform(), clock)) for _ in range(3))

    async def refuse() -> None:
        raise OSError("cannot close")

    broken.close = refuse  # type: ignore[method-assign]
    with pytest.raises(OSError, match="cannot close"):
        await actors.close()
    assert first.http.is_closed
    assert last.http.is_closed


async def test_an_operator_whose_login_is_refused_fails_with_the_status(clock: SimulatedClock) -> None:
    app = FastAPI()

    @app.post("/api/auth/login")
    async def login() -> JSONResponse:
        return JSONResponse({"detail": "bad code"}, status_code=401)

    async with Actors() as actors:
        operator = actors.add(Operator(app, clock, "admin", "secret", pyotp.random_base32()))
        with pytest.raises(SimulationError) as caught:
            await operator.call("GET", "/anything")
    assert caught.value.message.startswith("operator login refused: 401")


async def test_an_operator_keeps_its_session_refreshing_an_expired_token_and_logs_in_only_once_it_idled_out(
        clock: SimulatedClock, settings: Settings) -> None:
    app = FastAPI()
    app.state.settings = settings.model_copy(update={"staff_session_idle_timeout_s": 900})
    seen: list[str] = []

    @app.post("/api/auth/login")
    async def login() -> JSONResponse:
        seen.append("login")
        return JSONResponse({"access_token": f"t{len(seen)}", "expires_in": 300})

    @app.post("/api/auth/refresh")
    async def refresh(request: Request) -> JSONResponse:
        seen.append(f"refresh {request.headers['authorization']}")
        return JSONResponse({"access_token": f"t{len(seen)}", "expires_in": 300})

    @app.get("/ok")
    async def ok() -> JSONResponse:
        return JSONResponse({})

    async with Actors() as actors:
        operator = actors.add(Operator(app, clock, "admin", "secret", pyotp.random_base32()))
        for _ in range(3):
            await operator.call("GET", "/ok")
        clock.advance(timedelta(seconds=200))
        await operator.call("GET", "/ok")  # the token kept
        assert seen == ["login"]
        clock.advance(timedelta(seconds=250))  # expired, the session live: refreshed with the kept token
        await operator.call("GET", "/ok")
        assert seen == ["login", "refresh Bearer t1"]
        clock.advance(timedelta(hours=3))  # idle past the timeout: the platform ended it, log in again
        await operator.call("GET", "/ok")
    assert seen == ["login", "refresh Bearer t1", "login"]
    assert (operator.logins, operator.refreshes) == (2, 1)


async def test_a_machine_client_asserts_its_identity_with_a_key_its_jwks_publishes(
        clock: SimulatedClock, settings: Settings) -> None:
    app = FastAPI()
    app.state.settings = settings
    received: dict[str, str] = {}

    @app.post(TOKEN_PATH)
    async def token(request: Request) -> JSONResponse:
        received.update((await request.form()).items())  # type: ignore[arg-type]
        return JSONResponse({"access_token": "machine-token"})

    async with Actors() as actors:
        client = actors.add(MachineClient(app, clock, "198.51.100.7", "sim-0001", "a hospital"))
        assert (await client.headers()) == {"Authorization": "Bearer machine-token"}
    assert received["grant_type"] == "client_credentials"
    key = jwt.PyJWK(client.public_jwks()["keys"][0])
    claims = jwt.decode(received["client_assertion"], key.key, algorithms=["ES384"],
                        audience=settings.public_url(TOKEN_PATH), options={"verify_exp": False})
    assert (claims["iss"], claims["sub"]) == ("sim-0001", "sim-0001")
    assert claims["exp"] - claims["iat"] == 240
    assert claims["iat"] == int(START.timestamp())
    assert jwt.get_unverified_header(received["client_assertion"])["kid"] == client.kid
