"""The month's volumes the lab listener and the imaging store add to, in the transaction that writes what they
count (docs/decisions/telemed-statistics.md): lab reports and shipped specimens per sending organization,
imaging reports signed final, images of the studies first recorded in a month."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import business_date
from cityhealth.registry import service as registry
from cityhealth.telemed import repository


def month_of(at: datetime) -> date:
    """The first day of the Asia/Shanghai month `at` falls in."""
    return business_date(at).replace(day=1)


@dataclass(frozen=True)
class LabCredit:
    """What one accepted message adds: its reports and the specimens it shipped, for its sender and month."""

    sender: str
    received_at: datetime
    reports: int
    shipped: int


async def add_lab(
    session: AsyncSession, credits: Iterable[LabCredit], known: registry.OrganizationIds | None = None
) -> None:
    """Credit a batch's accepted messages to their senders' organizations; a sender the registry does not know
    is credited to none (the message is kept and acknowledged all the same). `known`: the caller's ids of
    organizations already looked up (a listener's)."""
    counted = [credit for credit in credits if credit.reports or credit.shipped]
    # One lookup of the batch's senders and one upsert of their months: a batch of a dozen lab systems cost two
    # dozen statements when each sender was looked up and added to on its own.
    senders = {credit.sender for credit in counted}
    if known is not None:
        organizations = await known.by_code(session, senders)
    else:
        organizations = await registry.organization_ids_by_code(session, senders)
    per_row: dict[tuple[date, int], dict[str, int]] = {}
    for credit in counted:
        organization_id = organizations.get(credit.sender)
        if organization_id is not None:
            counts = per_row.setdefault(
                (month_of(credit.received_at), organization_id), {"reports_uploaded": 0, "specimens_routed": 0}
            )
            counts["reports_uploaded"] += credit.reports
            counts["specimens_routed"] += credit.shipped
    await repository.add_volumes(session, "lab", per_row)


async def registered(session: AsyncSession, organization_id: int | None) -> int | None:
    """The organization to credit: the caller's, when the registry has it (a token names it by id only)."""
    if organization_id is None:
        return None
    found = await registry.organization_by_id(session, organization_id)
    return found.id if found is not None else None


async def add_imaging_report(session: AsyncSession, organization_id: int | None, signed_at: datetime) -> None:
    """A report just signed final, credited to the signer's organization (none: not credited)."""
    credited = await registered(session, organization_id)
    if credited is not None:
        await repository.add_volume(session, "imaging", month_of(signed_at), credited, reports_uploaded=1)


async def add_images(session: AsyncSession, organization_id: int | None, first_recorded: datetime, delta: int) -> None:
    """Images added to (or, on a recount, taken from) the month a study was first recorded in."""
    credited = await registered(session, organization_id) if delta != 0 else None
    if credited is not None:
        await repository.add_volume(session, "imaging", month_of(first_recorded), credited, images=delta)
