"""Cases: a member submits one, the routing sends it to a reading centre, the centre receives, accepts or
rejects it (a rejection re-routes it), one of its doctors claims it, drafts and signs the report, which goes
back to the requester. Each step is taken once per request key, checked against the case's status
(workflow.py) and appended to its events; every read and write is audited with the case's resident.

Object rule: a reading centre sees a case only while it is routed to it, a requester only the cases its
organization submitted; any other case looks like one that does not exist (404)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock, business_date
from cityhealth.config import Settings
from cityhealth.errors import Conflict, Forbidden, NotFound, ValidationFailed
from cityhealth.registry import service as registry
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal, Scope
from cityhealth.telemed import repository, routing, volumes
from cityhealth.telemed.fingerprint import fingerprint as request_fingerprint
from cityhealth.telemed.models import Case, Member
from cityhealth.telemed.schemas import (
    CaseDetail,
    CaseEventRead,
    CaseRead,
    CaseSubmit,
    RejectIn,
    RejectRead,
    ReportRead,
    StepIn,
)
from cityhealth.telemed.workflow import OPEN_STATUSES, OUTCOMES, REROUTED, ROUTED, UNROUTABLE, Outcome, check_step

RESOURCE = "telemed_case"
View = Literal["centre", "requester"]
# The event a step appends first: a retried request key is the same step when its event is of this kind.
KIND_OF_STEP = {
    "receive": "received",
    "accept": "accepted",
    "reject": "rejected",
    "claim": "claimed",
    "release": "released",
    "draft": "drafted",
    "sign": "signed",
    "cancel": "cancelled",
}


def _view_of(principal: Principal, case: Case) -> View | None:
    """How the caller sees the case: as the centre it is routed to, as its requester, or not at all."""
    organization = principal.organization_id
    if organization is None:
        return None
    if principal.has(Scope.TELEMED_READ) and case.centre_organization_id == organization:
        return "centre"
    if principal.has(Scope.TELEMED_REQUEST) and case.requester_organization_id == organization:
        return "requester"
    return None


async def visible(
    session: AsyncSession, principal: Principal, case_id: int, *, as_: View | None = None, lock: bool = False
) -> tuple[Case, View]:
    found = await repository.case(session, case_id, lock=lock)
    view = _view_of(principal, found) if found is not None else None
    if found is None or view is None or (as_ is not None and view != as_):
        raise NotFound(f"no case {case_id}", field="case_id", value=case_id, rule="telemed.case.visible")
    return found, view


def _residents(case: Case) -> list[int | None]:
    return [case.resident_id] if case.resident_id is not None else []


def read_of(case: Case, now: datetime) -> CaseRead:
    return CaseRead(
        id=case.id,
        network_code=case.network_code,
        external_id=case.external_id,
        case_type=case.case_type,
        modality=case.modality,
        priority=case.priority,
        requester_member_id=case.requester_member_id,
        requester_organization_id=case.requester_organization_id,
        centre_member_id=case.centre_member_id,
        centre_organization_id=case.centre_organization_id,
        resident_id=case.resident_id,
        status=case.status,
        business_status=case.business_status,
        holder=case.holder,
        submitted_at=case.submitted_at,
        due_at=case.due_at,
        completed_at=case.completed_at,
        overdue=case.status in OPEN_STATUSES and now > case.due_at,
    )


async def _detail(session: AsyncSession, clock: Clock, case: Case, view: View) -> CaseDetail:
    report = await repository.report(session, case.id)
    shown = report if report is not None and (view == "centre" or report.signed_at is not None) else None
    return CaseDetail(
        **read_of(case, clock.now()).model_dump(),
        clinical_question=case.clinical_question,
        events=[
            CaseEventRead(
                seq=e.seq, kind=e.kind, at=e.at, actor=e.actor, centre_member_id=e.centre_member_id, note=e.note
            )
            for e in await repository.events(session, case.id)
        ],
        report=ReportRead(
            author=shown.author,
            findings=shown.findings,
            conclusion=shown.conclusion,
            written_at=shown.written_at,
            signed_at=shown.signed_at,
            signed_by=shown.signed_by,
        )
        if shown is not None
        else None,
    )


async def requester_member(session: AsyncSession, principal: Principal, network_code: str, now: datetime) -> Member:
    organization = principal.organization_id
    found = None
    if organization is not None:
        found = await repository.active_member(
            session, network_code, organization, business_date(now), repository.REQUESTING_ROLES
        )
    if found is None:
        raise Forbidden(
            f"organization {organization} is not a requesting member of the {network_code} network today",
            code="not_a_member",
            field="network_code",
            value=network_code,
            rule="telemed.case.requester_member",
        )
    return found


async def _route(
    session: AsyncSession,
    now: datetime,
    case_type: str,
    modality: str | None,
    network_code: str,
    requester: Member,
    excluded: set[int],
) -> routing.Centre | None:
    """The reading centre the case goes to (routing.py's rules over today's centres and their loads)."""
    members = await repository.reading_centres(session, network_code, business_date(now))
    loads = await repository.open_loads(session, [m.id for m in members], OPEN_STATUSES)
    designated = (await repository.designations_of(session, [requester.id]))[requester.id]
    centres = [
        routing.Centre(m.id, m.organization_id, m.reads_case_types, m.reads_modalities, loads.get(m.id, 0))
        for m in members
    ]
    return routing.choose(
        centres,
        case_type=case_type,
        modality=modality,
        requester_organization_id=requester.organization_id,
        designated={member_id: rank for rank, member_id in enumerate(designated)},
        excluded=excluded,
    )


async def submit(
    session: AsyncSession, clock: Clock, settings: Settings, principal: Principal, data: CaseSubmit
) -> CaseDetail:
    """A member's case, routed at once; the same submission again is the same case, a changed one 409."""
    now = clock.now()
    network = await repository.network(session, data.network_code)
    if network is None:
        raise ValidationFailed(
            f"network_code: no network {data.network_code}",
            field="network_code",
            value=data.network_code,
            rule="telemed.network.known",
        )
    requester = await requester_member(session, principal, data.network_code, now)
    if data.case_type not in network.case_types:
        raise ValidationFailed(
            f"case_type: the {network.code} network carries {', '.join(network.case_types)}, not {data.case_type}",
            field="case_type",
            value=data.case_type,
            rule="telemed.case.type_of_network",
        )
    fingerprint = request_fingerprint(data)
    held = await repository.case_by_key(session, requester.organization_id, data.network_code, data.external_id)
    if held is not None:
        return await _repeated_submission(session, clock, principal, held, fingerprint)
    if data.resident_id is not None:
        try:
            await registry.resident_view(session, registry.cipher_for(settings), data.resident_id)
        except NotFound:
            raise ValidationFailed(
                f"resident_id: no resident {data.resident_id} in the master patient index",
                field="resident_id",
                value=data.resident_id,
                rule="telemed.case.resident",
            ) from None
    centre = await _route(session, now, data.case_type, data.modality, data.network_code, requester, set())
    if centre is None:
        raise Conflict(
            f"no reading centre of the {data.network_code} network reads {data.case_type}"
            + (f" ({data.modality})" if data.modality else "")
            + " today",
            code="no_reading_centre",
            field="modality" if data.modality else "case_type",
            value=data.modality or data.case_type,
            rule="telemed.case.routable",
        )
    minutes = (await repository.targets(session)).get(data.network_code, {}).get(data.priority, 24 * 60)
    case_id = await repository.insert_case(
        session,
        {
            "network_code": data.network_code,
            "external_id": data.external_id,
            "fingerprint": fingerprint,
            "case_type": data.case_type,
            "modality": data.modality.upper() if data.modality else None,
            "priority": data.priority,
            "requester_member_id": requester.id,
            "requester_organization_id": requester.organization_id,
            "centre_member_id": centre.member_id,
            "centre_organization_id": centre.organization_id,
            "resident_id": data.resident_id,
            "clinical_question": data.clinical_question,
            "status": ROUTED.status,
            "business_status": ROUTED.business_status,
            "holder": None,
            "submitted_at": now,
            "due_at": now + timedelta(minutes=minutes),
            "updated_at": now,
            "completed_at": None,
            "submitted_by": principal.subject,
        },
    )
    if case_id is None:  # a concurrent retry of this submission made it first
        held = await repository.case_by_key(session, requester.organization_id, data.network_code, data.external_id)
        if held is None:
            raise Conflict(
                "the same case is being submitted concurrently; retry",
                field="external_id",
                value=data.external_id,
                rule="telemed.case.same_submission",
            )
        return await _repeated_submission(session, clock, principal, held, fingerprint)
    base = {"case_id": case_id, "at": now, "actor": principal.subject, "request_key": None, "data": {}}
    await repository.append_event(session, base | {"kind": "submitted", "centre_member_id": None, "note": None})
    await repository.append_event(
        session, base | {"kind": "routed", "centre_member_id": centre.member_id, "note": None}
    )
    await repository.add_volume(
        session, data.network_code, volumes.month_of(now), requester.organization_id, cases_submitted=1
    )
    case, view = await visible(session, principal, case_id)
    record(session, clock, principal, Action.CREATE, RESOURCE, resource_id=case_id, resident_ids=_residents(case))
    return await _detail(session, clock, case, view)


