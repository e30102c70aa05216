"""Publication for third parties as SMART Scheduling Links: a `$bulk-publish` manifest and NDJSON files of
FHIR Location, Schedule and Slot resources, with `_since` for incremental fetches.

One Slot per session (the spec allows a Slot to stand for several appointments: the slot-capacity
extension says how many are free), because a session's slots share one time range and one booking link.
A slot is free as far as the booking rule lets the public channel (feed_free.PUBLIC_CHANNEL, the resident
booking page's) take it now, and its booking deep link opens that page.

Every file and the manifest carry a validator (`FeedState`, one aggregate read): a strong ETag and a
Last-Modified, so a poller's conditional request is answered 304 without reading or rendering a session.
A file is rendered once per state and process and kept (feed_cache.py); a changed state has a new ETag.
A new state reads again only the sessions whose row version changed (PostgreSQL), and renders again only
their lines while the clock's turning points and the places stay as they were (docs/decisions/booking-feed.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from cityhealth.booking import feed_repository, feed_subjects
from cityhealth.booking.feed_cache import FeedCache
from cityhealth.booking.feed_free import PUBLIC_CHANNEL, free_slots, last_modified, rules_of
from cityhealth.booking.release import ReleaseRules, at_business_time
from cityhealth.clock import BUSINESS_TZ, Clock, business_date
from cityhealth.db.engine import Database
from cityhealth.errors import DomainError

EXTENSIONS = "http://fhir-registry.smarthealthit.org/StructureDefinition"
HORIZON_DAYS = 14  # published sessions: from today up to this many days ahead
FILES = {"Location": "locations", "Schedule": "schedules", "Slot": "slots"}
BOOKING_PAGE = "/booking/slots/{slot_id}"  # the resident booking page (web/), public until sign-in is needed


def _local(moment: datetime) -> str:
    return moment.astimezone(BUSINESS_TZ).isoformat(timespec="seconds")


def schedule_id(organization_id: int, department_id: int, practitioner_id: int | None) -> str:
    return f"{organization_id}-{department_id}-{practitioner_id or 0}"


def _window(now: datetime) -> tuple[date, date]:
    today = business_date(now)
    return today, today + timedelta(days=HORIZON_DAYS)


@dataclass(frozen=True)
class Validator:
    """The feed's state as of now: `key` changes whenever any published file would change."""

    key: str
    last_modified: datetime
    # What the clock has changed of the rule's answers since the sessions were written: the day, the latest
    # next-day cut-off passed and the latest start passed (a released session's answer changes only then).
    clock_key: tuple[Any, ...] = ()
    places_key: tuple[Any, ...] = ()  # the last changes of hospitals, departments, practitioners and policies

    def etag(self, *parts: object) -> str:
        """The strong ETag of one representation (a file, its `_since` and base URL) of this state."""
        digest = hashlib.blake2b(repr((self.key, *parts)).encode(), digest_size=12).hexdigest()
        return f'"{digest}"'


async def validator(database: Database, clock: Clock) -> Validator:
    """The feed's validator from one aggregate read: its rows, its policies and the clock's turning points."""
    now = clock.now()
    first, last = _window(now)
    local_time = now.astimezone(BUSINESS_TZ).time()
    async with database.read_connection() as connection:
        state = await feed_repository.feed_state(connection, first, last, now, local_time)
    # Hospitals without a policy close tomorrow's booking at the default cut-off.
    cutoffs = [c for c in (state.cutoff_passed, ReleaseRules().next_day_cutoff) if c is not None and c <= local_time]
    cutoff = max(cutoffs, default=None)
    moments = [at_business_time(first, time(0, 0)), state.sessions_updated, state.last_released,
               state.last_started, state.policies_updated, state.organizations_updated,
               state.departments_updated, state.practitioners_updated, state.last_lapsed]
    if cutoff is not None:
        moments.append(at_business_time(first, cutoff))
    changed = max(m for m in moments if m is not None)
    key = hashlib.blake2b(repr((first, cutoff, state)).encode(), digest_size=16).hexdigest()
    return Validator(key, changed, (first, cutoff, state.last_started), (
        state.organizations_updated, state.departments_updated, state.practitioners_updated, state.policies_updated))


def _query(since: datetime | None) -> str:
    # Percent-encoded: a raw '+' of the offset would read back as a space.
    return "?" + urlencode({"_since": since.isoformat()}) if since is not None else ""


def manifest(state: Validator, base_url: str, since: datetime | None) -> bytes:
    """The `$bulk-publish` manifest; its transactionTime is the state's last change, a `_since` for next time."""
    suffix = _query(since)
    return orjson.dumps({
        "transactionTime": state.last_modified.isoformat(timespec="seconds"),
        "request": f"{base_url}/api/booking/$bulk-publish{suffix}",
        "output": [{"type": kind, "url": f"{base_url}/api/booking/smart/{name}.ndjson{suffix}"}
                   for kind, name in FILES.items()],
        "error": [],
    })


