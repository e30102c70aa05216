"""Create the job queue's tables and functions (procrastinate's schema) on PostgreSQL.

SQLite has no queue: the server runs the tasks in-process (queue.LocalRunner), so nothing is made there. The
schema is procrastinate's own, as its installed version ships it (pinned in pyproject.toml); a later version
of procrastinate brings its schema migrations, applied by a migration of ours next to this one.

Revision ID: 20261205_0035
Revises: 20261126_0230
Create Date: 2026-12-05 00:35:00 UTC
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy.util import await_only

revision: str = "20261205_0035"
down_revision: str | None = "20261126_0230"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from procrastinate.schema import SchemaManager

    # The schema is a script of many statements: sent as one simple query through the driver's own
    # connection (still inside the migration's transaction), as a prepared statement cannot hold several.
    driver = bind.connection.driver_connection
    await_only(driver.execute(SchemaManager.get_schema()))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs, "
               "procrastinate_workers CASCADE")
    op.execute("DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type, "
               "procrastinate_job_status CASCADE")
    op.execute("""DO $$ DECLARE f record; BEGIN
        FOR f IN SELECT oid::regprocedure AS sig FROM pg_proc WHERE proname LIKE 'procrastinate%' LOOP
            EXECUTE 'DROP FUNCTION IF EXISTS ' || f.sig || ' CASCADE';
        END LOOP; END $$""")
