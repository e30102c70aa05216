"""What the availability search and the slot feed show as free: the booking rule's answer, and when it changed.

"Free" is never decided here: a session shows as many free slots as `slots.refusal` would let the asking
channel take at that moment (none when it would refuse), so what is shown free can be held. The public feed
answers for PUBLIC_CHANNEL, the channel of the resident booking page its deep links open.

The answer depends on the clock as well as on the row: a session becomes bookable at its release, and stops
being bookable on its day (no same-day booking), at the next-day cut-off, and when it starts; a hold's slot
is free again when the hold lapses (unless someone waits for the session: the waitlist's then, until the last
waiter stops waiting). A slot's
effective last-modified is therefore the latest of its row's `updated_at`, its policy's, and those moments
that have passed, so `_since` sees a change the clock made.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from cityhealth.booking.release import ReleaseRules, at_business_time
from cityhealth.booking.slots import LapsedHold, SessionSlots, refusal
from cityhealth.errors import DomainError

# A resident on the resident booking page books through the 12320 platform's own channel (booking/channels.py:
# a resident without a client app is "online_12320"); the public feed's deep links open that page.
PUBLIC_CHANNEL = "online_12320"
_POLICY_FIELDS = ("window_days", "release_time", "same_day_allowed", "next_day_cutoff", "cancellation_allowed",
                  "cancel_cutoff_days_before", "cancel_cutoff_time", "pickup_grace_minutes", "hold_minutes")
DEFAULT_RULES = ReleaseRules()


def rules_of(row: Mapping[str, Any]) -> ReleaseRules:
    """The release rules joined onto a row (`policy_`-prefixed columns; absent: the defaults)."""
    if row.get("policy_window_days") is None:
        return DEFAULT_RULES
    return ReleaseRules(**{name: row[f"policy_{name}"] for name in _POLICY_FIELDS})


def _with_lapsed(row: Mapping[str, Any]) -> Mapping[str, Any]:
    """The row with its lapsed holds (`lapsed_channels`) as SessionSlots.of counts them: their slots free."""
    channels = row.get("lapsed_channels")
    if not channels:
        return row
    return {**row, "slot_map": None, "lapsed": [LapsedHold(0, 0, channel, 0) for channel in channels.split()]}


def free_slots(row: Mapping[str, Any], rules: ReleaseRules, channel: str, now: datetime,
               decided: dict[tuple[Any, ...], DomainError | None] | None = None) -> int:
    """How many slots of the session `channel` could take at `now`: 0 wherever the booking rule refuses."""
    left, refused = decide(row, rules, channel, now, decided)
    return 0 if refused is not None else left


def decide(row: Mapping[str, Any], rules: ReleaseRules, channel: str, now: datetime,
           decided: dict[tuple[Any, ...], DomainError | None] | None = None) -> tuple[int, DomainError | None]:
    """The slots of the session left to `channel` (its lapsed holds' counted free) and the booking rule's
    refusal at `now` (None: it may take one): the one place a feed, search or page row meets the rule.

    `decided` remembers the rule's answers for one `rules`, `channel` and `now` across many sessions: while
    the channel has a slot left, the rule reads of a session only its state, day, start and release, so
    sessions alike in those get the same answer (a feed of ten thousand asks it a few hundred times).
    """
    slots = SessionSlots.of(_with_lapsed(row))
    left = slots.left(channel)
    if decided is None or left == 0:  # none left: the refusal names the session (sold out, quota used up)
        return left, refusal(slots, rules, channel, now)
    key = (id(rules), slots.status, slots.service_date, slots.starts_at, slots.released_at)
    if key not in decided:
        decided[key] = refusal(slots, rules, channel, now)
    return left, decided[key]


def turning_points(service_date: date, starts_at: datetime, released_at: datetime,
                   rules: ReleaseRules) -> tuple[datetime, ...]:
    """The moments at which the booking rule's answer for the session can change without a write."""
    return (released_at, at_business_time(service_date - timedelta(days=1), rules.next_day_cutoff),
            at_business_time(service_date, time(0, 0)), starts_at)


def last_modified(row: Mapping[str, Any], rules: ReleaseRules, policy_updated_at: datetime | None,
                  now: datetime) -> datetime:
    """The slot's effective last change: its row's, its policy's, or a turning point already passed."""
    moments: list[datetime] = [row["updated_at"], *(m for m in turning_points(row["service_date"], row["starts_at"],
                                                               row["released_at"], rules) if m <= now)]
    if policy_updated_at is not None:
        moments.append(policy_updated_at)
    if row.get("lapsed_at") is not None:  # a hold that lapsed freed its slot at that moment, with no write
        moments.append(row["lapsed_at"])
    if row.get("waiters_left_at") is not None:  # or when the last waiter stopped waiting, if that came later
        moments.append(row["waiters_left_at"])
    return max(moments)
