"""Patient messages: a hospital's message settings (its schedulers) and a booking's calendar file."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from cityhealth.booking import messages_calendar, messages_downloads, messages_links, messages_settings
from cityhealth.booking.schemas import MessageSettingsRead, MessageSettingsUpdate
from cityhealth.context import ClockDep, SessionDep
from cityhealth.db.types import RowId
from cityhealth.registry.protection import cipher_for
from cityhealth.security.dependencies import refusals_audited, require
from cityhealth.security.principals import Principal, Scope

router = APIRouter(prefix="/api/booking", tags=["booking"], route_class=refusals_audited("booking"))
# The SMS calendar link: short (no /api prefix) and opened without a token, the signature in it being the key.
links = APIRouter(tags=["booking"])
Reader = Annotated[Principal, Depends(require(Scope.BOOKING_READ))]
Scheduler = Annotated[Principal, Depends(require(Scope.BOOKING_SCHEDULE))]


@router.get("/message-settings/{organization_id}", response_model=MessageSettingsRead)
async def get_message_settings(principal: Scheduler, session: SessionDep,
                               organization_id: RowId) -> MessageSettingsRead:
    return await messages_settings.get_settings(session, principal, organization_id)


@router.put("/message-settings/{organization_id}", response_model=MessageSettingsRead,
            summary="Which messages a hospital sends, and its day-before reminder time")
async def put_message_settings(principal: Scheduler, session: SessionDep, clock: ClockDep, organization_id: RowId,
                               data: MessageSettingsUpdate) -> MessageSettingsRead:
    return await messages_settings.put_settings(session, clock, principal, organization_id, data)


@router.get("/bookings/{booking_id}/calendar.ics", response_class=Response,
            summary="The booking as an iCalendar file (RFC 5545), for apps, the web site and e-mail")
async def booking_calendar(principal: Reader, request: Request, session: SessionDep, clock: ClockDep,
                           booking_id: RowId) -> Response:
    settings = request.app.state.settings
    cipher = request.app.state.tasks.resource("booking.cipher", lambda: cipher_for(settings))
    body = await messages_downloads.booking_calendar(session, clock, cipher, principal, booking_id,
                                                     messages_calendar.host_of(settings.public_base_url))
    disposition = f'attachment; filename="{messages_calendar.file_name(booking_id)}"'
    return Response(content=body.encode("utf-8"), media_type=messages_calendar.MEDIA_TYPE,
                    headers={"Content-Disposition": disposition})


@links.get(messages_links.PATH, response_class=Response,
           summary="A booking's calendar file through the link its SMS carries (no sign-in: the link is the key)")
async def linked_calendar(request: Request, session: SessionDep, clock: ClockDep, token: str) -> Response:
    settings = request.app.state.settings
    cipher = request.app.state.tasks.resource("booking.cipher", lambda: cipher_for(settings))
    body = await messages_downloads.linked_calendar(session, clock, cipher, token,
                                                    messages_calendar.host_of(settings.public_base_url))
    return Response(content=body.encode("utf-8"), media_type=messages_calendar.MEDIA_TYPE,
                    headers={"Content-Disposition": 'attachment; filename="booking.ics"', "Cache-Control": "no-store"})
