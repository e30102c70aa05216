"""Add the hotline's maintained counters (the calls' tallies, the work orders' and the self-service questions'
days) and fill them from the calls, events and queries already held.

Revision ID: 20261206_0130
Revises: 20261205_0730
Create Date: 2026-12-06 01:30:00 UTC
"""

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision: str = "20261206_0130"
down_revision: str | None = "20261205_0730"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES = ("city_12345", "province_12345", "self_received")
SATISFACTION = ("satisfied", "basically_satisfied", "dissatisfied")
DAY_COUNTS = ("received", "closed", "closed_on_time", *SATISFACTION)
_SHANGHAI = ZoneInfo("Asia/Shanghai")


def _moment(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _day(value: Any) -> date:
    return _moment(value).astimezone(_SHANGHAI).date()


def _data(value: Any) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(value) if isinstance(value, str) else value
    return found


def upgrade() -> None:
    op.create_table(
        "hotline_call_tallies",
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("start_hour", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("business_date", "start_hour", "city_code", "category", "outcome",
                                name=op.f("pk_hotline_call_tallies")),
    )
    op.create_table(
        "hotline_work_order_days",
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in DAY_COUNTS),
        sa.CheckConstraint(f"source IN ({', '.join(repr(s) for s in SOURCES)})",
                           name=op.f("ck_hotline_work_order_days_source")),
        sa.PrimaryKeyConstraint("business_date", "source", name=op.f("pk_hotline_work_order_days")),
    )
    op.create_table(
        "hotline_kb_query_days",
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("asked", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("business_date", name=op.f("pk_hotline_kb_query_days")),
    )
    _fill()


def _fill() -> None:
    """The counters of what is held already, counted as the code that keeps them counts."""
    bind = op.get_bind()
    bind.execute(sa.text(
        "INSERT INTO hotline_call_tallies (business_date, start_hour, city_code, category, outcome, calls) "
        "SELECT business_date, start_hour, COALESCE(city_code, ''), COALESCE(category, ''), COALESCE(outcome, ''), "
        "COUNT(*) FROM hotline_calls WHERE business_date IS NOT NULL AND start_hour IS NOT NULL "
        "GROUP BY business_date, start_hour, COALESCE(city_code, ''), COALESCE(category, ''), COALESCE(outcome, '')"))
    asked: Counter[date] = Counter()
    answered: Counter[date] = Counter()
    for asked_at, was_answered in bind.execute(sa.text("SELECT asked_at, answered FROM hotline_kb_queries")):
        asked[_day(asked_at)] += 1
        answered[_day(asked_at)] += int(bool(was_answered))
    if asked:
        op.bulk_insert(sa.table("hotline_kb_query_days", sa.column("business_date", sa.Date()),
                                sa.column("asked"), sa.column("answered")),
                       [{"business_date": day, "asked": asked[day], "answered": answered[day]} for day in asked])
    days: dict[tuple[date, str], Counter[str]] = {}
    due: dict[int, datetime] = {}  # each order's deadline as its events go
    rows = bind.execute(sa.text(
        "SELECT e.work_order_id, e.kind, e.at, e.data, o.source FROM hotline_work_order_events e "
        "JOIN hotline_work_orders o ON o.id = e.work_order_id ORDER BY e.work_order_id, e.seq"))
    for order_id, kind, at, data, source in rows:
        data = _data(data) or {}
        counts = days.setdefault((_day(at), source), Counter())
        if kind in ("received", "extension_approved", "reopened"):
            due[order_id] = _moment(data["due_at"])
        if kind == "received":
            counts["received"] += 1
        elif kind == "closed":
            counts["closed"] += 1
            counts["closed_on_time"] += int(_moment(at) <= due[order_id])
        elif kind == "callback":
            counts[str(data["satisfaction"])] += 1
    filled = [{"business_date": day, "source": source, **{name: counts[name] for name in DAY_COUNTS}}
              for (day, source), counts in days.items() if any(counts.values())]
    if filled:
        op.bulk_insert(sa.table("hotline_work_order_days", sa.column("business_date", sa.Date()),
                                sa.column("source"), *(sa.column(name) for name in DAY_COUNTS)), filled)


def downgrade() -> None:
    op.drop_table("hotline_kb_query_days")
    op.drop_table("hotline_work_order_days")
    op.drop_table("hotline_call_tallies")
