"""The booking-race crash drill: `cityhealth serve` SIGKILLed at random moments while many residents race for
the few slots of one session through an app, and started again.

A third of the residents book in one step; a third hold a slot and confirm the hold; a third hold one and never
confirm it (a caller who hangs up). Each request has its own Idempotency-Key and is sent again with it after a
broken connection, a 503 or an "in flight" 409 until it is answered for good (201, or a 4xx such as sold out).
The hospital's policy holds a slot for 1 minute, the shortest it allows, so that the drill can then wait for
the unconfirmed holds to lapse and for the hold sweeper (booking/jobs.py: the server's own periodic
work, started again with every server) to release them. Afterwards, from the database: no session has more
active bookings than slots (oversold), no resident two bookings (doubled); each resident's booking is the one
their answers told them of, in the state they imply (booked when a booking or confirmation was answered 201,
expired for a hold never confirmed); every request that made or confirmed a booking, sent once more with its
key, answers that booking (findable by its key, none answered to nobody); no hold is left past its expiry, the
sweeper released at least one, and the session's counters and slot map equal a recount of its active bookings
(the released slots are back). The audit chain verifies after each crash.
"""

from __future__ import annotations

import asyncio
import random
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from cityhealth.booking.jobs import HOLD_SWEEP_EVERY_S
from cityhealth.booking.lifecycle import HOLD_SWEEP_ACTOR
from cityhealth.booking.models import ACTIVE_STATUSES, Booking
from cityhealth.clock import Clock
from cityhealth.db.engine import Database
from cityhealth.security.models import AuditEvent
from tests.drills.checks import seats
from tests.drills.platform import Tokens, booking_ground, crash_rig, platform

RESIDENTS = 60
CAPACITY = 20
HOLD_MINUTES = 1
BOOK, HOLD = "/api/booking/bookings", "/api/booking/holds"
PLANS = ("book", "confirm", "abandon")  # resident n follows PLANS[n % 3]

Request = tuple[str, dict[str, Any], str]  # path, body, Idempotency-Key


@dataclass
class BookingCrashResult:
    backend: str = "sqlite"
    crashes: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    booked_answers: int = 0  # bookings and confirmations answered 201
    active: int = 0
    holds: int = 0  # holds answered 201
    confirmed: int = 0  # of those, confirmations answered 201
    released: int = 0  # holds ended expired
    swept: int = 0  # of those, released by the sweeper
    left: int = 0  # holds still held past their expiry at the end
    oversold: int = 0
    doubled: int = 0
    mismatched: int = 0  # residents whose bookings in the database are not what their answers said
    unfindable: int = 0
    counters: tuple[str, ...] = ()  # the session's counters that differ from a recount
    audit_failures: int = 0

    @property
    def ok(self) -> bool:
        return (self.crashes > 0 and not self.oversold and not self.doubled and not self.mismatched
                and not self.unfindable and not self.left and self.swept > 0 and not self.counters
                and not self.audit_failures and 500 not in self.statuses)

    def line(self) -> str:
        return (f"crash_booking: ok={int(self.ok)} backend={self.backend} crashes={self.crashes} "
                f"residents={RESIDENTS} slots={CAPACITY} "
                f"active={self.active} booked_answers={self.booked_answers} holds={self.holds} "
                f"confirmed={self.confirmed} released={self.released} swept={self.swept} left={self.left} "
                f"oversold={self.oversold} doubled={self.doubled} mismatched={self.mismatched} "
                f"unfindable={self.unfindable} counters_ok={int(not self.counters)} "
                f"audit_failures={self.audit_failures} answers={dict(sorted(self.statuses.items()))}")


@dataclass
class Resident:
    """One resident of the race: the plan followed, and each request sent with its final answer."""

    resident_id: int
    number: str
    plan: str
    requests: list[Request] = field(default_factory=list)
    answers: list[httpx.Response] = field(default_factory=list)

    @property
    def booking_id(self) -> int | None:
        """The booking or hold the first request was answered with; None when it was refused."""
        if not self.answers or self.answers[0].status_code != 201:
            return None
        booking_id: int = self.answers[0].json()["id"]
        return booking_id

    @property
    def booked(self) -> bool:
        """A booking, or the confirmation of a hold, answered 201."""
        return self.booking_id is not None and self.plan != "abandon" and self.answers[-1].status_code == 201

    def expected(self) -> list[tuple[int, str]]:
        """The resident's bookings the database must hold at the end, once every lapsed hold is released."""
        if self.booking_id is None:
            return []
        return [(self.booking_id, "booked" if self.booked else "expired")]

    def keyed(self, status: str) -> list[Request]:
        """The requests whose key must answer the resident's booking in `status`: the one that made it (booking
        or hold), and the confirmation that booked a hold."""
        return self.requests[:2] if status == "booked" else self.requests[:1]


def _unanswered(response: httpx.Response) -> bool:
    """Not answered for good yet: the server was unavailable, or still runs this key's request (one sent again
    after a timeout while the first still ran)."""
    if response.status_code in (502, 503, 504):
        return True
    return response.status_code == 409 and response.json().get("code") == "idempotency_key_in_flight"


async def _send(http: httpx.AsyncClient, tokens: Tokens, request: Request,
                result: BookingCrashResult | None) -> httpx.Response:
    path, body, key = request
    while True:
        try:
            response = await http.post(path, json=body, headers={**tokens.headers(), "Idempotency-Key": key})
        except httpx.TransportError:
            if result is not None:
                result.statuses[-1] += 1
            await asyncio.sleep(0.1)
            continue
        if result is not None:
            result.statuses[response.status_code] += 1
        if not _unanswered(response):
            return response
        await asyncio.sleep(0.2)