async def _repeated_submission(
    session: AsyncSession, clock: Clock, principal: Principal, held: Case, fingerprint: str
) -> CaseDetail:
    if held.fingerprint != fingerprint:
        raise Conflict(
            f"case {held.external_id} was submitted to {held.network_code} already with other details",
            field="external_id",
            value=held.external_id,
            rule="telemed.case.same_submission",
        )
    case, view = await visible(session, principal, held.id)
    record(
        session,
        clock,
        principal,
        Action.CREATE,
        RESOURCE,
        resource_id=held.id,
        resident_ids=_residents(case),
        detail="repeated",
    )
    return await _detail(session, clock, case, view)


async def get_case(session: AsyncSession, clock: Clock, principal: Principal, case_id: int) -> CaseDetail:
    case, view = await visible(session, principal, case_id)
    record(session, clock, principal, Action.READ, RESOURCE, resource_id=case_id, resident_ids=_residents(case))
    return await _detail(session, clock, case, view)


async def get_report(session: AsyncSession, clock: Clock, principal: Principal, case_id: int) -> ReportRead:
    """The case's report: its centre sees the draft, its requester only the signed report."""
    detail = await get_case(session, clock, principal, case_id)
    if detail.report is None:
        raise NotFound(
            f"case {case_id} has no report yet", field="case_id", value=case_id, rule="telemed.report.signed"
        )
    return detail.report


