"""A hospital's patient-message settings: which kinds it sends, and when the day-before reminder goes out."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.booking import messages_repository
from cityhealth.booking.schedules import organization_for
from cityhealth.booking.schemas import MessageSettingsRead, MessageSettingsUpdate
from cityhealth.clock import Clock
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal


def _read(organization_id: int, row: Any) -> MessageSettingsRead:
    if row is None:
        return MessageSettingsRead(organization_id=organization_id)
    return MessageSettingsRead(organization_id=organization_id, confirmation_enabled=row.confirmation_enabled,
                               cancellation_enabled=row.cancellation_enabled, reminder_enabled=row.reminder_enabled,
                               reminder_time=row.reminder_time)


async def get_settings(tx: AsyncSession, principal: Principal, organization_id: int) -> MessageSettingsRead:
    """A hospital's message settings (the defaults when it set none)."""
    organization_id = await organization_for(tx, principal, organization_id)
    found = await messages_repository.settings_of(tx, [organization_id])
    return _read(organization_id, found[0] if found else None)


async def put_settings(tx: AsyncSession, clock: Clock, principal: Principal, organization_id: int,
                       data: MessageSettingsUpdate) -> MessageSettingsRead:
    """Set a hospital's message settings (its schedulers, or a booking administrator); the same body twice
    leaves the same row."""
    organization_id = await organization_for(tx, principal, organization_id)
    await messages_repository.store_settings(tx, {"organization_id": organization_id, **data.model_dump(),
                                                  "updated_by": principal.subject, "updated_at": clock.now()})
    record(tx, clock, principal, Action.UPDATE, "booking_message_settings", resource_id=organization_id)
    return MessageSettingsRead(organization_id=organization_id, **data.model_dump())
