"""A unit's rejected records of a month, page by page: the data-quality operator's drill-down.

Only bulk jobs keep their rejected rows (collection_job_rejections). A real-time batch answers each record
in its response and keeps no rejected row afterwards: its rejections are in the daily and per-rule counters
only, so they appear in the unit's rule counts but never here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, and_, cast, exists, func, literal, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock, business_midnight
from cityhealth.collection.metrics import field_key
from cityhealth.collection.models import Job, JobRejection
from cityhealth.collection.quality import parse_month
from cityhealth.collection.standard import load_standard
from cityhealth.errors import Forbidden, NotFound, ValidationFailed
from cityhealth.personal_numbers import scrub
from cityhealth.registry.identifiers import mask_phone, mask_resident_id
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal, Scope

MAX_PAGE = 1000
RESOURCE = "collection_job_rejections"
# People's names and birth dates are personal data too, though the standard encrypts only ID and phone numbers.
_PERSONAL_FIELDS = frozenset({"name", "doctor_name", "reporter", "responsible_doctor", "birth_date"})


@dataclass(frozen=True)
class ShownError:
    """One broken rule of a rejected record, as an operator may see it (no value, personal data masked)."""

    rule: str
    field: str
    message: str
    message_zh: str


@dataclass(frozen=True)
class RejectedRecord:
    job_id: int
    position: int  # the row of the uploaded file, 1-based
    form: str | None  # None: the row's form could not be told (unreadable line, unknown form)
    record_id: str | None
    errors: list[ShownError]


@cache
def personal_fields() -> frozenset[str]:
    """Fields whose values an error must not show: the standard's sensitive fields, names and birth dates."""
    sensitive = {spec.name for form in load_standard().forms.values() for spec in form.fields if spec.sensitive}
    return frozenset(sensitive) | _PERSONAL_FIELDS


def _masked_value(field: str, value: str) -> str:
    if field == "id_number":
        return mask_resident_id(value)
    if field == "phone":
        return mask_phone(value)
    return "*" * min(len(value), 8)


def shown_error(error: dict[str, Any]) -> ShownError:
    """A stored error without its value, the value masked in the messages when the field is personal."""
    field = str(error.get("field") or "")
    messages = [str(error.get("message") or ""), str(error.get("message_zh") or "")]
    value = error.get("value")
    name = field_key(field).rsplit(".", 1)[-1].removesuffix("[]")
    if isinstance(value, str) and value and name in personal_fields():
        masked = _masked_value(name, value)
        messages = [message.replace(value, masked) for message in messages]
    english, chinese = (scrub(message) for message in messages)
    return ShownError(rule=str(error.get("rule") or ""), field=field, message=english, message_zh=chinese)


def _breaks_rule(session: AsyncSession, rule: str) -> ColumnElement[bool]:
    """The row's errors include `rule` (a JSON array of objects: a containment test or a json_each lookup)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(JobRejection.errors, JSONB).contains(cast([{"rule": rule}], JSONB))
    each = func.json_each(JobRejection.errors).table_valued("value").alias("error")
    return exists(select(literal(1)).select_from(each).where(func.json_extract(each.c.value, "$.rule") == rule))


def _allowed(principal: Principal, organization_id: int) -> None:
    if not principal.has(Scope.COLLECTION_READ):
        raise Forbidden(
            f"reading rejected records needs scope {Scope.COLLECTION_READ}",
            code="insufficient_scope",
            field="scope",
            value=Scope.COLLECTION_READ.value,
        )
    # A client or staff member bound to an organization sees its own unit only; another's looks absent.
    if principal.organization_id is not None and principal.organization_id != organization_id:
        raise NotFound(
            f"no organization {organization_id}",
            code="organization_not_found",
            field="organization",
            value=organization_id,
        )


async def rejected_records(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    organization_id: int,
    month: str,
    *,
    rule: str | None = None,
    after: tuple[int, int] | None = None,
    limit: int = 100,
) -> list[RejectedRecord]:
    """A page of the unit's rejected bulk-upload rows received in the month, after (job id, position).

    Real-time rejections are not stored per record (see the module docstring) and are not returned; dry
    runs, which change no counter, are left out too. The read is audited (one event per page).
    """
    _allowed(principal, organization_id)
    _, first, last = parse_month(month)
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationFailed(
            f"limit must be between 1 and {MAX_PAGE}",
            code="invalid_limit",
            field="limit",
            value=limit,
            rule="range.max" if limit > MAX_PAGE else "range.min",
        )
    statement = (
        select(
            JobRejection.job_id, JobRejection.position, JobRejection.form, JobRejection.record_id, JobRejection.errors
        )
        .join(Job, Job.id == JobRejection.job_id)
        .where(
            JobRejection.organization_id == organization_id,
            Job.organization_id == organization_id,
            Job.dry_run.is_(False),
            # The upload day is the job's receipt day, as in the daily counters.
            Job.received_at >= business_midnight(first),
            Job.received_at < business_midnight(last + timedelta(days=1)),
        )
        .order_by(JobRejection.job_id, JobRejection.position)
        .limit(limit)
    )
    if after is not None:
        job_id, position = after
        statement = statement.where(
            or_(JobRejection.job_id > job_id, and_(JobRejection.job_id == job_id, JobRejection.position > position))
        )
    if rule is not None:
        statement = statement.where(_breaks_rule(session, rule))
    rows = [
        RejectedRecord(
            job_id=int(job_id),
            position=int(position),
            form=form,
            record_id=None if record_id is None else scrub(record_id),
            errors=[shown_error(error) for error in errors if isinstance(error, dict)],
        )
        for job_id, position, form, record_id, errors in await session.execute(statement)
    ]
    cursor = f"{after[0]}:{after[1]}" if after else "-"
    record(
        session,
        clock,
        principal,
        Action.LIST,
        RESOURCE,
        resource_id=organization_id,
        detail=f"month={month} rule={rule or '*'} after={cursor} rows={len(rows)}",
    )
    return rows


__all__ = ["MAX_PAGE", "RESOURCE", "RejectedRecord", "ShownError", "rejected_records", "shown_error"]