Effect = Callable[[Case, datetime], Awaitable[tuple[dict[str, Any], list[tuple[str, int | None]]]]]


async def require_case(session: AsyncSession, case_id: int | None) -> None:
    """A tracing or a study names a case only if there is one: otherwise a 404 naming it, not a constraint's
    error at commit."""
    if case_id is not None and await repository.case(session, case_id) is None:
        raise NotFound(f"no case {case_id}", field="case_id", value=case_id)


async def repeated(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    case: Case,
    request_key: str,
    name: str,
    kind: str,
    *,
    same_actor: bool = False,
) -> bool:
    """Whether this request key has already taken step `name` (event `kind`) of the case, and so the retry is
    answered with the case as it is (audited as a repeat); a key used for another step (or, with
    `same_actor`, by someone else) is a conflict."""
    held = await repository.event_by_key(session, case.id, request_key)
    if held is None:
        return False
    if held.kind != kind or (same_actor and held.actor != principal.subject):
        raise Conflict(
            f"this request key was used for another step of the case ({held.kind})",
            field="request_key",
            value=request_key,
            rule="telemed.case.key_once",
        )
    record(
        session,
        clock,
        principal,
        Action.UPDATE,
        RESOURCE,
        resource_id=case.id,
        resident_ids=_residents(case),
        detail=f"{name}; repeated",
    )
    return True


