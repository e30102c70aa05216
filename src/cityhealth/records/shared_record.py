"""The shared record of one resident: the first page (who, health flags), the encounters across every hospital
newest first, and the public-health record, all read from the timeline index by resident (records/models.py),
never from the month's stored records."""

from __future__ import annotations

import base64
from datetime import datetime

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.errors import ValidationFailed
from cityhealth.records import repository
from cityhealth.records.models import TimelineEntry
from cityhealth.records.schemas import HealthFlags, SharedRecord, TimelineItem
from cityhealth.records.timeline import ENCOUNTER_CATEGORIES, PUBLIC_HEALTH_CATEGORIES
from cityhealth.registry import service as registry
from cityhealth.security.crypto import FieldCipher

PUBLIC_HEALTH_SHOWN = 20
HYPERTENSION_CODES = ("I10", "I11", "I12", "I13", "I15")
DIABETES_CODES = ("E10", "E11", "E12", "E13", "E14")


async def shared_record(session: AsyncSession, cipher: FieldCipher, resident_id: int, access_id: int, *,
                        before: tuple[datetime, int, str, str] | None, limit: int) -> SharedRecord:
    """The record as opened under the access-log entry `access_id` (the caller checked and logged it); `before`
    is page_cursor's reading of a previous page's next_before."""
    resident = await registry.resident_view(session, cipher, resident_id)
    timeline = await repository.resident_timeline(session, resident_id, categories=ENCOUNTER_CATEGORIES,
                                                  before=before, limit=limit)
    public_health = await repository.latest_of_categories(session, resident_id, PUBLIC_HEALTH_CATEGORIES,
                                                          PUBLIC_HEALTH_SHOWN)
    names = await registry.organization_names(session, {row.organization_id for row in timeline + public_health})
    links = await repository.links_of_resident(session, resident_id)
    return SharedRecord(
        resident=resident,
        flags=await _flags(session, resident_id, public_health),
        linked_identities=len(links),
        timeline=[_item(row, names) for row in timeline],
        next_before=_token(timeline[-1]) if len(timeline) == limit else None,
        public_health=[_item(row, names) for row in public_health],
        access_id=access_id,
    )


async def _flags(session: AsyncSession, resident_id: int, public_health: list[TimelineEntry]) -> HealthFlags:
    categories = {row.category for row in public_health}
    diagnoses = await repository.latest_of_categories(session, resident_id, ("diagnosis", "discharge", "admission"),
                                                      200)
    codes = {str(row.summary.get(name, ""))[:3] for row in diagnoses
             for name in ("diagnosis_code", "main_diagnosis_code", "admission_diagnosis_code")}
    blood = next((row.summary for row in diagnoses if row.category == "discharge" and row.summary.get("abo_name")),
                 None)
    pressure = next((row.summary for row in public_health if "sbp" in row.summary and "dbp" in row.summary), None)
    return HealthFlags(
        hypertension="hypertension_followup" in categories or bool(codes & set(HYPERTENSION_CODES)),
        diabetes="diabetes_followup" in categories or bool(codes & set(DIABETES_CODES)),
        blood_group=f"{blood['abo_name']} {blood.get('rh_name', '')}".strip() if blood else None,
        last_blood_pressure=f"{pressure['sbp']}/{pressure['dbp']}" if pressure else None,
    )


def _item(row: TimelineEntry, names: dict[int, str]) -> TimelineItem:
    return TimelineItem(organization_id=row.organization_id, organization_name=names.get(row.organization_id),
                        form=row.form, record_id=row.record_id, category=row.category,
                        encounter_kind=row.encounter_kind, encounter_no=row.encounter_no, event_time=row.event_time,
                        summary=row.summary)


def _token(row: TimelineEntry) -> str:
    raw = orjson.dumps([row.event_time.isoformat(), row.organization_id, row.form, row.record_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def page_cursor(token: str | None) -> tuple[datetime, int, str, str] | None:
    """The position a next_before token names; 422 for one no page gave (checked before the record is opened)."""
    if token is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        moment, organization_id, form, record_id = orjson.loads(raw)
        return (datetime.fromisoformat(moment), int(organization_id), str(form), str(record_id))
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise ValidationFailed("before is the next_before of a previous page", field="before", value=token,
                               rule="page.cursor") from None
