"""Records use cases for operators: the review queue, merge and unmerge of patient identities, the unlinked
identities (conflicts, numbers the index does not know, scores below the band), a link's history; and the
linker's pass (records/linkage.py). The shared record and who may open it: shared_record.py and access.py.

Every decision is audited with the residents it moves records between, and kept in the link's history.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.errors import Conflict, NotFound, ValidationFailed
from cityhealth.records import repository
from cityhealth.records.linkage import Decision, set_link
from cityhealth.records.models import LinkReview, PatientLink
from cityhealth.records.schemas import (
    LinkEventRead,
    LinkHistory,
    LinkRead,
    MergeIn,
    ReviewDecision,
    ReviewRead,
    UnmergeIn,
)
from cityhealth.registry import service as registry
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal

RESOURCE = "records_link"
UNLINKED_LIMIT = 200


def link_read(link: PatientLink) -> LinkRead:
    return LinkRead(organization_id=link.organization_id, patient_key=link.patient_key, status=link.status,
                    resident_id=link.resident_id, method=link.method, score=link.score, reason=link.reason,
                    source_form=link.source_form, source_record_id=link.source_record_id, updated_at=link.updated_at)


def review_read(review: LinkReview) -> ReviewRead:
    return ReviewRead(id=review.id, organization_id=review.organization_id, patient_key=review.patient_key,
                      resident_id=review.resident_id, score=review.score, agreements=review.agreements,
                      status=review.status, created_at=review.created_at)


async def open_reviews(session: AsyncSession, clock: Clock, principal: Principal, *, after_id: int,
                       limit: int) -> list[ReviewRead]:
    """The review queue, oldest first."""
    rows = await repository.open_reviews(session, after_id, limit)
    record(session, clock, principal, Action.LIST, "records_link_review", resident_ids=[r.resident_id for r in rows],
           detail=f"review queue: {len(rows)}")
    return [review_read(row) for row in rows]


async def unlinked(session: AsyncSession, clock: Clock, principal: Principal, *, status: str,
                   after: tuple[int, str] | None, limit: int) -> list[LinkRead]:
    """Patient identities not linked (status "unlinked", with the reason) or waiting in review."""
    if status not in ("unlinked", "review"):
        raise ValidationFailed("status is unlinked or review", field="status", value=status, rule="link.status")
    rows = await repository.links_by_status(session, status, after, limit)
    record(session, clock, principal, Action.LIST, RESOURCE, detail=f"{status}: {len(rows)}")
    return [link_read(row) for row in rows]


async def decide_review(session: AsyncSession, clock: Clock, principal: Principal, review_id: int, *,
                        accept: bool, data: ReviewDecision) -> LinkRead:
    """Accept a queued candidate (the link is made, the identity's other candidates closed) or reject it (the
    identity stays unlinked once no candidate is left open); deciding a decided review again changes nothing."""
    review = await repository.lock_review(session, review_id)
    if review is None:
        raise NotFound("no such review", code="review_not_found", field="review_id", value=review_id)
    link = await repository.lock_link(session, review.organization_id, review.patient_key)
    if link is None:  # a review is written with its link, in one transaction
        raise NotFound("no such review", code="review_not_found", field="review_id", value=review_id)
    wanted = "accepted" if accept else "rejected"
    if review.status == wanted:
        return link_read(link)
    if review.status != "open":
        raise Conflict(f"review {review_id} is already {review.status}", code="review_decided", field="review_id",
                       value=review_id, rule="review.open")
    now = clock.now()
    review.status, review.decided_at, review.decided_by = wanted, now, principal.subject
    await session.flush()
    note = data.note or f"review {review_id} {wanted}"
    if accept:
        link = await set_link(session, now, link,
                              Decision("linked", resident_id=review.resident_id, method="operator",
                                       score=review.score), actor=principal.subject, note=note, event_kind="merged")
    elif not await repository.open_reviews_of(session, review.organization_id, review.patient_key):
        link = await set_link(session, now, link,
                              Decision("unlinked", method="operator", reason="review.rejected"),
                              actor=principal.subject, note=note, event_kind="rejected")
    record(session, clock, principal, Action.UPDATE, "records_link_review", resource_id=review_id,
           resident_ids=[review.resident_id], detail=f"{wanted}; {review.organization_id}/{review.patient_key}")
    return link_read(link)


async def merge(session: AsyncSession, clock: Clock, principal: Principal, data: MergeIn) -> LinkRead:
    """Link a patient identity to a resident by hand (its records follow); the same merge again changes nothing."""
    link = await _locked(session, data.organization_id, data.patient_key)
    if await registry.resident_traits(session, data.resident_id) is None:
        raise NotFound("no such resident", code="resident_not_found", field="resident_id", value=data.resident_id)
    if link.status == "linked" and link.resident_id == data.resident_id and link.method == "operator":
        return link_read(link)
    before = link.resident_id
    link = await set_link(session, clock.now(), link,
                          Decision("linked", resident_id=data.resident_id, method="operator"),
                          actor=principal.subject, note=data.note, event_kind="merged")
    record(session, clock, principal, Action.UPDATE, RESOURCE, resource_id=f"{data.organization_id}/{data.patient_key}",
           resident_ids=[before, data.resident_id], detail="merged")
    return link_read(link)


async def unmerge(session: AsyncSession, clock: Clock, principal: Principal, data: UnmergeIn) -> LinkRead:
    """Take a linked patient identity off its resident: onto another resident, or onto no one — refused while
    records of it are indexed, which would be left belonging to nobody."""
    link = await _locked(session, data.organization_id, data.patient_key)
    if link.status != "linked":
        raise Conflict("the patient identity is not linked to a resident", code="not_linked", field="patient_key",
                       value=data.patient_key, rule="unmerge.linked")
    if data.to_resident_id == link.resident_id:
        raise ValidationFailed("to_resident_id is the resident the identity is linked to", field="to_resident_id",
                               value=data.to_resident_id, rule="unmerge.same_resident")
    if data.to_resident_id is None:
        held = await repository.count_identity_records(session, data.organization_id, data.patient_key)
        if held:
            raise Conflict(f"unmerging would leave {held} records of this patient identity linked to no resident; "
                           "name to_resident_id", code="unmerge_orphans_records", field="to_resident_id", value=None,
                           rule="unmerge.orphans")
        decision = Decision("unlinked", method="operator", reason="operator.unmerged")
    else:
        if await registry.resident_traits(session, data.to_resident_id) is None:
            raise NotFound("no such resident", code="resident_not_found", field="to_resident_id",
                           value=data.to_resident_id)
        decision = Decision("linked", resident_id=data.to_resident_id, method="operator")
    before = link.resident_id
    link = await set_link(session, clock.now(), link, decision,
                          actor=principal.subject, note=data.note, event_kind="unmerged")
    record(session, clock, principal, Action.UPDATE, RESOURCE, resource_id=f"{data.organization_id}/{data.patient_key}",
           resident_ids=[before, data.to_resident_id], detail="unmerged")
    return link_read(link)


async def history(session: AsyncSession, clock: Clock, principal: Principal, organization_id: int,
                  patient_key: str) -> LinkHistory:
    """A patient identity's link and every event of it, oldest first."""
    link = await repository.get_link(session, organization_id, patient_key)
    if link is None:
        raise NotFound("no such patient identity", code="patient_identity_not_found", field="patient_key",
                       value=patient_key)
    events = await repository.link_events(session, organization_id, patient_key)
    record(session, clock, principal, Action.READ, RESOURCE, resource_id=f"{organization_id}/{patient_key}",
           resident_ids={event.to_resident_id for event in events} | {e.from_resident_id for e in events})
    return LinkHistory(link=link_read(link), events=[
        LinkEventRead(id=e.id, kind=e.kind, from_resident_id=e.from_resident_id, to_resident_id=e.to_resident_id,
                      method=e.method, score=e.score, actor=e.actor, note=e.note, occurred_at=e.occurred_at)
        for e in events])


async def _locked(session: AsyncSession, organization_id: int, patient_key: str) -> PatientLink:
    link = await repository.lock_link(session, organization_id, patient_key)
    if link is None:
        raise NotFound("no such patient identity: it is known once its patient master record is stored",
                       code="patient_identity_not_found", field="patient_key", value=patient_key)
    return link
