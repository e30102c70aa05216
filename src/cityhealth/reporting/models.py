"""Reporting's tables: months still being loaded, publication profiles, the issues and their frozen editions."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
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


class BulletinIssue(Base):
    """One issue of the bulletin for a region and month: a draft the editor works on, then published and
    frozen. A correction is a new revision of the same numbers; the latest published revision is the issue."""

    __tablename__ = "bulletin_issues"
    __table_args__ = (
        UniqueConstraint("region_code", "year", "number", "revision"),
        UniqueConstraint("region_code", "total_number", "revision"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM reported on
    year: Mapped[int] = mapped_column(Integer)  # the year of publication (第N期 counts within it)
    number: Mapped[int] = mapped_column(Integer)  # 第N期
    total_number: Mapped[int] = mapped_column(Integer)  # 总第M期
    revision: Mapped[int] = mapped_column(Integer)  # 0: the issue as first published; 1, 2 …: corrections
    status: Mapped[str] = mapped_column(String(12))  # draft | published
    published_on: Mapped[date] = mapped_column(Date)  # the date printed under the masthead
    news_markdown: Mapped[str] = mapped_column(Text)
    correction_note: Mapped[str | None] = mapped_column(Text)  # what a correction changed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(96))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_by: Mapped[str | None] = mapped_column(String(96))


class BulletinEdition(Base):
    """A published issue's edition as it was published: its bytes and their SHA-256, never re-rendered."""

    __tablename__ = "bulletin_editions"

    issue_id: Mapped[int] = mapped_column(ForeignKey("bulletin_issues.id"), primary_key=True)
    format: Mapped[str] = mapped_column(String(8), primary_key=True)  # html | docx | pdf | md | json
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
