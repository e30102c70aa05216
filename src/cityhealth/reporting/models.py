"""Reporting's tables: the months still being loaded (their bulletin is not final), the publication profiles."""

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


class PublicationProfile(Base):
    """What an issue's footer block prints about its publisher, per region; kept by the bulletin editor.

    The QR codes' URLs are stored as written and only ever encoded, never opened.
    """

    __tablename__ = "publication_profiles"

    region_code: Mapped[str] = mapped_column(String(12), primary_key=True)  # the area the bulletin reports on
    publisher: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(200))
    postcode: Mapped[str] = mapped_column(String(6))
    phone: Mapped[str] = mapped_column(String(32))
    fax: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(200))
    website: Mapped[str] = mapped_column(String(500))
    responsible_editor: Mapped[str] = mapped_column(String(40))
    print_run: Mapped[int] = mapped_column(Integer)
    qr1_caption: Mapped[str] = mapped_column(String(40))
    qr1_url: Mapped[str] = mapped_column(String(500))
    qr2_caption: Mapped[str] = mapped_column(String(40))
    qr2_url: Mapped[str] = mapped_column(String(500))
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(96))
