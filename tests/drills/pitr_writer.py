"""The point-in-time drill's quick writer (`drills --short`): real-time uploads through the platform, in a process
of its own so that the drill can pause it (SIGSTOP) as it pauses the simulator. Runs until killed."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.drills.platform import FORM, client_of, platform


async def write(database_url: str, var_dir: Path) -> None:
    async with platform(database_url, var_dir, migrate=False) as site, client_of(site.app) as http:
        batch = 0
        while True:
            response = await http.post(f"/api/collection/forms/{FORM}/records", json=site.batch(f"w{batch}", 20),
                                       headers=site.headers())
            if response.status_code != 200:
                raise SystemExit(f"upload refused: {response.status_code} {response.text[:300]}")
            batch += 1


if __name__ == "__main__":
    asyncio.run(write(sys.argv[1], Path(sys.argv[2])))