async def _holds_left(database: Database, clock: Clock, session_id: int) -> int:
    """Wait until the session has no hold left or until two sweeper rounds have passed since the last one lapsed;
    the holds still held then (all past their expiry)."""
    while True:
        async with database.transaction() as tx:
            expiries = [moment for moment in (await tx.execute(select(Booking.hold_expires_at).where(
                Booking.session_id == session_id, Booking.status == "held"))).scalars() if moment is not None]
        if not expiries or clock.now() > max(expiries) + timedelta(seconds=2 * HOLD_SWEEP_EVERY_S):
            return len(expiries)
        await asyncio.sleep(1.0)


async def _bookings(database: Database, session_id: int) -> dict[int, list[tuple[int, str]]]:
    """Each resident's bookings of the session (id, status), holds ended or not."""
    found: dict[int, list[tuple[int, str]]] = {}
    async with database.transaction() as tx:
        for resident_id, booking_id, status in await tx.execute(
                select(Booking.resident_id, Booking.id, Booking.status)
                .where(Booking.session_id == session_id).order_by(Booking.id)):
            found.setdefault(resident_id, []).append((booking_id, status))
    return found


async def _swept(database: Database, booking_ids: list[int]) -> int:
    """How many of these bookings the hold sweeper expired (by its audit events)."""
    async with database.transaction() as tx:
        return int((await tx.execute(select(func.count(func.distinct(AuditEvent.resource_id))).where(
            AuditEvent.actor == HOLD_SWEEP_ACTOR, AuditEvent.resource_type == "booking",
            AuditEvent.resource_id.in_([str(booking_id) for booking_id in booking_ids])))).scalar_one())


async def run(*, crashes: int = 20, seed: int = 1, backend: str = "sqlite") -> BookingCrashResult:
    chance = random.Random(seed)
    result = BookingCrashResult(backend)
    async with crash_rig("drill-crash-booking-", backend) as rig:
        async with platform(rig.url, rig.root / "var") as site:
            ground = await booking_ground(site, residents=RESIDENTS, capacity=CAPACITY, hold_minutes=HOLD_MINUTES)
        people = [Resident(resident_id, number, PLANS[n % len(PLANS)])
                  for n, (resident_id, number) in enumerate(ground.residents)]
        clock, tokens, session_id = site.app.state.clock, ground.app, ground.session_id
        await rig.serve(site)
        async with httpx.AsyncClient(base_url=rig.base_url, timeout=30) as http:

            async def ask(person: Resident, path: str, body: dict[str, Any]) -> None:
                person.requests.append((path, body, uuid.uuid4().hex))
                person.answers.append(await _send(http, tokens, person.requests[-1], result))

            async def act(person: Resident) -> None:
                await asyncio.sleep(chance.uniform(0, 2.0 + crashes * 0.5))  # arrivals spread over the crashes
                await ask(person, BOOK if person.plan == "book" else HOLD,
                          {"session_id": session_id, "id_number": person.number})
                if person.plan == "confirm" and person.booking_id is not None:
                    await asyncio.sleep(chance.uniform(0, 2.0))  # the resident reads the hold, then confirms it
                    await ask(person, BOOK, {"hold_id": person.booking_id, "id_number": person.number})

            racing = [asyncio.create_task(act(person)) for person in people]
            for _ in range(crashes):
                await asyncio.sleep(chance.uniform(0.2, 1.0))
                result.audit_failures += 0 if await rig.crash() else 1
                result.crashes += 1
            await asyncio.gather(*racing)
            result.left = await _holds_left(rig.checker, clock, session_id)
            found = await _bookings(rig.checker, session_id)
            for person in people:  # the same requests again: each answers the booking the database holds
                for booking_id, status in found.get(person.resident_id, []):
                    for request in person.keyed(status):
                        again = await _send(http, tokens, request, None)
                        if again.status_code != 201 or again.json().get("id") != booking_id:
                            result.unfindable += 1
        held = await _bookings(rig.checker, session_id)
        rows = [row for bookings in held.values() for row in bookings]
        result.active = sum(1 for _, status in rows if status in ACTIVE_STATUSES)
        result.oversold = max(0, result.active - CAPACITY)
        result.doubled = sum(len(bookings) - 1 for bookings in held.values())
        result.mismatched = sum(1 for person in people if held.get(person.resident_id, []) != person.expected())
        result.booked_answers = sum(1 for person in people if person.booked)
        result.holds = sum(1 for person in people if person.plan != "book" and person.booking_id is not None)
        result.confirmed = sum(1 for person in people if person.plan == "confirm" and person.booked)
        expired = [booking_id for booking_id, status in rows if status == "expired"]
        result.released = len(expired)
        result.swept = await _swept(rig.checker, expired)
        result.counters = (await seats(rig.checker, [session_id])).mismatched.get(session_id, ())
        result.audit_failures += 0 if await rig.chain_ok() else 1
        return result


if __name__ == "__main__":
    outcome = asyncio.run(run(crashes=int(sys.argv[1]) if len(sys.argv) > 1 else 20,
                              backend=sys.argv[2] if len(sys.argv) > 2 else "sqlite"))
    print(outcome.line())  # noqa: T201
    sys.exit(0 if outcome.ok else 1)
