"""Abuse control on the authentication endpoints: a moving window per source address and per account.

Windows run on wall-clock time kept by the `limits` storage (in-process memory by default, Redis when
several workers must share them), not on the injected Clock: they limit how fast real requests arrive,
and a shared Redis window cannot follow one process's simulated clock anyway.
"""

from __future__ import annotations

import hashlib
import math
import time

from fastapi import FastAPI
from limits import RateLimitItemPerSecond
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from cityhealth.config import Settings
from cityhealth.errors import TooManyRequests

WINDOW_S = 60


class AuthRateLimiter:
    """At most `attempts` authentication attempts per `window_s` from one address and on one account."""

    def __init__(self, attempts: int, storage_url: str = "memory://", window_s: int = WINDOW_S) -> None:
        url = storage_url if storage_url.startswith("async+") else f"async+{storage_url}"
        self._limiter = MovingWindowRateLimiter(storage_from_string(url))
        self._item = RateLimitItemPerSecond(attempts, window_s)
        self.attempts = attempts
        self.window_s = window_s

    async def hit(self, *, address: str | None, account: str | None) -> None:
        """Count one attempt; raise 429 with Retry-After once either window is full."""
        for kind, value in (("address", address), ("account", account)):
            if not value:
                continue
            # Accounts are keyed by a digest: the limiter's store never holds a username or an ID hash.
            key = hashlib.sha256(value.encode()).hexdigest()[:32] if kind == "account" else value
            if not await self._limiter.hit(self._item, "auth", kind, key):
                stats = await self._limiter.get_window_stats(self._item, "auth", kind, key)
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                error = TooManyRequests(
                    f"more than {self.attempts} authentication attempts in {self.window_s} s from this "
                    f"{kind}; retry after {retry_after} s", code="rate_limited", rule=f"auth_attempts_per_{kind}")
                error.headers = {"Retry-After": str(retry_after)}  # type: ignore[attr-defined]  # read by the handler
                raise error


def auth_rate_limiter(app: FastAPI, settings: Settings) -> AuthRateLimiter:
    """The app's limiter (made on first use from the settings)."""
    limiter: AuthRateLimiter | None = getattr(app.state, "security_rate_limiter", None)
    if limiter is None:
        limiter = AuthRateLimiter(settings.auth_attempts_per_minute, settings.rate_limit_storage_url)
        app.state.security_rate_limiter = limiter
    return limiter
