"""The records room's periodic work on the job queue: the linker, which follows the stored records as they
arrive (off the upload's path: the ingest transaction does not wait for it)."""

from __future__ import annotations

from cityhealth import queue
from cityhealth.clock import Clock
from cityhealth.db.engine import Database
from cityhealth.records import linkage
from cityhealth.records.linkage import PassCounts
from cityhealth.security.crypto import FieldCipher, field_cipher

LINK_EVERY_S = 60
PAGE = 1000


@queue.periodic("records.link_new_records", every_s=LINK_EVERY_S)
async def link_new_records(runtime: queue.Runtime) -> PassCounts:
    """Link and index the records stored since the last run."""
    return await run_linker(runtime.database, runtime.clock, field_cipher(runtime.settings))


async def run_linker(database: Database, clock: Clock, cipher: FieldCipher, *, page: int = PAGE,
                     rebuild: bool = False) -> PassCounts:
    """Pages until the stored records are exhausted, one transaction each (the cursor moves with its page's work);
    `rebuild` first empties the index, so every stored record is read again."""
    total = PassCounts()
    async with database.transaction() as session:
        if rebuild:
            await linkage.clear_index(session)
        after = await linkage.start_key(session)
    while True:
        async with database.transaction() as session:
            after, counts = await linkage.link_page(session, clock, cipher, after, page)
        total.add(counts)
        if counts.read < page:
            return total
        await database.let_writers_in()  # on SQLite, a waiting booking's turn between pages
