"""Failed authentication, recorded in bounded form: counted per (source address, window), audited once.

An anonymous caller can fail authentication as fast as it can send requests. One hash-chained audit
event per failure would let it grow the trail without bound (and hold the chain lock for each), so each
failure instead increments a counter row of `auth_failure_windows` for its source address and window
(WINDOW_S on the injected clock). The first failure of a source in a window, and its first refusal by a
rate limit, are also written as audit events: at most two events and one counter row per source and
window, whatever the caller sends. The rate limit itself (ratelimit.py) caps how fast failures can come.

Denials of an authenticated caller (403, a 404 on someone else's object) and every access to personal
data are audited one event each, as before; only failed authentication goes through here.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cityhealth.clock import Clock
from cityhealth.db.engine import Database
from cityhealth.request_vars import client_address_var
from cityhealth.security import repository
from cityhealth.security.audit import Action, record_now, request_audit_var
from cityhealth.security.principals import Principal

WINDOW_S = 3600
# The counter's key when a request has no client address (not over HTTP): such failures still count.
UNKNOWN_SOURCE = "unknown"


def window_start(moment: datetime) -> datetime:
    """The start of the fixed window `moment` falls in (aligned to the epoch, so every worker agrees)."""
    seconds = int(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % WINDOW_S, UTC)


async def authentication_failed(
    database: Database,
    clock: Clock,
    principal: Principal | None,
    resource_type: str,
    *,
    detail: str,
    action: Action = Action.DENIED,
    resource_id: str | None = None,
    actor: str | None = None,
    actor_kind: str | None = None,
    rate_limited: bool = False,
) -> None:
    """Record a failed authentication (or, with `rate_limited`, a 429 refusing one) in bounded form.

    Inside a request the write waits, like `record_now`, until the request's transaction has ended; the
    audit middleware counts the failure towards the source address's limit.
    """
    current = request_audit_var.get()
    if current is not None:
        current.authentication_recorded = True
        if not rate_limited:
            current.failed_authentications += 1
    source = client_address_var.get() or UNKNOWN_SOURCE
    now = clock.now()

    async def write() -> None:
        async with database.transaction() as session:
            count = await repository.count_auth_failure(
                session, source_address=source, window_start=window_start(now), now=now, detail=detail,
                rate_limited=rate_limited)
        if count == 1:
            await record_now(database, clock, principal, action, resource_type, resource_id=resource_id,
                             detail=detail, actor=actor, actor_kind=actor_kind)

    if current is not None and not current.closed:
        current.deferred.append(write)
        return
    await write()
