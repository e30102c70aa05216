"""The resident app (/app/): a mobile web app for real-name residents, served by the platform itself.

Its home links the services a resident uses on a phone: booking and cancelling through the pool (the
booking pages, web/booking.py), their family doctor, readings and follow-ups, the map of nearby facilities
with today's free slots, and the family members they book for. The sign-in is the phone and a one-time SMS
code (web/app_sign_in.py); the pages behind it are web/app_pages.py and, for the shared record, my results
and who opened it, web/app_record.py.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from cityhealth.context import ClockDep, DatabaseDep, SettingsDep
from cityhealth.security.principals import Principal
from cityhealth.web import app_pages, app_record, app_sign_in
from cityhealth.web.session import APP_LOGIN, CSRF_FIELD, end_session, require_app_resident
from cityhealth.web.templating import page

router = APIRouter(prefix="/app", include_in_schema=False)
SignedIn = Annotated[Principal, Depends(require_app_resident())]


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, principal: SignedIn) -> HTMLResponse:
    # The home shows no personal data: each tile's page reads (and audits) its own.
    return page(request, "app_home.html")


@router.post("/logout")
async def sign_out(
    request: Request, principal: SignedIn, settings: SettingsDep, clock: ClockDep, database: DatabaseDep,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=128)] = "",
) -> Response:
    signed_out = await end_session(request, settings, clock, database, principal, csrf_token, APP_LOGIN)
    return signed_out or page(request, "app_message.html", status_code=403, title="无法退出",
                              message=app_sign_in.STALE_FORM)


router.include_router(app_sign_in.router)
router.include_router(app_pages.router)
router.include_router(app_record.router)
