"""The moves of calls between the tallies' keys (models.CallTally) that one transaction makes.

A call counts under the key its row has: a report or a reclassification that changes the row's start day,
hour, city, category or outcome takes one from the old key and adds one to the new. The write that changes the
row and the move are in one transaction, under the call's row lock, so a report sent twice, reported out of
order or reclassified moves a call, never counts it twice. Pure: the SQL is in repository.py.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any, NamedTuple

UNKNOWN = ""  # a key column of a call not categorised (or ended) yet


class TallyKey(NamedTuple):
    business_date: date
    start_hour: int
    city_code: str
    category: str
    outcome: str


def tally_key(business_date: date | None, start_hour: int | None, city_code: str | None, category: str | None,
              outcome: str | None) -> TallyKey | None:
    """A call's key; None while its start is not known (such a call counts nowhere)."""
    if business_date is None or start_hour is None:
        return None
    return TallyKey(business_date, start_hour, city_code or UNKNOWN, category or UNKNOWN, outcome or UNKNOWN)


class Moves:
    """The calls one transaction moves, added up by key."""

    def __init__(self) -> None:
        self._calls: Counter[TallyKey] = Counter()

    def move(self, before: TallyKey | None, after: TallyKey | None) -> None:
        if before == after:
            return
        if before is not None:
            self._calls[before] -= 1
        if after is not None:
            self._calls[after] += 1

    def rows(self) -> list[dict[str, Any]]:
        """The non-zero moves as counter rows, in key order."""
        return [{**key._asdict(), "calls": calls} for key, calls in sorted(self._calls.items()) if calls]
