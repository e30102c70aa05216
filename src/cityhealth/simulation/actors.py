"""The outside systems the simulator plays, each with its own credentials and its own source address.

The operator is a platform administrator who logs in with password and TOTP; hospitals, district
platforms and client apps are machine clients that obtain tokens with a signed JWT client assertion, as
SMART Backend Services clients do. All talk to the platform over HTTP (in-process ASGI for speed).
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, TypeVar

import httpx
import jwt
import pyotp
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from jwt.algorithms import ECAlgorithm

from cityhealth.clock import Clock
from cityhealth.errors import DomainError

BASE_URL = "http://platform.simulation"
TOKEN_PATH = "/api/auth/token"  # noqa: S105 - a URL path, not a secret
# Tokens live 300 s of (simulated) time; a token is renewed this long before its own expiry (`expires_in`).
TOKEN_MARGIN_S = 30
# Without an `expires_in` in the answer, the platform's longest lifetime (300 s) is assumed.
TOKEN_TTL_S = 300
# Wall-clock seconds a request may take, token renewal included. The in-process transport enforces no timeout
# of its own (httpx's apply to sockets), so a platform that never answers would hold the month forever.
# Generous: a scale-1 day's bulk body is ~60 MB, sent to a loop that is busy ingesting.
REQUEST_TIMEOUT_S = 300.0


class SimulationError(DomainError):
    status = 500
    code = "simulation_failed"


def _transport(app: FastAPI, address: str) -> httpx.ASGITransport:
    # A platform that crashes answers 500, as a server would, rather than raising into the simulator.
    return httpx.ASGITransport(app=app, client=(address, 40000), raise_app_exceptions=False)


class Actor(ABC):
    """An HTTP caller with a bearer token that it renews against the platform's clock."""

    def __init__(self, app: FastAPI, clock: Clock, address: str, name: str, *,
                 timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.app = app
        self.clock = clock
        self.name = name
        self.timeout_s = timeout_s
        self.http = httpx.AsyncClient(transport=_transport(app, address), base_url=BASE_URL, timeout=timeout_s)
        self._token: str | None = None
        self._token_expires = clock.now()
        # Authentications made: logins (operators) or client assertions (machine clients), and refreshes.
        self.logins = 0
        self.refreshes = 0
        self.last_request_at = clock.now()  # on the platform's clock: a staff session idles from it
        # Callers share an actor concurrently; one renewal at a time (a TOTP code logs in only once).
        self._renewing = asyncio.Lock()

    async def close(self) -> None:
        await self.http.aclose()

    @abstractmethod
    async def _fetch_token(self) -> tuple[str, int]:
        """Authenticate the way this kind of actor does: the access token and its lifetime in seconds."""

    def _stale(self) -> bool:
        """No token yet, or the one kept expires within the margin (on the platform's clock)."""
        return self._token is None or self.clock.now() >= self._token_expires - timedelta(seconds=TOKEN_MARGIN_S)

    async def headers(self) -> dict[str, str]:
        """The kept token, renewed only once it is about to expire: every renewal is an authentication the
        platform counts against the caller's address and account."""
        if self._stale():
            async with self._renewing:
                if self._stale():
                    now = self.clock.now()
                    self._token, lifetime = await self._fetch_token()
                    self._token_expires = now + timedelta(seconds=lifetime)
        self.last_request_at = self.clock.now()
        return {"Authorization": f"Bearer {self._token}"}

    async def call(self, method: str, path: str, *, expect: tuple[int, ...] = (200, 201, 202, 204),
                   **kwargs: Any) -> httpx.Response:
        """One request, token renewal included, within `timeout_s`; any failure is a SimulationError."""
        try:
            async with asyncio.timeout(self.timeout_s):
                headers = {**kwargs.pop("headers", {}), **(await self.headers())}
                response = await self.http.request(method, path, headers=headers, **kwargs)
        except TimeoutError:
            raise SimulationError(f"{self.name}: {method} {path} did not answer within {self.timeout_s:g} s",
                                  code="simulation_timeout") from None
        except (httpx.HTTPError, OSError) as exc:
            raise SimulationError(f"{self.name}: {method} {path} failed: {type(exc).__name__}: {exc}") from exc
        if response.status_code not in expect:
            raise SimulationError(
                f"{self.name}: {method} {path} answered {response.status_code}: {response.text[:500]}")
        return response


ActorT = TypeVar("ActorT", bound=Actor)


class Actors:
    """Every actor of a run, whose HTTP clients are closed together however the run ends.

    An actor is added as soon as it is made, before its first request, so that an error, a timeout or a
    cancellation anywhere after (registering it included) still closes its client.
    """

    def __init__(self) -> None:
        self._open: list[Actor] = []

    def add(self, actor: ActorT) -> ActorT:
        self._open.append(actor)
        return actor

    def __len__(self) -> int:
        return len(self._open)

    def __iter__(self) -> Iterator[Actor]:
        return iter(list(self._open))

    async def close(self) -> None:
        """Close every client, even when closing one of them fails; the first failure is raised after."""
        actors, self._open = self._open, []
        failure: BaseException | None = None
        for actor in actors:
            try:
                await actor.close()
            except BaseException as exc:  # close the rest, then raise the first
                failure = failure or exc
        if failure is not None:
            raise failure

    async def __aenter__(self) -> Actors:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


def _lifetime(body: dict[str, Any]) -> int:
    return int(body.get("expires_in") or TOKEN_TTL_S)


class Operator(Actor):
    """A member of the platform's staff (the administrator, an agent …), at a workstation of its own.

    The session is kept: an expired access token is refreshed (`/api/auth/refresh`) while the session is
    live, and the operator logs in again (password and TOTP) only when the platform says it is not.
    """

    def __init__(self, app: FastAPI, clock: Clock, username: str, password: str, totp_secret: str, *,
                 address: str = "198.51.100.1", timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        super().__init__(app, clock, address, f"operator {username}", timeout_s=timeout_s)
        self.username = username
        self.password = password
        self.totp = pyotp.TOTP(totp_secret)

    def _session_live(self) -> bool:
        """Whether the platform still holds the session: a token kept, and a request within the idle timeout
        (asking the platform otherwise would be a failed authentication counted against the address)."""
        if self._token is None:
            return False
        idle = timedelta(seconds=int(self.app.state.settings.staff_session_idle_timeout_s) - TOKEN_MARGIN_S)
        return self.clock.now() - self.last_request_at < idle

    async def _fetch_token(self) -> tuple[str, int]:
        if self._session_live():
            response = await self.http.post("/api/auth/refresh", headers={"Authorization": f"Bearer {self._token}"})
            if response.status_code == 200:
                self.refreshes += 1
                body = response.json()
                return str(body["access_token"]), _lifetime(body)
            if response.status_code != 401:  # 401: the session ended (idle, logged out); anything else is wrong
                raise SimulationError(f"{self.name}: refresh refused: {response.status_code} {response.text[:300]}")
        code = self.totp.at(self.clock.now())
        response = await self.http.post("/api/auth/login", json={
            "username": self.username, "password": self.password, "totp": code})
        if response.status_code != 200:
            raise SimulationError(f"operator login refused: {response.status_code} {response.text[:300]}")
        self.logins += 1
        body = response.json()
        return str(body["access_token"]), _lifetime(body)


class MachineClient(Actor):
    """A hospital system, district platform or client app: ES384 client assertions, its own key pair."""

    def __init__(self, app: FastAPI, clock: Clock, address: str, client_id: str, name: str, *,
                 timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        super().__init__(app, clock, address, name, timeout_s=timeout_s)
        self.client_id = client_id
        self._key = ec.generate_private_key(ec.SECP384R1())
        self.kid = uuid.uuid4().hex[:16]

    def public_jwks(self) -> dict[str, Any]:
        jwk: dict[str, Any] = ECAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "alg": "ES384", "use": "sig"}]}

    async def _fetch_token(self) -> tuple[str, int]:
        now = self.clock.now()
        assertion = jwt.encode(
            {"iss": self.client_id, "sub": self.client_id, "aud": self.app.state.settings.public_url(TOKEN_PATH),
             "iat": int(now.timestamp()), "exp": int((now + timedelta(seconds=240)).timestamp()),
             "jti": secrets.token_hex(16)},
            self._key, algorithm="ES384", headers={"kid": self.kid},
        )
        response = await self.http.post(TOKEN_PATH, data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        })
        if response.status_code != 200:
            raise SimulationError(f"{self.name}: token refused: {response.status_code} {response.text[:300]}")
        self.logins += 1
        body = response.json()
        return str(body["access_token"]), _lifetime(body)