@dataclass(frozen=True)
class FeedData:
    """A state's published sessions and their hospitals (with their policies), departments and practitioners."""

    sessions: Sequence[Any]
    organizations: dict[int, Any]
    departments: dict[int, Any]
    practitioners: dict[int, Any]
    places_key: tuple[Any, ...]  # the validator's places_key they were read at
    versions: dict[int, str] | None = None  # the sessions' row versions (PostgreSQL) by id
    by_id: dict[int, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {row["id"]: row for row in self.sessions})


async def _sessions(connection: AsyncConnection, now: datetime, known: FeedData | None,
                    changed: set[int] | None) -> tuple[Sequence[Any], dict[int, str] | None]:
    """The window's released sessions and their versions: where rows have versions, only those new or changed
    since `known` are fetched (a write to one session costs one row, not ten thousand); the others are
    `known`'s rows, and the ids of those fetched are added to `changed`. Without row versions (SQLite) every
    row is read."""
    first, last = _window(now)
    versions = await feed_repository.feed_versions(connection, first, last, now)
    if versions is None or known is None or known.versions is None:
        rows = await feed_repository.feed_sessions(connection, first, last, now)
        return rows, None if versions is None else {row["id"]: row["version"] for row in rows}
    held, held_versions = known.by_id, known.versions
    stale = [i for i, version in versions.items() if held_versions.get(i) != version]
    fresh = {row["id"]: row for row in await feed_repository.feed_sessions(connection, first, last, now, stale)
             } if stale else {}
    for row in fresh.values():  # as read: it may have changed again between the two reads
        versions[row["id"]] = row["version"]
    if changed is not None:
        changed.update(stale)
    # A row gone between the two reads (deleted, or no longer in the window) is left out.
    rows = [row for row in (fresh.get(i) or held.get(i) for i in versions) if row is not None]
    return rows, {row["id"]: versions[row["id"]] for row in rows} if len(rows) < len(versions) else versions


async def _load(database: Database, now: datetime, state: Validator, known: FeedData | None,
                changed: set[int] | None) -> FeedData:
    """The state's sessions (those unchanged since `known` not fetched again); their places read again only
    when a place or policy changed or a new one is named."""
    async with database.read_connection() as connection:
        sessions, versions = await _sessions(connection, now, known, changed)
        ids = ({r["organization_id"] for r in sessions}, {r["department_id"] for r in sessions},
               {r["practitioner_id"] for r in sessions if r["practitioner_id"] is not None})
        if (known is not None and known.places_key == state.places_key and ids[0] <= known.organizations.keys()
                and ids[1] <= known.departments.keys() and ids[2] <= known.practitioners.keys()):
            return FeedData(sessions, known.organizations, known.departments, known.practitioners, state.places_key,
                            versions)
        places = await feed_repository.feed_places(connection, *ids)
    return FeedData(sessions, *places, state.places_key, versions)


async def document(database: Database, clock: Clock, cache: FeedCache, state: Validator, kind: str,
                   base_url: str, since: datetime | None) -> bytes:
    """The NDJSON file of `kind` for this state (rendered once per state, `_since` and base URL)."""
    key = (kind, state.key, since, base_url)
    body = cache.document(key)
    if body is not None:
        return body
    async with cache.lock:  # one render per file at a time: the others take its result
        body = cache.document(key)
        if body is None:
            now = clock.now()
            if cache.rows_key != state.key:
                cache.rows, cache.rows_key = await _load(database, now, state, cache.rows, cache.changed), state.key
            body = b"".join(_RENDER[kind](cache.rows, now, state, base_url, since, cache))
            cache.keep(key, body)
            if len(cache.lines) > 2 * len(cache.rows.sessions) + 1000:  # sessions gone from the window
                published = {row["id"] for row in cache.rows.sessions}
                cache.lines = {k: v for k, v in cache.lines.items() if k in published}
        return body


def _line(resource: dict[str, Any]) -> bytes:
    return orjson.dumps(resource) + b"\n"


def _first_released(data: FeedData, group: Callable[[Any], Any]) -> dict[Any, datetime]:
    """Per group, the earliest release among its published sessions: when the group appeared in the feed."""
    found: dict[Any, datetime] = {}
    for row in data.sessions:
        key = group(row)
        if key not in found or row["released_at"] < found[key]:
            found[key] = row["released_at"]
    return found


def _changed(since: datetime | None, *moments: datetime | None) -> bool:
    return since is None or any(m is not None and m > since for m in moments)


def _locations(data: FeedData, now: datetime, state: Validator, base_url: str, since: datetime | None,
               cache: FeedCache) -> Iterable[bytes]:
    appeared = _first_released(data, lambda r: r["organization_id"])
    for org_id, org in sorted(data.organizations.items()):
        if not _changed(since, org["updated_at"], appeared[org_id]):
            continue
        address = {"line": [org["address_line"]] if org["address_line"] else None, "city": org["address_city"],
                   "district": org["address_district"], "state": org["address_state"],
                   "postalCode": org["postal_code"], "country": "CN"}
        location: dict[str, Any] = {
            "resourceType": "Location", "id": str(org_id), "name": org["name"],
            "identifier": [{"system": "urn:cityhealth:organization-code", "value": org["code"]}],
            "address": {k: v for k, v in address.items() if v is not None},
        }
        if org["booking_phone"]:
            location["telecom"] = [{"system": "phone", "value": org["booking_phone"]}]
        yield _line(location)


