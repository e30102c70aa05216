"""Publication for third parties as SMART Scheduling Links: a `$bulk-publish` manifest and NDJSON files of
FHIR Location, Schedule and Slot resources, with `_since` for incremental fetches.

One Slot per session (the spec allows a Slot to stand for several appointments: the slot-capacity
extension says how many are free), because a session's slots share one time range and one booking link.
The files are built from the database on request through the booking room's one-second snapshot cache,
so they are never more than seconds old (the spec asks for at least once a minute).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cityhealth.booking import schedule_repository
from cityhealth.booking.availability import BookingRuntime
from cityhealth.booking.service import read_connection
from cityhealth.clock import BUSINESS_TZ, Clock, business_date
from cityhealth.db.engine import Database

EXTENSIONS = "http://fhir-registry.smarthealthit.org/StructureDefinition"
HORIZON_DAYS = 14  # published sessions: from today up to this many days ahead
BOOKING_PHONE = "12320"


def _local(moment: datetime) -> str:
    return moment.astimezone(BUSINESS_TZ).isoformat(timespec="seconds")


def schedule_id(organization_id: int, department_id: int, practitioner_id: int | None) -> str:
    return f"{organization_id}-{department_id}-{practitioner_id or 0}"


def manifest(clock: Clock, base_url: str, since: datetime | None) -> dict[str, Any]:
    suffix = f"?_since={since.isoformat()}" if since is not None else ""
    files = (("Location", "locations"), ("Schedule", "schedules"), ("Slot", "slots"))
    return {
        "transactionTime": clock.now().isoformat(timespec="seconds"),
        "request": f"{base_url}/api/booking/$bulk-publish{suffix}",
        "output": [{"type": kind, "url": f"{base_url}/api/booking/smart/{name}.ndjson{suffix}"}
                   for kind, name in files],
        "error": [],
    }


def _window(clock: Clock) -> tuple[Any, Any, datetime]:
    now = clock.now()
    today = business_date(now)
    return today, today + timedelta(days=HORIZON_DAYS), now


async def locations(database: Database, clock: Clock, runtime: BookingRuntime,
                    since: datetime | None) -> list[dict[str, Any]]:
    first, last, now = _window(clock)

    async def load() -> list[dict[str, Any]]:
        async with read_connection(database) as connection:
            rows = await schedule_repository.released_locations(connection, first, last, now, since)
        return [{
            "resourceType": "Location", "id": str(org_id), "name": name,
            "identifier": [{"system": "urn:cityhealth:organization-code", "value": code}],
            "telecom": [{"system": "phone", "value": BOOKING_PHONE}],
            "address": {"district": area_code or "", "country": "CN"},
        } for org_id, name, code, area_code in rows]

    return await runtime.availability.get(("smart-locations", first, since, now.replace(second=0)), load)


async def schedules(database: Database, clock: Clock, runtime: BookingRuntime,
                    since: datetime | None) -> list[dict[str, Any]]:
    first, last, now = _window(clock)

    async def load() -> list[dict[str, Any]]:
        async with read_connection(database) as connection:
            rows = await schedule_repository.released_schedules(connection, first, last, now, since)
        resources = []
        for org_id, dept_id, practitioner_id, department, practitioner in rows:
            actor = [{"reference": f"Location/{org_id}"}]
            if practitioner is not None:
                actor.append({"display": practitioner})
            resources.append({
                "resourceType": "Schedule", "id": schedule_id(org_id, dept_id, practitioner_id),
                "serviceType": [{"text": department}], "actor": actor,
            })
        return resources

    return await runtime.availability.get(("smart-schedules", first, since, now.replace(second=0)), load)


async def slots(database: Database, clock: Clock, runtime: BookingRuntime, base_url: str,
                since: datetime | None) -> list[dict[str, Any]]:
    first, last, now = _window(clock)

    async def load() -> list[dict[str, Any]]:
        async with read_connection(database) as connection:
            rows = await schedule_repository.released_sessions(connection, first, last, now, since)
        resources = []
        for row in rows:
            free = row["capacity"] - row["booked"] if row["status"] == "open" and row["starts_at"] > now else 0
            resources.append({
                "resourceType": "Slot", "id": str(row["id"]),
                "schedule": {"reference": "Schedule/" + schedule_id(row["organization_id"], row["department_id"],
                                                                     row["practitioner_id"])},
                "status": "free" if free > 0 else "busy",
                "start": _local(row["starts_at"]), "end": _local(row["ends_at"]),
                "extension": [
                    {"url": f"{EXTENSIONS}/booking-deep-link",
                     "valueUrl": f"{base_url}/api/booking/sessions/{row['id']}"},
                    {"url": f"{EXTENSIONS}/booking-phone", "valueString": BOOKING_PHONE},
                    {"url": f"{EXTENSIONS}/slot-capacity", "valueInteger": free},
                ],
            })
        return resources

    return await runtime.availability.get(("smart-slots", first, since, now.replace(second=0), base_url), load)
