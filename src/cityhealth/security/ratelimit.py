"""Abuse control on authentication: on the authentication endpoints a moving window of attempts per source
address and per account; on every route a moving window of failed authentications per source address.

Windows run on wall-clock time, kept in this process by default (`_InProcessWindows`) or in Redis through the
`limits` library when several workers must share them, not on the injected Clock: they limit how fast real
requests arrive, and a shared Redis window cannot follow one process's simulated clock anyway.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import deque
from typing import Protocol

from fastapi import FastAPI
from limits import RateLimitItem, RateLimitItemPerSecond, WindowStats
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from cityhealth.config import Settings
from cityhealth.errors import TooManyRequests

WINDOW_S = 60


class _Windows(Protocol):
    async def hit(self, item: RateLimitItem, *identifiers: str) -> bool: ...
    async def test(self, item: RateLimitItem, *identifiers: str) -> bool: ...
    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats: ...


class _InProcessWindows:
    """Moving windows of one length kept in this process: for each key (the identifiers, the first naming the
    window), the times of its counted attempts, oldest first.

    An attempt drops the expired times of its own key only; asking about a key stores nothing; keys with
    nothing left in the window are forgotten by a sweep at most once a window. (limits' memory storages walk
    every key they hold after each hit, the asyncio one handing each to a thread: with thousands of addresses
    in the window, milliseconds of CPU per login or token; benchmarks/auth_rate_limit.py.)
    """

    def __init__(self, window_s: float) -> None:
        self._window_s = window_s
        self._windows: dict[tuple[str, ...], deque[float]] = {}
        self._swept_at = time.time()

    def _current(self, identifiers: tuple[str, ...], now: float) -> deque[float] | None:
        start = now - self._window_s
        if now - self._swept_at >= self._window_s:
            self._windows = {key: times for key, times in self._windows.items() if times and times[-1] > start}
            self._swept_at = now
        times = self._windows.get(identifiers)
        while times and times[0] <= start:
            times.popleft()
        return times

    async def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        now = time.time()
        times = self._current(identifiers, now)
        if times is None:
            times = self._windows[identifiers] = deque()
        if len(times) >= item.amount:
            return False
        times.append(now)
        return True

    async def test(self, item: RateLimitItem, *identifiers: str) -> bool:
        return len(self._current(identifiers, time.time()) or ()) < item.amount

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        now = time.time()
        times = self._current(identifiers, now) or deque()
        return WindowStats((times[0] if times else now) + self._window_s, item.amount - len(times))


class AuthRateLimiter:
    """At most `attempts` authentication attempts per `window_s` from one address and on one account, and
    at most `failures` failed authentications per `window_s` from one address on any route."""

    def __init__(self, attempts: int, storage_url: str = "memory://", window_s: int = WINDOW_S,
                 failures: int | None = None) -> None:
        url = storage_url if storage_url.startswith("async+") else f"async+{storage_url}"
        self._limiter: _Windows = _InProcessWindows(window_s) if url.startswith("async+memory") else \
            MovingWindowRateLimiter(storage_from_string(url))
        self._item = RateLimitItemPerSecond(attempts, window_s)
        self._failure_item = RateLimitItemPerSecond(failures or attempts, window_s)
        self.attempts = attempts
        self.failures = failures or attempts
        self.window_s = window_s

    async def hit(self, *, address: str | None, account: str | None) -> None:
        """Count one attempt; raise 429 with Retry-After once either window is full."""
        for kind, value in (("address", address), ("account", account)):
            if not value:
                continue
            # Accounts are keyed by a digest: the limiter's store never holds a username or an ID hash.
            key = hashlib.sha256(value.encode()).hexdigest()[:32] if kind == "account" else value
            if not await self._limiter.hit(self._item, "auth", kind, key):
                raise await self._too_many(self._item, ("auth", kind, key),
                                           f"more than {self.attempts} authentication attempts", kind,
                                           f"auth_attempts_per_{kind}")

    async def refuse_failing(self, address: str | None) -> None:
        """Raise 429 with Retry-After while `address` has used up its failed authentications (counts nothing)."""
        if address and not await self._limiter.test(self._failure_item, "auth-failure", address):
            raise await self._too_many(self._failure_item, ("auth-failure", address),
                                       f"more than {self.failures} failed authentications", "address",
                                       "auth_failures_per_address")

    async def count_failure(self, address: str | None) -> None:
        """Count one failed authentication from `address` (its window full: nothing more to count)."""
        if address:
            await self._limiter.hit(self._failure_item, "auth-failure", address)

    async def _too_many(self, item: RateLimitItemPerSecond, key: tuple[str, ...], what: str, kind: str,
                        rule: str) -> TooManyRequests:
        stats = await self._limiter.get_window_stats(item, *key)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        error = TooManyRequests(f"{what} in {self.window_s} s from this {kind}; retry after {retry_after} s",
                                code="rate_limited", rule=rule)
        error.headers = {"Retry-After": str(retry_after)}  # type: ignore[attr-defined]  # read by the handler
        return error


def auth_rate_limiter(app: FastAPI, settings: Settings) -> AuthRateLimiter:
    """The app's limiter (made on first use from the settings)."""
    limiter: AuthRateLimiter | None = getattr(app.state, "security_rate_limiter", None)
    if limiter is None:
        limiter = AuthRateLimiter(settings.auth_attempts_per_minute, settings.rate_limit_storage_url,
                                  failures=settings.auth_failures_per_minute)
        app.state.security_rate_limiter = limiter
    return limiter
