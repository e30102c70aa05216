"""Publication for third parties as SMART Scheduling Links: a `$bulk-publish` manifest and NDJSON files of
FHIR Location, Schedule and Slot resources, with `_since` for incremental fetches.

One Slot per session (the spec allows a Slot to stand for several appointments: the slot-capacity
extension says how many are free), because a session's slots share one time range and one booking link.
A slot is free as far as the booking rule lets the public channel (feed_free.PUBLIC_CHANNEL, the resident
booking page's) take it now, and its booking deep link opens that page.

Every file and the manifest carry a validator (`FeedState`, one aggregate read): a strong ETag and a
Last-Modified, so a poller's conditional request is answered 304 without reading or rendering a session.
A file is rendered once per state and process and kept (feed_cache.py); a changed state has a new ETag.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson

from cityhealth.booking import feed_repository, feed_subjects
from cityhealth.booking.feed_cache import FeedCache
from cityhealth.booking.feed_free import PUBLIC_CHANNEL, free_slots, last_modified, rules_of
from cityhealth.booking.release import ReleaseRules, at_business_time
from cityhealth.booking.service import read_connection
from cityhealth.clock import BUSINESS_TZ, Clock, business_date
from cityhealth.db.engine import Database

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

    def etag(self, *parts: object) -> str:
        """The strong ETag of one representation (a file, its `_since` and base URL) of this state."""
        digest = hashlib.blake2b(repr((self.key, *parts)).encode(), digest_size=12).hexdigest()
        return f'"{digest}"'


async def validator(database: Database, clock: Clock) -> Validator:
    """The feed's validator from one aggregate read: its rows, its policies and the clock's turning points."""
    now = clock.now()
    first, last = _window(now)
    local_time = now.astimezone(BUSINESS_TZ).time()
    async with read_connection(database) as connection:
        state = await feed_repository.feed_state(connection, first, last, now, local_time)
    # Hospitals without a policy close tomorrow's booking at the default cut-off.
    cutoffs = [c for c in (state.cutoff_passed, ReleaseRules().next_day_cutoff) if c is not None and c <= local_time]
    cutoff = max(cutoffs, default=None)
    moments = [at_business_time(first, time(0, 0)), state.sessions_updated, state.last_released,
               state.last_started, state.policies_updated, state.organizations_updated,
               state.departments_updated, state.practitioners_updated]
    if cutoff is not None:
        moments.append(at_business_time(first, cutoff))
    changed = max(m for m in moments if m is not None)
    key = hashlib.blake2b(repr((first, cutoff, state)).encode(), digest_size=16).hexdigest()
    return Validator(key, changed)


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
                first, last = _window(now)
                async with read_connection(database) as connection:
                    cache.rows = await feed_repository.feed_rows(connection, first, last, now)
                cache.rows_key = state.key
            body = b"".join(orjson.dumps(r) + b"\n" for r in _RENDER[kind](cache.rows, now, base_url, since))
            cache.keep(key, body)
        return body


def _first_released(rows: Iterable[dict[str, Any]], group: Callable[[dict[str, Any]], Any]) -> dict[Any, datetime]:
    """Per group, the earliest release among its published sessions: when the group appeared in the feed."""
    found: dict[Any, datetime] = {}
    for row in rows:
        key = group(row)
        if key not in found or row["released_at"] < found[key]:
            found[key] = row["released_at"]
    return found


def _changed(since: datetime | None, *moments: datetime | None) -> bool:
    return since is None or any(m is not None and m > since for m in moments)


def _locations(rows: list[dict[str, Any]], now: datetime, base_url: str,
               since: datetime | None) -> Iterable[dict[str, Any]]:
    appeared = _first_released(rows, lambda r: r["organization_id"])
    seen: set[int] = set()
    for row in rows:
        org_id = row["organization_id"]
        if org_id in seen or not _changed(since, row["organization_updated_at"], appeared[org_id]):
            continue
        seen.add(org_id)
        address = {"line": [row["address_line"]] if row["address_line"] else None, "city": row["address_city"],
                   "district": row["address_district"], "state": row["address_state"],
                   "postalCode": row["postal_code"], "country": "CN"}
        location: dict[str, Any] = {
            "resourceType": "Location", "id": str(org_id), "name": row["organization_name"],
            "identifier": [{"system": "urn:cityhealth:organization-code", "value": row["organization_code"]}],
            "address": {k: v for k, v in address.items() if v is not None},
        }
        if row["booking_phone"]:
            location["telecom"] = [{"system": "phone", "value": row["booking_phone"]}]
        yield location


def _schedule_key(row: dict[str, Any]) -> str:
    return schedule_id(row["organization_id"], row["department_id"], row["practitioner_id"])


def _schedules(rows: list[dict[str, Any]], now: datetime, base_url: str,
               since: datetime | None) -> Iterable[dict[str, Any]]:
    appeared = _first_released(rows, _schedule_key)
    seen: set[str] = set()
    for row in sorted(rows, key=lambda r: (r["organization_id"], r["department_id"], r["practitioner_id"] or 0)):
        key = _schedule_key(row)
        if key in seen or not _changed(since, row["department_updated_at"], row["practitioner_updated_at"],
                                       appeared[key]):
            continue
        seen.add(key)
        service = {"text": row["department_name"]}
        coding = feed_subjects.coding(row["subject_code"])
        actor: list[dict[str, str]] = [{"reference": f"Location/{row['organization_id']}"}]
        if row["practitioner_name"] is not None:
            actor.append({"display": row["practitioner_name"]})
        yield {"resourceType": "Schedule", "id": key,
               "serviceType": [{"coding": [coding], **service} if coding else service], "actor": actor}


def _slots(rows: list[dict[str, Any]], now: datetime, base_url: str,
           since: datetime | None) -> Iterable[dict[str, Any]]:
    rules: dict[int, ReleaseRules] = {}
    link = base_url + BOOKING_PAGE
    for row in rows:
        org_rules = rules.get(row["organization_id"])
        if org_rules is None:
            org_rules = rules[row["organization_id"]] = rules_of(row)
        if since is not None and last_modified(row, org_rules, now) <= since:
            continue
        free = free_slots(row, org_rules, PUBLIC_CHANNEL, now)
        extension: list[dict[str, object]] = [
            {"url": f"{EXTENSIONS}/booking-deep-link", "valueUrl": link.format(slot_id=row["id"])}]
        if row["booking_phone"]:
            extension.append({"url": f"{EXTENSIONS}/booking-phone", "valueString": row["booking_phone"]})
        extension.append({"url": f"{EXTENSIONS}/slot-capacity", "valueInteger": free})
        yield {"resourceType": "Slot", "id": str(row["id"]),
               "schedule": {"reference": "Schedule/" + _schedule_key(row)}, "status": "free" if free > 0 else "busy",
               "start": _local(row["starts_at"]), "end": _local(row["ends_at"]), "extension": extension}


_RENDER: dict[str, Callable[[list[dict[str, Any]], datetime, str, datetime | None], Iterable[dict[str, Any]]]] = {
    "Location": _locations, "Schedule": _schedules, "Slot": _slots}
