"""The booking-race crash drill: `cityhealth serve` SIGKILLed at random moments while many residents race for
the few slots of one session through an app, and started again.

Each resident's booking is one request with its own Idempotency-Key, sent again with the same key after a
broken connection or a 503 until it is answered for good (201 booked, or a 4xx such as sold out). Afterwards,
from the database: no session has more active bookings than slots (oversold), no resident two (doubled); and
every resident's request sent once more with its key answers the booking the database holds for that resident
(so every booking is findable by its key, none answered to nobody). The audit chain verifies after each crash.
"""

from __future__ import annotations

import asyncio
import random
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx
from sqlalchemy import func, select

from cityhealth.booking.models import Booking
from tests.drills.checks import ACTIVE_BOOKINGS
from tests.drills.platform import Tokens, booking_ground, crash_rig, platform

RESIDENTS = 60
CAPACITY = 20


@dataclass
class BookingCrashResult:
    crashes: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    booked_answers: int = 0
    active: int = 0
    oversold: int = 0
    doubled: int = 0
    unfindable: int = 0
    audit_failures: int = 0

    @property
    def ok(self) -> bool:
        return (self.crashes > 0 and not self.oversold and not self.doubled and not self.unfindable
                and not self.audit_failures and 500 not in self.statuses and self.active == self.booked_answers)

    def line(self) -> str:
        return (f"crash_booking: ok={int(self.ok)} crashes={self.crashes} residents={RESIDENTS} slots={CAPACITY} "
                f"active={self.active} booked_answers={self.booked_answers} oversold={self.oversold} "
                f"doubled={self.doubled} unfindable={self.unfindable} audit_failures={self.audit_failures} "
                f"answers={dict(sorted(self.statuses.items()))}")


async def _book(http: httpx.AsyncClient, tokens: Tokens, session_id: int, id_number: str, key: str,
                result: BookingCrashResult | None) -> httpx.Response:
    while True:
        try:
            response = await http.post("/api/booking/bookings", json={"session_id": session_id, "id_number": id_number},
                                       headers={**tokens.headers(), "Idempotency-Key": key})
        except httpx.TransportError:
            if result is not None:
                result.statuses[-1] += 1
            await asyncio.sleep(0.1)
            continue
        if result is not None:
            result.statuses[response.status_code] += 1
        if response.status_code not in (502, 503, 504):
            return response
        await asyncio.sleep(0.2)


async def run(*, crashes: int = 20, seed: int = 1) -> BookingCrashResult:
    chance = random.Random(seed)
    result = BookingCrashResult()
    async with crash_rig("drill-crash-booking-") as rig:
        async with platform(rig.url, rig.root / "var") as site:
            ground = await booking_ground(site, residents=RESIDENTS, capacity=CAPACITY)
        residents, tokens, session_id = ground.residents, ground.app, ground.session_id
        keys = {number: uuid.uuid4().hex for _, number in residents}
        answers: dict[str, httpx.Response] = {}
        await rig.serve(site)
        async with httpx.AsyncClient(base_url=rig.base_url, timeout=30) as http:

            async def resident(number: str) -> None:
                await asyncio.sleep(chance.uniform(0, 2.0 + crashes * 0.5))  # arrivals spread over the crashes
                answers[number] = await _book(http, tokens, session_id, number, keys[number], result)

            racing = [asyncio.create_task(resident(number)) for _, number in residents]
            for _ in range(crashes):
                await asyncio.sleep(chance.uniform(0.2, 1.0))
                result.audit_failures += 0 if await rig.crash() else 1
                result.crashes += 1
            await asyncio.gather(*racing)
            result.booked_answers = sum(1 for response in answers.values() if response.status_code == 201)
            async with rig.checker.transaction() as session:
                per_resident = dict((await session.execute(
                    select(Booking.resident_id, func.count()).where(
                        Booking.status.in_(ACTIVE_BOOKINGS), Booking.session_id == session_id
                    ).group_by(Booking.resident_id)
                )).all())
                held = {rid: bid for rid, bid in (await session.execute(
                    select(Booking.resident_id, Booking.id).where(Booking.status.in_(ACTIVE_BOOKINGS)))).all()}
            result.active = sum(per_resident.values())
            result.oversold = max(0, result.active - CAPACITY)
            result.doubled = sum(n - 1 for n in per_resident.values() if n > 1)
            for resident_id, number in residents:  # the same request again: the booking the database holds
                again = await _book(http, tokens, session_id, number, keys[number], None)
                if resident_id in held and (again.status_code != 201 or again.json().get("id") != held[resident_id]):
                    result.unfindable += 1
        result.audit_failures += 0 if await rig.chain_ok() else 1
        return result


if __name__ == "__main__":
    outcome = asyncio.run(run(crashes=int(sys.argv[1]) if len(sys.argv) > 1 else 20))
    print(outcome.line())  # noqa: T201
    sys.exit(0 if outcome.ok else 1)
