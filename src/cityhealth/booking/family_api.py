"""Family booking API: a resident links a family member (with the member's consent) and books for them."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from cityhealth.booking import family, lifecycle, service
from cityhealth.booking.api import (
    Admin,
    AuditedRoute,
    CipherDep,
    ClockDep,
    IdempotencyKeyHeader,
    Reader,
    RoomDep,
    Writer,
    _written,
)
from cityhealth.booking.idempotency import context_for
from cityhealth.booking.schemas import (
    BookingCreate,
    BookingRead,
    CancelRequest,
    ConsentRecord,
    FamilyLinkRead,
    FamilyMemberCreate,
    HoldCreate,
    RescheduleRequest,
    WaitlistCreate,
    WaitlistRead,
)
from cityhealth.context import SessionDep
from cityhealth.db.types import RowId

router = APIRouter(prefix="/api/booking/family", tags=["booking"], route_class=AuditedRoute)


@router.post("/links", status_code=201, response_model=FamilyLinkRead,
             responses={200: {"model": FamilyLinkRead, "description": "linked already: the live or pending link"}},
             summary="Link a family member of the master index (a minor's guardian declares consent)")
async def add_member(principal: Writer, session: SessionDep, clock: ClockDep, cipher: CipherDep,
                     data: FamilyMemberCreate, response: Response) -> FamilyLinkRead:
    view, created = await family.add_member(session, clock, cipher, principal, data)
    response.status_code = 201 if created else 200
    return view


@router.get("/links", response_model=list[FamilyLinkRead], summary="The members I manage and who manages me")
async def list_links(principal: Reader, session: SessionDep, clock: ClockDep,
                     cipher: CipherDep) -> list[FamilyLinkRead]:
    return await family.links(session, clock, cipher, principal)


@router.post("/links/{link_id}/confirm", response_model=FamilyLinkRead, summary="The adult member consents")
async def confirm_link(principal: Writer, session: SessionDep, clock: ClockDep, cipher: CipherDep,
                       link_id: RowId) -> FamilyLinkRead:
    return await family.confirm(session, clock, cipher, principal, link_id)


@router.post("/links/{link_id}/recorded-consent", response_model=FamilyLinkRead,
             summary="Staff record the consent the member gave in person or on the phone")
async def record_consent(principal: Admin, session: SessionDep, clock: ClockDep, cipher: CipherDep,
                         link_id: RowId, data: ConsentRecord) -> FamilyLinkRead:
    return await family.record_consent(session, clock, cipher, principal, link_id, data)


@router.post("/links/{link_id}/revoke", response_model=FamilyLinkRead, summary="Either side ends the link")
async def revoke_link(principal: Writer, session: SessionDep, clock: ClockDep, cipher: CipherDep,
                      link_id: RowId) -> FamilyLinkRead:
    return await family.revoke(session, clock, cipher, principal, link_id)


@router.get("/links/{link_id}/bookings", response_model=list[BookingRead], summary="The member's bookings")
async def member_bookings(principal: Reader, session: SessionDep, clock: ClockDep,
                          link_id: RowId) -> list[BookingRead]:
    return await family.member_bookings(session, clock, principal, link_id)


@router.post("/links/{link_id}/holds", status_code=201, response_model=BookingRead,
             summary="Hold a slot for the member (Idempotency-Key required)")
async def hold_for_member(principal: Writer, request: Request, room: RoomDep, link_id: RowId, data: HoldCreate,
                          idempotency_key: IdempotencyKeyHeader = None) -> Response:
    idem = context_for(principal.subject, idempotency_key, "POST", request.url.path, await request.body())
    async with room.database.read_connection() as connection:
        caller = await family.member_caller(connection, room.clock, principal, link_id)
    result = await service.take_as(room.database, room.clock, room.cipher, room.runtime, caller, data.session_id,
                                   data.id_number, data.channel, idem, hold=True)
    return await _written(room.database, room.clock, principal, result)


@router.post("/links/{link_id}/bookings", status_code=201, response_model=BookingRead,
             summary="Book a slot for the member, or confirm the member's hold (Idempotency-Key required)")
async def book_for_member(principal: Writer, request: Request, session: SessionDep, room: RoomDep, link_id: RowId,
                          data: BookingCreate, idempotency_key: IdempotencyKeyHeader = None) -> Response:
    idem = context_for(principal.subject, idempotency_key, "POST", request.url.path, await request.body())
    if data.hold_id is None:  # the group commit's own transaction: the request's session stays unused
        assert data.session_id is not None  # noqa: S101 - the schema demands one of the two
        async with room.database.read_connection() as connection:
            caller = await family.member_caller(connection, room.clock, principal, link_id)
        result = await service.take_as(room.database, room.clock, room.cipher, room.runtime, caller,
                                       data.session_id, data.id_number, data.channel, idem, hold=False)
    else:
        caller = await family.member_caller(session, room.clock, principal, link_id)
        result = await service.confirm_hold(session, room.clock, room.cipher, principal, data, idem, caller=caller)
    return await _written(room.database, room.clock, principal, result)


@router.post("/links/{link_id}/bookings/{booking_id}/cancel", response_model=BookingRead)
async def cancel_for_member(principal: Writer, session: SessionDep, room: RoomDep, link_id: RowId,
                            booking_id: RowId, data: CancelRequest | None = None) -> BookingRead:
    caller = await family.member_caller(session, room.clock, principal, link_id)
    return await lifecycle.cancel(session, room.clock, room.cipher, room.runtime, principal, booking_id,
                                  data or CancelRequest(), caller=caller)


@router.post("/links/{link_id}/bookings/{booking_id}/reschedule", status_code=201, response_model=BookingRead,
             summary="Move the member's booking to another session (Idempotency-Key required)")
async def reschedule_for_member(principal: Writer, request: Request, session: SessionDep, room: RoomDep,
                                link_id: RowId, booking_id: RowId, data: RescheduleRequest,
                                idempotency_key: IdempotencyKeyHeader = None) -> Response:
    idem = context_for(principal.subject, idempotency_key, "POST", request.url.path, await request.body())
    caller = await family.member_caller(session, room.clock, principal, link_id)
    result = await lifecycle.reschedule(session, room.clock, room.cipher, room.runtime, principal, booking_id, data,
                                        idem, caller=caller)
    return await _written(room.database, room.clock, principal, result)


@router.post("/links/{link_id}/waitlist", status_code=201, response_model=WaitlistRead,
             summary="Put the member on a full session's waitlist")
async def join_waitlist_for_member(principal: Writer, session: SessionDep, clock: ClockDep, cipher: CipherDep,
                                   link_id: RowId, data: WaitlistCreate) -> WaitlistRead:
    return await family.join_waitlist_for_member(session, clock, cipher, principal, link_id, data)


@router.get("/links/{link_id}/waitlist", response_model=list[WaitlistRead], summary="The member's waitlist entries")
async def member_waitlist(principal: Reader, session: SessionDep, clock: ClockDep,
                          link_id: RowId) -> list[WaitlistRead]:
    return await family.member_waitlist(session, clock, principal, link_id)


@router.post("/links/{link_id}/waitlist/{entry_id}/leave", response_model=WaitlistRead,
             summary="Take the member off a waitlist")
async def leave_waitlist_for_member(principal: Writer, session: SessionDep, clock: ClockDep, link_id: RowId,
                                    entry_id: RowId) -> WaitlistRead:
    return await family.leave_waitlist_for_member(session, clock, principal, link_id, entry_id)
