"""Staff signed in as a browser is: an account made with a password and a second factor, and the /login form
posted with its CSRF token and the current TOTP code, the session then in the client's cookies. The page tests
sign in in process; the soak drill signs in over HTTP to a served process."""

from __future__ import annotations

import re

import httpx
import pyotp
from fastapi import FastAPI

from cityhealth.clock import Clock
from cityhealth.db.engine import Database
from cityhealth.security import staff as staff_accounts
from cityhealth.security.principals import Role
from cityhealth.web.demo import DemoOperator

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
STAFF_PASSWORD = "a long editor password 7"


async def staff_account(app: FastAPI, database: Database, clock: Clock, role: Role, name: str) -> DemoOperator:
    """A member of staff with `role`, its password and second factor, to log in through the form."""
    async with database.transaction() as session:
        created = await staff_accounts.create_staff_user(
            session, clock, app.state.settings, username=name, display_name=name, password=STAFF_PASSWORD,
            roles=frozenset({role}), organization_id=None)
    secret = str(pyotp.parse_uri(created.totp_uri).secret) if created.totp_uri else ""
    return DemoOperator(username=name, password=STAFF_PASSWORD, totp_secret=secret or pyotp.random_base32(),
                        totp_uri=created.totp_uri or "", created=True)


async def log_in(client: httpx.AsyncClient, operator: DemoOperator, clock: Clock, *,
                 next_url: str = "", code: str | None = None) -> httpx.Response:
    """The login form fetched and posted as `operator` (303 to `next_url` when signed in)."""
    form = await client.get("/login")
    csrf = CSRF_INPUT.search(form.text)
    assert csrf is not None, "the login page has no form"
    return await client.post("/login", data={
        "username": operator.username, "password": operator.password,
        "totp": pyotp.TOTP(operator.totp_secret).at(clock.now()) if code is None else code,
        "csrf_token": csrf.group(1), "next": next_url})