async def step(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    case_id: int,
    name: str,
    request_key: str,
    as_: View,
    effect: Effect,
    *,
    note: str | None = None,
) -> Case:
    """Take step `name` once per request key under the case's lock: checked, applied, its events appended."""
    case, _ = await visible(session, principal, case_id, as_=as_, lock=True)
    if await repeated(session, clock, principal, case, request_key, name, KIND_OF_STEP[name]):
        return case
    check_step(name, case.status, case.id)
    now = clock.now()
    base = {"case_id": case.id, "at": now, "actor": principal.subject, "data": {}}
    changes, following = await effect(case, now)
    await repository.append_event(
        session,
        base
        | {
            "kind": KIND_OF_STEP[name],
            "request_key": request_key,
            "centre_member_id": case.centre_member_id,
            "note": note,
        },
    )
    for kind, centre_member_id in following:
        await repository.append_event(
            session, base | {"kind": kind, "request_key": None, "centre_member_id": centre_member_id, "note": None}
        )
    await repository.set_case(session, case.id, {"updated_at": now, **changes})
    record(
        session,
        clock,
        principal,
        Action.UPDATE,
        RESOURCE,
        resource_id=case.id,
        resident_ids=_residents(case),
        detail=name,
    )
    return case


def becomes(outcome: Outcome) -> dict[str, Any]:
    return {"status": outcome.status, "business_status": outcome.business_status}


async def detail_of(session: AsyncSession, clock: Clock, principal: Principal, case_id: int) -> CaseDetail:
    """The case as the caller sees it after a step (unaudited: the step was)."""
    found, view = await visible(session, principal, case_id)
    return await _detail(session, clock, found, view)


async def _simple(
    session: AsyncSession, clock: Clock, principal: Principal, case_id: int, name: str, data: StepIn, as_: View
) -> CaseDetail:
    async def effect(case: Case, now: datetime) -> tuple[dict[str, Any], list[tuple[str, int | None]]]:
        return becomes(OUTCOMES[name]), []

    await step(session, clock, principal, case_id, name, data.request_key, as_, effect, note=data.note)
    return await detail_of(session, clock, principal, case_id)


async def receive(session: AsyncSession, clock: Clock, principal: Principal, case_id: int, data: StepIn) -> CaseDetail:
    """The centre acknowledges the case reached it (FHIR received)."""
    return await _simple(session, clock, principal, case_id, "receive", data, "centre")


async def accept(session: AsyncSession, clock: Clock, principal: Principal, case_id: int, data: StepIn) -> CaseDetail:
    """The centre takes the case into its queue, for one of its doctors to claim."""
    return await _simple(session, clock, principal, case_id, "accept", data, "centre")


async def cancel(session: AsyncSession, clock: Clock, principal: Principal, case_id: int, data: StepIn) -> CaseDetail:
    """The requester withdraws the case before a doctor holds it."""
    return await _simple(session, clock, principal, case_id, "cancel", data, "requester")


async def reject(session: AsyncSession, clock: Clock, principal: Principal, case_id: int, data: RejectIn) -> RejectRead:
    """The centre rejects the case; it goes to the next centre the routing finds (never one that rejected it),
    or is rejected for good when none is left. The centre no longer sees it either way, so a retried reject
    is recognised by its request key and its author before the object rule is asked."""
    held = await repository.event_by_key(session, case_id, data.request_key)
    if held is not None and held.kind == "rejected" and held.actor == principal.subject:
        record(session, clock, principal, Action.UPDATE, RESOURCE, resource_id=case_id, detail="reject; repeated")
        return RejectRead(case_id=case_id, rejected=True)

    async def effect(case: Case, now: datetime) -> tuple[dict[str, Any], list[tuple[str, int | None]]]:
        requester = await repository.member(session, case.requester_member_id)
        if requester is None:  # the case's foreign key holds it
            raise NotFound(
                f"no member {case.requester_member_id}", field="requester_member_id", value=case.requester_member_id
            )
        excluded = await repository.rejected_by(session, case.id) | {case.centre_member_id or 0}
        centre = await _route(session, now, case.case_type, case.modality, case.network_code, requester, excluded)
        if centre is None:
            return {"centre_member_id": None, "centre_organization_id": None} | becomes(UNROUTABLE), [
                ("unroutable", None)
            ]
        return (
            {"centre_member_id": centre.member_id, "centre_organization_id": centre.organization_id}
            | becomes(REROUTED),
            [("routed", centre.member_id)],
        )

    await step(session, clock, principal, case_id, "reject", data.request_key, "centre", effect, note=data.reason)
    return RejectRead(case_id=case_id, rejected=True)
