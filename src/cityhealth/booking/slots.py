"""The booking decision: may this channel take a slot (号源) of this session at this moment?

`refusal()` is the one place the rule is written. Every path that takes a slot asks it: the pre-check of an
attempt, the group commit's batch (before it reads any resident, and again under the session's row lock),
a reschedule, a waitlist offer, and the admission gate's count of what is left. Availability and the slot
feeds can ask it too, for the asking channel and moment. It reads only the session's row (its counters)
and the hospital's release rules, so it runs anywhere, in memory; the database's conditional UPDATE of the
counters (`repository.write_slots`, `group_repository.write_batch`) and the schema's CHECKs and unique
indexes stay only as the backstop, should a writer ever get the counters wrong.

A channel with a quota has that many slots reserved for it and may take no more; channels without a quota
share `open_capacity` (the capacity minus the quotas).

A hold past its expiry at the moment of the attempt holds nothing: the reads of the attempt path return the
session's lapsed holds as of that moment (`lapsed` in the row), and `SessionSlots.of` counts their slots as
free; the batch that takes one expires those holds in its own transaction. The sweeper only tidies the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from cityhealth.booking.models import CHANNELS
from cityhealth.booking.release import ReleaseRules, at_business_time
from cityhealth.clock import BUSINESS_TZ, business_date
from cityhealth.errors import Conflict, DomainError, ValidationFailed


def sold_out(session_id: int) -> Conflict:
    return Conflict(f"session {session_id} has no slot left", code="sold_out", field="session_id",
                    value=session_id, rule="booking.sold_out")


def quota_exhausted(session_id: int, channel: str) -> Conflict:
    return Conflict(f"the {channel} channel has used up its quota of session {session_id}",
                    code="quota_exhausted", field="channel", value=channel, rule="booking.channel_quota")


def is_sold_out(error: DomainError) -> bool:
    """The refusal says only that the channel's slots are gone (not the session's state or the moment)."""
    return error.code in ("sold_out", "quota_exhausted")


@dataclass(frozen=True)
class LapsedHold:
    """A hold of the session past its expiry at the moment of the read (still `held` in the table)."""

    booking_id: int
    resident_id: int
    channel: str
    slot_no: int


@dataclass
class SessionSlots:
    """A session's row as far as the decision needs it, and its slot map when a write will hand out slots
    (`slot_map`: one character per slot number, '1' taken, '0' free; None where the row was read without)."""

    session_id: int
    status: str
    service_date: date
    starts_at: datetime
    released_at: datetime
    capacity: int
    booked: int
    open_capacity: int
    open_booked: int
    quotas: dict[str, int | None]
    booked_by: dict[str, int]
    slot_map: str | None = None
    _cursor: int = 0  # no free slot before this position
    lapsed: list[LapsedHold] = field(default_factory=list)  # lapsed holds whose slots this copy counts free

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> SessionSlots:
        """From a row of booking_sessions (a mapping with its column names), its lapsed holds counted free."""
        slots = cls(row["id"], row["status"], row["service_date"], row["starts_at"], row["released_at"],
                    row["capacity"], row["booked"], row["open_capacity"], row["open_booked"],
                    {c: row[f"quota_{c}"] for c in CHANNELS}, {c: row[f"booked_{c}"] for c in CHANNELS},
                    row.get("slot_map"))
        for hold in row.get("lapsed") or ():
            # Without the map (the pre-check's read) only the counters matter; with it, a slot already
            # free in the map was given back by a writer that committed after this read's snapshot.
            if slots.slot_map is None:
                slots._count(hold.channel, -1)
            elif not slots.give_back(hold.channel, hold.slot_no):
                continue
            slots.lapsed.append(hold)
        return slots

    def left(self, channel: str) -> int:
        """Slots `channel` may still take: its quota's rest, or the open pool's, within the capacity."""
        quota = self.quotas[channel]
        pool_left = quota - self.booked_by[channel] if quota is not None else self.open_capacity - self.open_booked
        return max(0, min(pool_left, self.capacity - self.booked))

    def take(self, channel: str) -> int:
        """Take the first free slot for `channel` (refusal() said yes); returns its number."""
        if self.slot_map is None:
            raise RuntimeError("the session was read without its slot map: it cannot hand out a slot")
        position = self.slot_map.find("0", self._cursor)
        if position < 0:  # the counters say there is a slot, the map says none: the row is corrupt
            raise RuntimeError(f"session {self.session_id} has no free slot in its map")
        self.slot_map = self.slot_map[:position] + "1" + self.slot_map[position + 1:]
        self._cursor = position + 1
        self._count(channel, +1)
        return position + 1

    def take_at(self, channel: str, slot_no: int) -> bool:
        """Take slot `slot_no` for `channel` (refusal() said yes: the channel may take one); False when that
        slot is not free (taken, or out of the session)."""
        if self.slot_map is None:
            raise RuntimeError("the session was read without its slot map: it cannot hand out a slot")
        if not 1 <= slot_no <= len(self.slot_map) or self.slot_map[slot_no - 1] != "0":
            return False
        self.slot_map = self.slot_map[:slot_no - 1] + "1" + self.slot_map[slot_no:]
        self._count(channel, +1)
        return True

    def give_back(self, channel: str, slot_no: int) -> bool:
        """Free slot `slot_no` taken by `channel`; False when it was not taken (given back already)."""
        if self.slot_map is None:
            raise RuntimeError("the session was read without its slot map: it cannot take a slot back")
        if not 1 <= slot_no <= len(self.slot_map) or self.slot_map[slot_no - 1] != "1":
            return False
        self.slot_map = self.slot_map[:slot_no - 1] + "0" + self.slot_map[slot_no:]
        self._cursor = min(self._cursor, slot_no - 1)
        self._count(channel, -1)
        return True

    def keep(self, hold: LapsedHold) -> None:
        """Count a lapsed hold as taken again: a write that did not need its slot leaves it to the sweeper."""
        if self.slot_map is None or self.slot_map[hold.slot_no - 1] != "0":
            raise RuntimeError(f"the slot of hold {hold.booking_id} is not free to be kept")
        self.slot_map = self.slot_map[:hold.slot_no - 1] + "1" + self.slot_map[hold.slot_no:]
        self._count(hold.channel, +1)
        self.lapsed = [h for h in self.lapsed if h != hold]

    def _count(self, channel: str, step: int) -> None:
        self.booked += step
        self.booked_by = {**self.booked_by, channel: self.booked_by[channel] + step}
        if self.quotas[channel] is None:
            self.open_booked += step

    def copy(self) -> SessionSlots:
        return replace(self, lapsed=list(self.lapsed))


def refusal(slots: SessionSlots, rules: ReleaseRules, channel: str, now: datetime) -> DomainError | None:
    """Why `channel` may not take a slot of the session at `now`, or None when it may (domain rules §4).

    The refusals come in a fixed order, so every path gives the same answer for the same row and moment:
    the session's state, its day against the release window, then the channel's slots.
    """
    today = business_date(now)
    service_date = slots.service_date
    if slots.status != "open":
        return Conflict("the session is suspended (停诊); its slots cannot be booked", code="session_suspended",
                        field="session_id", rule="booking.session_suspended")
    if service_date < today or now >= slots.starts_at:
        return ValidationFailed(f"the session of {service_date.isoformat()} has already started or passed",
                                code="session_past", field="session_id", value=service_date.isoformat(),
                                rule="booking.session_past")
    if service_date == today and not rules.same_day_allowed:
        return ValidationFailed("this hospital does not take same-day bookings", code="same_day_not_allowed",
                                field="session_id", value=service_date.isoformat(), rule="booking.same_day")
    if now < slots.released_at:
        return Conflict(f"the slots of {service_date.isoformat()} are released at "
                        f"{slots.released_at.astimezone(BUSINESS_TZ).isoformat()}", code="not_released",
                        field="session_id", value=service_date.isoformat(), rule="booking.release_window")
    if service_date == today + timedelta(days=1) and now >= at_business_time(today, rules.next_day_cutoff):
        return Conflict(f"booking for tomorrow closed at {rules.next_day_cutoff.isoformat('minutes')} today",
                        code="next_day_closed", field="session_id", value=service_date.isoformat(),
                        rule="booking.next_day_cutoff")
    if slots.left(channel) > 0:
        return None
    return exhausted(slots, channel)


def exhausted(slots: SessionSlots, channel: str) -> Conflict:
    """The refusal for a channel with no slot left: its quota used up while the session has others, or
    the session sold out (also what the admission gate answers once the slots left are all claimed)."""
    if slots.quotas[channel] is not None and slots.booked < slots.capacity:
        return quota_exhausted(slots.session_id, channel)
    return sold_out(slots.session_id)
