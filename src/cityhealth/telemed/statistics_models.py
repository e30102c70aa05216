"""The telemed statistics' own table: cumulative figures carried over from an older platform."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityhealth.db.base import Base
from cityhealth.db.types import UTCDateTime


class OpeningBalance(Base):
    """A network's consultations held before the platform, counted in every month ending on or after `as_of`."""

    __tablename__ = "telemed_opening_balances"
    __table_args__ = (CheckConstraint("consultations >= 0", name="consultations"),)

    network_code: Mapped[str] = mapped_column(ForeignKey("telemed_networks.code"), primary_key=True)
    as_of: Mapped[date] = mapped_column(Date, primary_key=True)
    consultations: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(96))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
