"""Alembic environment: runs migrations over our async engine on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from cityhealth.db.engine import Database
from cityhealth.models import metadata
from cityhealth.queue import is_queue_schema

config = context.config
url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
if not url:
    raise SystemExit("no database URL: use `cityhealth db upgrade` or `alembic -x url=... upgrade head`")


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=is_queue_schema,  # procrastinate's tables come from its schema, not from our models
    )
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    database = Database(url)
    try:
        async with database.engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await database.dispose()


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported; run against a database")
asyncio.run(_main())
