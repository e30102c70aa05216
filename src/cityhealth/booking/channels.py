"""Who is booking, through which channel and app, for whom: derived from the principal, never the payload."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from cityhealth.booking.models import CHANNELS
from cityhealth.errors import Forbidden, NotFound, ValidationFailed
from cityhealth.registry.identifiers import IdentifierError, ResidentId, mask_resident_id, parse_resident_id
from cityhealth.security.principals import Principal, PrincipalKind, Role, Scope

APP_CHANNELS = ("online_12320", "third_party")  # the channels a client app can book through
_AGENT_ROLES = frozenset({Role.HOTLINE_AGENT, Role.HOTLINE_SUPERVISOR})
WITHIN_CALL = "hotline.desk.within_call"


@dataclass(frozen=True)
class Caller:
    """A booking caller: `channel` is None until the app's channel is known (`app_id` set)."""

    principal: Principal
    channel: str | None
    app_id: int | None
    resident_id: int | None  # fixed for residents, who book only for themselves
    organization_id: int | None  # clinic callers book only at their own hospital
    # The hotline call a phone agent acts in: set only by the hotline's desk, which has checked that the call is
    # the agent's own and open, and that its caller is the resident acted for (hotline/desk.py).
    call_id: int | None = None

    @property
    def subject(self) -> str:
        return self.principal.subject


def caller_of(principal: Principal, *, call_id: int | None = None) -> Caller:
    """The caller's channel as far as the principal alone tells it (an app's channel needs the registry);
    `call_id`: the hotline call a phone agent acts in (the desk's, never a request's)."""
    if principal.kind is PrincipalKind.RESIDENT:
        if principal.resident_id is None:
            raise ValidationFailed("this resident account is not linked to a master-index resident",
                                   code="resident_not_linked", field="resident", rule="booking.real_name")
        channel = None if principal.client_app_id is not None else "online_12320"
        return Caller(principal, channel, principal.client_app_id, principal.resident_id, None)
    if principal.client_app_id is not None:
        return Caller(principal, None, principal.client_app_id, None, None)
    if principal.kind is PrincipalKind.STAFF and principal.roles & _AGENT_ROLES:
        return Caller(principal, "phone", None, None, None, call_id)
    if (principal.kind is PrincipalKind.CLIENT and principal.has(Scope.BOOKING_SCHEDULE)
            and principal.organization_id is not None):
        return Caller(principal, "clinic", None, None, principal.organization_id)
    raise ValidationFailed("this caller books through no known channel (12320 app, phone agent, clinic or "
                           "registered third-party app)", code="unknown_channel", field="channel",
                           rule="booking.channel.unknown")


def with_app(caller: Caller, app_channel: str | None, app_active: bool | None, *,
             other_channels: str | None = None, claimed: str | None = None) -> Caller:
    """The caller with its app's channel filled in; an unknown or inactive app is refused.

    The app's home channel, unless the request claims one of the app's further channels (a 12320 app
    booking into a hospital's own pool books as a third party).
    """
    if caller.app_id is None:
        return caller
    if app_channel is None or not app_active:
        raise ValidationFailed(f"client app {caller.app_id} is not a registered, active app",
                               code="unknown_client_app", field="client_app_id", value=caller.app_id,
                               rule="booking.client_app.unknown")
    if app_channel not in APP_CHANNELS:
        raise ValidationFailed(f"client app {caller.app_id} is registered for channel {app_channel}, "
                               "which apps cannot book through", code="unknown_channel", field="channel",
                               value=app_channel, rule="booking.channel.unknown")
    channel = app_channel
    if claimed is not None and claimed in APP_CHANNELS and claimed in (other_channels or "").split():
        channel = claimed
    return replace(caller, channel=channel)


def check_claimed_channel(caller: Caller, claimed: str | None) -> None:
    """An explicit `channel` in the payload must name a channel and agree with the caller's."""
    if claimed is None:
        return
    if claimed not in CHANNELS:
        raise ValidationFailed(f"unknown channel {claimed!r}; channels are {', '.join(CHANNELS)}",
                               code="unknown_channel", field="channel", value=claimed,
                               rule="booking.channel.unknown")
    if claimed != caller.channel:
        raise ValidationFailed(f"channel {claimed} disagrees with the caller's channel {caller.channel}; "
                               "the channel is derived from the caller", code="channel_mismatch",
                               field="channel", value=claimed, rule="channel.mismatch")


def outside_a_call() -> Forbidden:
    return Forbidden("a hotline agent acts for a resident only within their own open call, at the hotline desk "
                     "(/api/hotline/desk): identify the caller there, then book, cancel or reschedule",
                     code="outside_a_call", field="call_id", rule=WITHIN_CALL)


def parse_target_resident(caller: Caller, id_number: str | None, today: date) -> ResidentId | None:
    """The checked ID number the booking is for; None for a resident booking for themselves.

    A phone agent names a resident only within a call (the desk's): every path by which an agent books, holds,
    joins a waitlist, or opens, cancels or moves a booking names its resident here."""
    if caller.channel == "phone" and caller.call_id is None:
        raise outside_a_call()
    if caller.resident_id is not None:
        if id_number is not None:
            raise ValidationFailed("a resident books only for themselves; leave id_number out",
                                   code="self_only", field="id_number", value=mask_resident_id(id_number),
                                   rule="booking.self_only")
        return None
    if id_number is None:
        raise ValidationFailed("the resident's ID number is required (real-name booking)",
                               code="id_number_required", field="id_number", rule="booking.real_name")
    try:
        return parse_resident_id(id_number, today=today)
    except IdentifierError as exc:
        raise ValidationFailed(exc.message, code="invalid_id_number", field="id_number",
                               value=mask_resident_id(id_number), rule=exc.rule) from exc


def resident_not_found(parsed: ResidentId | None) -> NotFound:
    return NotFound("no master-index resident with this ID number", code="resident_not_found",
                    field="id_number", value=parsed.masked if parsed else None, rule="booking.real_name")
