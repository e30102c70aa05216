"""Booking REST API: thin routes over the booking services, each behind its scope."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, get_type_hints

import orjson
from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette import types as asgi

from cityhealth.booking import (
    availability,
    lifecycle,
    schedules,
    service,
    suspension,
    waitlist,
)
from cityhealth.booking.availability import BookingRuntime
from cityhealth.booking.channels import caller_of
from cityhealth.booking.idempotency import HEADER, context_for
from cityhealth.booking.schemas import (
    AvailabilityRead,
    BookingCreate,
    BookingRead,
    CancelRequest,
    GenerateRequest,
    GenerateResult,
    HoldCreate,
    PolicyRead,
    PolicyUpdate,
    RescheduleRequest,
    SessionCreate,
    SessionRead,
    SuspendRequest,
    SuspendResult,
    TemplateCreate,
    TemplateRead,
    WaitlistCreate,
    WaitlistRead,
)
from cityhealth.clock import Clock, SystemClock
from cityhealth.context import SessionDep
from cityhealth.db.engine import Database
from cityhealth.db.types import RowId
from cityhealth.errors import DomainError, Forbidden
from cityhealth.observability import answer_error, answer_in_lane
from cityhealth.registry.protection import cipher_for
from cityhealth.security.audit import Action, Outcome, record, record_now
from cityhealth.security.crypto import FieldCipher
from cityhealth.security.dependencies import bearer_credentials, require
from cityhealth.security.principals import Principal, Scope
from cityhealth.strict_json import is_json


class AuditedRoute(APIRoute):
    """Every refusal of a booking route leaves an audit event (in its own transaction, as the request's
    rolls back), unless the service settled it: audited already, or read no personal data at all. A
    refusal after a resident was identified (`service.Refused`) is audited with that resident."""

    # The attempt routes answer a refusal with the app's own handler for it here, rather than raising it out
    # through FastAPI's and Starlette's layers to the same handler (a release's thousands of "sold out").
    answers_refusals = False

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = self.inner_handler()
        answers = self.answers_refusals

        async def audited(request: Request) -> Response:
            try:
                return await handler(request)
            except service.Refused as refused:
                await service.audit_refusal(request.app.state.database, request.app.state.clock,
                                            request.state.principal, refused)
                if answers:
                    return await answer_error(request, refused.error)
                raise refused.error from None
            except (DomainError, RequestValidationError) as error:
                principal: Principal | None = getattr(request.state, "principal", None)
                if principal is not None and not service.audit_settled(error) and not _scope_refusal(error):
                    status = error.status if isinstance(error, DomainError) else 422
                    denied = status in (403, 404)
                    await record_now(
                        request.app.state.database, request.app.state.clock, principal,
                        Action.DENIED if denied else Action.UPDATE, service.RESOURCE,
                        resident_ids=[principal.resident_id] if principal.resident_id is not None else [],
                        outcome=Outcome.DENIED if denied else Outcome.FAILURE,
                        detail=error.code if isinstance(error, DomainError) else "validation_failed")
                if answers:
                    return await answer_error(request, error)
                raise

        return audited

    def inner_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return super().get_route_handler()


_WRITE_GUARD = require(Scope.BOOKING_WRITE)
_ATTEMPT_PARAMETERS = ["principal", "request", "room", "data", "idempotency_key"]


class AttemptRoute(AuditedRoute):
    """The booking attempt routes, the release-time load: their endpoint is called with what FastAPI's
    dependency solving would give it — the same guard, body model (validated as FastAPI does, its errors
    located under "body") and header — computed directly, which costs a fraction of the generic solving
    (measured: docs/decisions/request-path-cpu.md). The OpenAPI document is built from the endpoint's
    signature as for any route, so it still describes the security, header, body and response."""

    answers_refusals = True

    def inner_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        if list(inspect.signature(self.endpoint).parameters) != _ATTEMPT_PARAMETERS:
            raise TypeError(f"an attempt route takes exactly {_ATTEMPT_PARAMETERS}")
        endpoint = self.endpoint
        adapter: TypeAdapter[Any] = TypeAdapter(get_type_hints(endpoint)["data"])

        async def attempt(request: Request) -> Response:
            principal = await _WRITE_GUARD(request, await bearer_credentials(request))
            data = _validated_body(adapter, request.headers.get("content-type"), await request.body())
            response: Response = await endpoint(principal=principal, request=request, room=room_of(request.app),
                                                data=data, idempotency_key=request.headers.get(HEADER))
            return response

        return attempt


def _validated_body(adapter: TypeAdapter[Any], content_type: str | None, body: bytes) -> Any:
    """The body as FastAPI reads a required JSON model: parsed when declared JSON (bytes otherwise),
    validated in Python mode, the errors located under "body"."""
    if not body:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    value: Any = orjson.loads(body) if content_type is not None and is_json(content_type) else body
    try:
        return adapter.validate_python(value, from_attributes=True)
    except ValidationError as exc:
        raise RequestValidationError([{**error, "loc": ("body", *error["loc"])}
                                      for error in exc.errors(include_url=False)], body=value) from None


def _scope_refusal(error: Exception) -> bool:
    # `require` has audited its own refusal.
    return isinstance(error, Forbidden) and error.code == "insufficient_scope"


class AttemptLane:
    """ASGI middleware, innermost of the platform's: a POST to an attempt route's exact path goes straight to
    that route's handler, past Starlette's exception middleware, FastAPI's router (a dozen included routers
    tried in turn) and its per-route wrappers — ~15 % of a losing attempt's instructions, measured
    (docs/decisions/request-path-cpu.md). It does what they would do for these routes: the scope names the
    route and endpoint, an error with an app handler is answered by that handler (`answer_error`), any other
    error goes on up to the platform's middleware as it would. Every other request, and a path that only
    routing would match (a root path, a trailing slash), takes the usual way."""

    def __init__(self, app: asgi.ASGIApp) -> None:
        self.app = app
        self._routes: dict[str, tuple[AttemptRoute, Callable[[Request], Coroutine[Any, Any, Response]]]] = {
            route.path: (route, route.get_route_handler())
            for route in router.routes if isinstance(route, AttemptRoute) and route.methods == {"POST"}}

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        found = self._routes.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if found is None or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        route, handler = found
        await answer_in_lane(scope, receive, send, route, route.endpoint, {}, handler)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """On the system clock, open the booking path's own connections with their statements prepared, so the
    first release finds them warm. (The hold sweeper and no-show marker are tasks: booking/jobs.py.)"""
    if isinstance(app.state.clock, SystemClock):
        await runtime_of(app).warm(app.state.database)
    yield
    runtime: BookingRuntime | None = getattr(app.state, "booking_runtime", None)
    if runtime is not None:
        await runtime.close()


router = APIRouter(prefix="/api/booking", tags=["booking"], route_class=AuditedRoute, lifespan=lifespan)

Reader = Annotated[Principal, Depends(require(Scope.BOOKING_READ))]
Writer = Annotated[Principal, Depends(_WRITE_GUARD)]
Scheduler = Annotated[Principal, Depends(require(Scope.BOOKING_SCHEDULE))]
Admin = Annotated[Principal, Depends(require(Scope.BOOKING_ADMIN))]
Editor = Annotated[Principal, Depends(require(Scope.BULLETIN_EDIT))]
IdempotencyKeyHeader = Annotated[str | None, Header(alias=HEADER, description="unique per intended request")]


# async twins of cityhealth.context's dependencies: FastAPI runs a plain `def` dependency in the thread
# pool, a hop that every booking attempt would pay at release time.
async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


DatabaseDep = Annotated[Database, Depends(get_database)]
ClockDep = Annotated[Clock, Depends(get_clock)]


def runtime_of(app: FastAPI) -> BookingRuntime:
    return availability.runtime_of(app.state)


async def get_runtime(request: Request) -> BookingRuntime:
    return runtime_of(request.app)


RuntimeDep = Annotated[BookingRuntime, Depends(get_runtime)]


@dataclass(frozen=True)
class Room:
    """What the booking write routes take from the app, built once per app: one dependency rather than
    four on the path every attempt takes at release time (each dependency costs FastAPI's resolution)."""

    database: Database
    clock: Clock
    cipher: FieldCipher
    runtime: BookingRuntime


def room_of(app: FastAPI) -> Room:
    room: Room | None = getattr(app.state, "booking_room", None)
    if room is None:
        room = app.state.booking_room = Room(app.state.database, app.state.clock,
                                             cipher_for(app.state.settings), runtime_of(app))
    return room


async def get_room(request: Request) -> Room:
    return room_of(request.app)


async def get_cipher(request: Request) -> FieldCipher:
    return room_of(request.app).cipher


RoomDep = Annotated[Room, Depends(get_room)]
CipherDep = Annotated[FieldCipher, Depends(get_cipher)]


async def _audit_resident(database: Database, clock: Clock, principal: Principal, action: Action,
                          resource: str) -> None:
    """A resident's request reads their account when authenticated: leave a trace of what they did."""
    if principal.resident_id is not None:
        await record_now(database, clock, principal, action, resource, resident_ids=[principal.resident_id],
                         outcome=Outcome.SUCCESS)


async def _written(database: Database, clock: Clock, principal: Principal, result: service.WriteResult) -> Response:
    headers = None
    if result.replayed:
        headers = {"Idempotent-Replayed": "true"}
        await record_now(database, clock, principal, Action.READ, service.RESOURCE,
                         resident_ids=[principal.resident_id] if principal.resident_id is not None else [],
                         outcome=Outcome.SUCCESS, detail="idempotent replay")
    return Response(content=result.body, status_code=result.status, media_type="application/json", headers=headers)


# --- Booking a slot: first in the router, as route matching tries the routes in order -----------------------


async def create_booking(principal: Writer, request: Request, room: RoomDep, data: BookingCreate,
                         idempotency_key: IdempotencyKeyHeader = None) -> Response:
    # The scope's path is request.url.path for a route without parameters, without building the URL.
    idem = context_for(principal.subject, idempotency_key, "POST", request.scope["path"], await request.body())
    if data.hold_id is None:
        result = await service.book(room.database, room.clock, room.cipher, room.runtime, principal, data, idem)
    else:
        async with room.database.transaction() as tx:  # this request's transaction (a booking's is its batch's)
            result = await service.confirm_hold(tx, room.clock, room.cipher, principal, data, idem)
    return await _written(room.database, room.clock, principal, result)


router.add_api_route("/bookings", create_booking, methods=["POST"], status_code=201, response_model=BookingRead,
                     route_class_override=AttemptRoute,
                     summary="Book a slot, or confirm a hold (Idempotency-Key required)")


async def create_hold(principal: Writer, request: Request, room: RoomDep, data: HoldCreate,
                      idempotency_key: IdempotencyKeyHeader = None) -> Response:
    idem = context_for(principal.subject, idempotency_key, "POST", request.scope["path"], await request.body())
    result = await service.hold(room.database, room.clock, room.cipher, room.runtime, principal, data, idem)
    return await _written(room.database, room.clock, principal, result)


router.add_api_route("/holds", create_hold, methods=["POST"], status_code=201, response_model=BookingRead,
                     route_class_override=AttemptRoute,
                     summary="Hold a slot for at most 15 minutes (Idempotency-Key required)")


# --- Availability and schedules -------------------------------------------------------------------------


@router.get("/sessions", response_model=list[AvailabilityRead], summary="Availability search (a cached hint)")
async def search_sessions(
    principal: Reader, database: DatabaseDep, clock: ClockDep, runtime: RuntimeDep,
    organization_id: RowId | None = None, department_id: RowId | None = None, practitioner_id: RowId | None = None,
    date_from: date | None = None, date_to: date | None = None,
) -> list[AvailabilityRead]:
    found = await schedules.search(database, clock, runtime, principal, organization_id=organization_id,
                                   department_id=department_id, practitioner_id=practitioner_id,
                                   date_from=date_from, date_to=date_to)
    await _audit_resident(database, clock, principal, Action.SEARCH, "booking_session")
    return found


@router.get("/sessions/{session_id}", response_model=SessionRead)
async def get_session(principal: Reader, session: SessionDep, clock: ClockDep, session_id: RowId) -> SessionRead:
    view = await schedules.get_session(session, session_id)
    if principal.resident_id is not None:
        record(session, clock, principal, Action.READ, "booking_session", resource_id=session_id,
               resident_ids=[principal.resident_id])
    return view


@router.post("/sessions", response_model=SessionRead, summary="Publish a session (same external_id: update)")
async def publish_session(principal: Scheduler, session: SessionDep, clock: ClockDep, runtime: RuntimeDep,
                          data: SessionCreate, response: Response) -> SessionRead:
    view, created = await schedules.publish_session(session, clock, runtime, principal, data)
    response.status_code = 201 if created else 200
    return view


@router.post("/sessions/{session_id}/suspend", response_model=SuspendResult, summary="Clinic suspension (停诊)")
async def suspend_session(principal: Scheduler, session: SessionDep, clock: ClockDep, runtime: RuntimeDep,
                          session_id: RowId, data: SuspendRequest) -> SuspendResult:
    return await suspension.suspend_session(session, clock, runtime, principal, session_id, data.reason)


@router.post("/templates", response_model=TemplateRead, status_code=201)
async def create_template(principal: Scheduler, session: SessionDep, clock: ClockDep,
                          data: TemplateCreate) -> TemplateRead:
    return await schedules.create_template(session, clock, principal, data)


@router.post("/templates/generate", response_model=GenerateResult, summary="Sessions from weekly templates")
async def generate_sessions(principal: Scheduler, session: SessionDep, clock: ClockDep, runtime: RuntimeDep,
                            data: GenerateRequest) -> GenerateResult:
    return await schedules.generate_sessions(session, clock, runtime, principal, data)


@router.get("/policies/{organization_id}", response_model=PolicyRead)
async def get_policy(principal: Reader, session: SessionDep, clock: ClockDep, organization_id: RowId) -> PolicyRead:
    view = await schedules.get_policy(session, organization_id)
    if principal.resident_id is not None:
        record(session, clock, principal, Action.READ, "booking_policy", resource_id=organization_id,
               resident_ids=[principal.resident_id])
    return view


@router.put("/policies/{organization_id}", response_model=PolicyRead)
async def put_policy(principal: Scheduler, session: SessionDep, clock: ClockDep, runtime: RuntimeDep,
                     organization_id: RowId, data: PolicyUpdate) -> PolicyRead:
    return await schedules.put_policy(session, clock, runtime, principal, organization_id, data)


# --- Bookings ----------------------------------------------------------------------------------------------


@router.get("/bookings", response_model=list[BookingRead], summary="A resident's own bookings")
async def list_my_bookings(principal: Reader, session: SessionDep, clock: ClockDep) -> list[BookingRead]:
    return await service.own_bookings(session, clock, principal)


@router.get("/bookings/{booking_id}", response_model=BookingRead)
async def get_booking(principal: Reader, session: SessionDep, clock: ClockDep, cipher: CipherDep,
                      booking_id: RowId) -> BookingRead:
    caller = caller_of(principal)
    booking = await service.owned_booking(session, cipher, clock, caller, booking_id, None, lock=False)
    record(session, clock, principal, Action.READ, service.RESOURCE, resource_id=booking.id,
           resident_ids=[booking.resident_id])
    return service.booking_read(booking)


@router.post("/bookings/{booking_id}/cancel", response_model=BookingRead)
async def cancel_booking(principal: Writer, session: SessionDep, clock: ClockDep, cipher: CipherDep,
                         runtime: RuntimeDep, booking_id: RowId, data: CancelRequest | None = None) -> BookingRead:
    return await lifecycle.cancel(session, clock, cipher, runtime, principal, booking_id, data or CancelRequest())


@router.post("/bookings/{booking_id}/reschedule", status_code=201, response_model=BookingRead,
             summary="Move a booking to another session (Idempotency-Key required)")
async def reschedule_booking(principal: Writer, request: Request, session: SessionDep, database: DatabaseDep,
                             clock: ClockDep, cipher: CipherDep, runtime: RuntimeDep, booking_id: RowId,
                             data: RescheduleRequest, idempotency_key: IdempotencyKeyHeader = None) -> Response:
    idem = context_for(principal.subject, idempotency_key, "POST", request.url.path, await request.body())
    result = await lifecycle.reschedule(session, clock, cipher, runtime, principal, booking_id, data, idem)
    return await _written(database, clock, principal, result)


@router.post("/bookings/{booking_id}/check-in", response_model=BookingRead, summary="The hospital reports arrival")
async def check_in(principal: Scheduler, session: SessionDep, clock: ClockDep, booking_id: RowId) -> BookingRead:
    return await lifecycle.check_in(session, clock, principal, booking_id)


@router.post("/waitlist", response_model=WaitlistRead, status_code=201, summary="Join a full session's waitlist")
async def join_waitlist(principal: Writer, session: SessionDep, clock: ClockDep, cipher: CipherDep,
                        data: WaitlistCreate) -> WaitlistRead:
    return await waitlist.join(session, clock, cipher, principal, data)
