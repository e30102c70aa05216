"""CPU per authentication attempt counted by the in-process rate limiter, against limits' asyncio memory storage.

Fills the window with --keys addresses, then counts --hits attempts spaced --gap-ms apart (real logins and token
requests arrive spaced, so each one meets a quiet limiter), and reads the process's CPU (user + system) and
voluntary context switches over them. The same loop without the limiter, in the same run, is the bare ceiling.
limits' asyncio memory storage is measured beside ours: after every hit it hands each key it holds to a thread
to expire old entries (see security/ratelimit.py).

Last line: cpu_us_per_hit=X bare_cpu_us=Y asyncio_storage_cpu_us=Z switches_per_hit=S
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from limits import RateLimitItemPerSecond
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cityhealth.security.ratelimit import AuthRateLimiter

Hit = Callable[[str], Awaitable[object]]


async def _measure(hit: Hit | None, fill: Hit | None, keys: int, hits: int, gap_s: float) -> tuple[float, float]:
    if fill is not None:
        for n in range(keys):
            await fill(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
    await asyncio.sleep(0.1)
    before = resource.getrusage(resource.RUSAGE_SELF)
    for n in range(hits):
        if hit is not None:
            await hit(f"account-{n % 100}")
        await asyncio.sleep(gap_s)
    await asyncio.sleep(0.1)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return cpu / hits * 1e6, (after.ru_nvcsw - before.ru_nvcsw) / hits


def ours(keys: int, hits: int, gap_s: float) -> tuple[float, float]:
    limiter = AuthRateLimiter(10**6)

    async def fill(address: str) -> None:
        await limiter.hit(address=address, account=None)

    async def hit(account: str) -> None:
        await limiter.hit(address=None, account=account)

    return asyncio.run(_measure(hit, fill, keys, hits, gap_s))


def asyncio_storage(keys: int, hits: int, gap_s: float) -> tuple[float, float]:
    limiter = MovingWindowRateLimiter(storage_from_string("async+memory://"))
    item = RateLimitItemPerSecond(10**6, 60)

    async def fill(address: str) -> bool:
        return await limiter.hit(item, "auth", "address", address)

    async def hit(account: str) -> bool:
        return await limiter.hit(item, "auth", "account", account)

    return asyncio.run(_measure(hit, fill, keys, hits, gap_s))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1000, help="addresses already in the window")
    parser.add_argument("--hits", type=int, default=1000)
    parser.add_argument("--gap-ms", type=float, default=2.0, help="between two attempts")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    gap_s = args.gap_ms / 1000
    print(f"cores={os.cpu_count()} keys={args.keys} hits={args.hits} gap_ms={args.gap_ms}", flush=True)
    results: dict[str, list[tuple[float, float]]] = {"bare": [], "ours": [], "asyncio": []}
    for round_no in range(args.rounds):
        results["bare"].append(asyncio.run(_measure(None, None, args.keys, args.hits, gap_s)))
        results["ours"].append(ours(args.keys, args.hits, gap_s))
        results["asyncio"].append(asyncio_storage(args.keys, args.hits, gap_s))
        print(f"round {round_no + 1}: " + "  ".join(
            f"{name} {runs[-1][0]:.0f} us CPU, {runs[-1][1]:.1f} switches" for name, runs in results.items()),
            flush=True)
    best = {name: min(runs) for name, runs in results.items()}
    print(f"cpu_us_per_hit={best['ours'][0]:.0f} bare_cpu_us={best['bare'][0]:.0f} "
          f"asyncio_storage_cpu_us={best['asyncio'][0]:.0f} switches_per_hit={best['ours'][1]:.1f}")


if __name__ == "__main__":
    main()
