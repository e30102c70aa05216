"""Reporting's one table: which months are still being loaded, so that their bulletin is not taken as final."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cityhealth.db.base import Base
from cityhealth.db.types import UTCDateTime


class MonthLoad(Base):
    """A month whose data a bulk source (the demo's simulation) is loading: done of total steps.

    While `completed_at` is empty the month's figures are partial: the bulletin page says so instead of
    printing them, and `cityhealth bulletin` refuses the month.
    """

    __tablename__ = "month_loads"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    source: Mapped[str] = mapped_column(String(200))  # what is loading it, for the reader
    done: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failure: Mapped[str | None] = mapped_column(String(500))  # why the load stopped, when it did
