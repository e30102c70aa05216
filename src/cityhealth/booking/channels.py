"""Who is booking, through which channel and app, for whom: derived from the principal, never the payload."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cityhealth.booking.models import CHANNELS
from cityhealth.errors import NotFound, ValidationFailed
from cityhealth.registry.identifiers import IdentifierError, ResidentId, mask_resident_id, parse_resident_id
from cityhealth.security.principals import Principal, PrincipalKind, Role, Scope

APP_CHANNELS = ("online_12320", "third_party")  # the channels a client app can book through
_AGENT_ROLES = frozenset({Role.HOTLINE_AGENT, Role.HOTLINE_SUPERVISOR})


@dataclass(frozen=True)
class Caller:
    """A booking caller: `channel` is None until the app's channel is known (`app_id` set)."""

    principal: Principal
    channel: str | None
    app_id: int | None
    resident_id: int | None  # fixed for residents, who book only for themselves
    organization_id: int | None  # clinic callers book only at their own hospital

    @property
    def subject(self) -> str:
        return self.principal.subject


def caller_of(principal: Principal) -> Caller:
    """The caller's channel as far as the principal alone tells it (an app's channel needs the registry)."""
    if principal.kind is PrincipalKind.RESIDENT:
        if principal.resident_id is None:
            raise ValidationFailed("this resident account is not linked to a master-index resident",
                                   code="resident_not_linked", field="resident", rule="booking.real_name")
        channel = None if principal.client_app_id is not None else "online_12320"
        return Caller(principal, channel, principal.client_app_id, principal.resident_id, None)
    if principal.client_app_id is not None:
        return Caller(principal, None, principal.client_app_id, None, None)
    if principal.kind is PrincipalKind.STAFF and principal.roles & _AGENT_ROLES:
        return Caller(principal, "phone", None, None, None)
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
    return Caller(caller.principal, channel, caller.app_id, caller.resident_id, caller.organization_id)


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


def parse_target_resident(caller: Caller, id_number: str | None, today: date) -> ResidentId | None:
    """The checked ID number the booking is for; None for a resident booking for themselves."""
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
