"""The availability search's answer for the asking channel: the booking rule's, as the slot feed's is."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cityhealth.booking import feed_repository
from cityhealth.booking.availability import BookingRuntime
from cityhealth.booking.channels import caller_of, with_app
from cityhealth.booking.feed_free import PUBLIC_CHANNEL, free_slots, rules_of
from cityhealth.db.engine import Database
from cityhealth.errors import DomainError
from cityhealth.security.principals import Principal


async def asking_channel(database: Database, runtime: BookingRuntime, principal: Principal | None) -> str:
    """The channel the caller books through (an app's from the registry, a second old at most).

    A caller that books through no channel (an unknown or inactive app, a reader without a booking role)
    is shown what the public channel could take: what a resident on the booking page would find; so is an
    anonymous visitor of the booking page (no principal).
    """
    if principal is None:
        return PUBLIC_CHANNEL
    try:
        caller = caller_of(principal)
        if caller.app_id is not None:
            app_id = caller.app_id

            async def load() -> list[dict[str, Any]]:
                async with database.read_connection() as connection:
                    channel, active, others = await feed_repository.app_channels(connection, app_id)
                return [{"channel": channel, "active": active, "others": others}]

            [app] = await runtime.availability.get(("app-channel", app_id), load)
            caller = with_app(caller, app["channel"], app["active"], other_channels=app["others"])
    except DomainError:
        return PUBLIC_CHANNEL
    return caller.channel or PUBLIC_CHANNEL


def available(row: dict[str, Any], channel: str, now: datetime) -> int:
    """Slots of the session (a row with its policy) that `channel` could take at `now`."""
    return free_slots(row, rules_of(row), channel, now)