def _schedule_key(row: Any) -> str:
    return schedule_id(row["organization_id"], row["department_id"], row["practitioner_id"])


def _schedules(data: FeedData, now: datetime, state: Validator, base_url: str, since: datetime | None,
               cache: FeedCache) -> Iterable[bytes]:
    appeared = _first_released(data, _schedule_key)
    seen: set[str] = set()
    for row in sorted(data.sessions,
                      key=lambda r: (r["organization_id"], r["department_id"], r["practitioner_id"] or 0)):
        key = _schedule_key(row)
        department = data.departments[row["department_id"]]
        practitioner = data.practitioners.get(row["practitioner_id"])
        if key in seen or not _changed(since, department["updated_at"],
                                       practitioner["updated_at"] if practitioner else None, appeared[key]):
            continue
        seen.add(key)
        service = {"text": department["local_name"]}
        coding = feed_subjects.coding(department["subject_code"])
        actor: list[dict[str, str]] = [{"reference": f"Location/{row['organization_id']}"}]
        if practitioner is not None:
            actor.append({"display": practitioner["name"]})
        yield _line({"resourceType": "Schedule", "id": key,
                     "serviceType": [{"coding": [coding], **service} if coding else service], "actor": actor})


def _slots(data: FeedData, now: datetime, state: Validator, base_url: str, since: datetime | None,
           cache: FeedCache) -> Iterable[bytes]:
    render = _SlotRender(now, base_url)
    # Everything a line is made of: the row (its version), the policy, the clock's turning points, the phone
    # and the base URL. A line made of the same is the same line: only changed sessions are asked of the rule
    # and rendered again. While the clock and the places are as at the last full file, those changed are known
    # (cache.changed: the versions read since), and the others' lines are taken as they are, unasked.
    context = (state.clock_key, state.places_key, base_url)
    known_changes = since is None and cache.changed is not None and cache.slots_context == context
    changed = cache.changed if known_changes and cache.changed is not None else set()
    versions = data.versions
    for row in data.sessions:
        cached = cache.lines.get(row["id"])
        if known_changes and cached is not None and row["id"] not in changed:
            yield cached[1]
            continue
        organization = data.organizations[row["organization_id"]]
        rules = render.rules_of(row["organization_id"], organization)
        if since is not None and last_modified(row, rules, organization["policy_updated_at"], now) <= since:
            continue
        made_of = (versions[row["id"]] if versions is not None else tuple(row.values()),
                   organization["policy_updated_at"], state.clock_key, organization["booking_phone"], base_url)
        if cached is None or cached[0] != made_of:
            cached = cache.lines[row["id"]] = (made_of, render.line(row, organization, rules))
        yield cached[1]
    if since is None:  # every line is now made of the current rows
        cache.changed, cache.slots_context = (set() if versions is not None else None), context


class _SlotRender:
    """One Slot line of a session: free as far as the booking rule lets the public channel take it now."""

    def __init__(self, now: datetime, base_url: str) -> None:
        self.now, self.link = now, base_url + BOOKING_PAGE
        self.rules: dict[int, ReleaseRules] = {}
        self.decided: dict[tuple[Any, ...], DomainError | None] = {}

    def rules_of(self, organization_id: int, organization: Any) -> ReleaseRules:
        rules = self.rules.get(organization_id)
        if rules is None:
            rules = self.rules[organization_id] = rules_of(organization)
        return rules

    def line(self, row: Any, organization: Any, rules: ReleaseRules) -> bytes:
        free = free_slots(row, rules, PUBLIC_CHANNEL, self.now, self.decided)
        phone = organization["booking_phone"]
        extension: list[dict[str, object]] = [
            {"url": f"{EXTENSIONS}/booking-deep-link", "valueUrl": self.link.format(slot_id=row["id"])}]
        if phone:
            extension.append({"url": f"{EXTENSIONS}/booking-phone", "valueString": phone})
        extension.append({"url": f"{EXTENSIONS}/slot-capacity", "valueInteger": free})
        return _line({"resourceType": "Slot", "id": str(row["id"]),
                      "schedule": {"reference": "Schedule/" + _schedule_key(row)},
                      "status": "free" if free > 0 else "busy", "start": _local(row["starts_at"]),
                      "end": _local(row["ends_at"]), "extension": extension})


_RENDER: dict[str, Callable[[FeedData, datetime, Validator, str, datetime | None, FeedCache], Iterable[bytes]]] = {
    "Location": _locations, "Schedule": _schedules, "Slot": _slots}
