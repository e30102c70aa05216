"""SMART Scheduling Links routes: the `$bulk-publish` manifest and its NDJSON files, with HTTP validators.

Each answer carries an ETag, a Last-Modified and a Cache-Control that asks for revalidation; a request whose
If-None-Match (or, without one, If-Modified-Since) matches gets 304 from the validator's one aggregate read,
before any session is read or rendered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from cityhealth.booking import publication
from cityhealth.booking.feed_cache import FeedCache
from cityhealth.clock import Clock
from cityhealth.db.engine import Database
from cityhealth.errors import Forbidden, ValidationFailed
from cityhealth.security.audit import Action, Outcome, record_now
from cityhealth.security.dependencies import require
from cityhealth.security.principals import Principal, PrincipalKind, Scope

router = APIRouter(prefix="/api/booking", tags=["booking"])
Reader = Annotated[Principal, Depends(require(Scope.BOOKING_READ))]

# Clients may keep a file but must ask again before using it: the answer is a cheap 304 while nothing changed.
CACHE_CONTROL = "private, max-age=0, must-revalidate"
SinceQuery = Annotated[datetime | None, Query(alias="_since", description="only resources changed after this")]


@dataclass(frozen=True)
class Feed:
    """What the feed's routes take from the app: one dependency, built once per app."""

    database: Database
    clock: Clock
    cache: FeedCache
    base_url: str  # the platform's public base URL: the links in the files never follow a request's Host


def feed_of(app: Any) -> Feed:
    feed: Feed | None = getattr(app.state, "booking_feed", None)
    if feed is None:
        feed = app.state.booking_feed = Feed(app.state.database, app.state.clock, FeedCache(),
                                            app.state.settings.public_base_url)
    return feed


async def get_feed(request: Request) -> Feed:
    return feed_of(request.app)


FeedDep = Annotated[Feed, Depends(get_feed)]


async def _require_machine(feed: Feed, principal: Principal) -> None:
    # The spec makes these files public; here they are for registered third parties only, because a
    # slot feed at release time is exactly the load we keep off the platform, and a registered client
    # can be rate-limited, identified and cut off.
    if principal.kind is not PrincipalKind.CLIENT:
        await record_now(feed.database, feed.clock, principal, Action.DENIED, "booking_feed",
                         resident_ids=[principal.resident_id] if principal.resident_id is not None else [],
                         outcome=Outcome.DENIED, detail="machine_clients_only")
        raise Forbidden("the scheduling feed is for registered machine clients", code="machine_clients_only",
                        field="principal", rule="booking.smart_clients")


def _aware(since: datetime | None) -> datetime | None:
    if since is not None and (since.tzinfo is None or since.utcoffset() is None):
        raise ValidationFailed("_since needs a timezone (e.g. 2022-06-15T09:30:00+08:00)", code="naive_since",
                               field="_since", value=since.isoformat(), rule="booking.since_timezone")
    return since


def _not_modified(request: Request, etag: str, last_modified: datetime) -> bool:
    """RFC 9110 §13.1: If-None-Match decides when present; else If-Modified-Since, at a second's precision."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag in tags
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an unreadable date is ignored, as the RFC asks
    return since.tzinfo is not None and last_modified.replace(microsecond=0) <= since


def _answer(state: publication.Validator, etag: str, media_type: str,
            render: bytes | None = None) -> Response:
    headers = {"ETag": etag, "Last-Modified": format_datetime(state.last_modified.astimezone(UTC), usegmt=True),
               "Cache-Control": CACHE_CONTROL}
    if render is None:
        return Response(status_code=304, headers=headers)
    return Response(content=render, media_type=media_type, headers=headers)


@router.get("/$bulk-publish", summary="SMART Scheduling Links manifest", response_class=Response,
            responses={304: {"description": "not modified"}})
async def bulk_publish(principal: Reader, request: Request, feed: FeedDep, since: SinceQuery = None) -> Response:
    await _require_machine(feed, principal)
    since, base = _aware(since), feed.base_url
    state = await publication.validator(feed.database, feed.clock)
    etag = state.etag("manifest", since, base)
    if _not_modified(request, etag, state.last_modified):
        return _answer(state, etag, "application/json")
    return _answer(state, etag, "application/json", publication.manifest(state, base, since))


async def _file(kind: str, principal: Principal, request: Request, feed: Feed, since: datetime | None) -> Response:
    await _require_machine(feed, principal)
    since, base = _aware(since), feed.base_url
    state = await publication.validator(feed.database, feed.clock)
    etag = state.etag(kind, since, base)
    if _not_modified(request, etag, state.last_modified):
        return _answer(state, etag, "application/fhir+ndjson")
    body = await publication.document(feed.database, feed.clock, feed.cache, state, kind, base, since)
    return _answer(state, etag, "application/fhir+ndjson", body)


@router.get("/smart/locations.ndjson", response_class=Response, responses={304: {"description": "not modified"}})
async def smart_locations(principal: Reader, request: Request, feed: FeedDep,
                          since: SinceQuery = None) -> Response:
    return await _file("Location", principal, request, feed, since)


@router.get("/smart/schedules.ndjson", response_class=Response, responses={304: {"description": "not modified"}})
async def smart_schedules(principal: Reader, request: Request, feed: FeedDep,
                          since: SinceQuery = None) -> Response:
    return await _file("Schedule", principal, request, feed, since)


@router.get("/smart/slots.ndjson", response_class=Response, responses={304: {"description": "not modified"}})
async def smart_slots(principal: Reader, request: Request, feed: FeedDep,
                      since: SinceQuery = None) -> Response:
    return await _file("Slot", principal, request, feed, since)
