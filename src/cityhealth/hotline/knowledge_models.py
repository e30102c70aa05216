"""Knowledge-base tables: articles and their versions, self-service questions, unanswered question groups."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cityhealth.db.base import Base
from cityhealth.db.types import UTCDateTime

# code -> the name editors and callers see.
CATEGORIES: dict[str, str] = {
    "booking": "预约挂号",
    "hours": "门诊时间",
    "hospital": "医院指南",
    "vaccination": "预防接种",
    "insurance": "医疗保险",
    "public_health": "公共卫生",
    "maternal_child": "妇幼保健",
    "hotline": "12320 热线",
    "other": "其他",
}
# published: served to searches (within its validity dates); unpublished: taken down, kept with its history.
ARTICLE_STATUSES = ("draft", "published", "unpublished")
# A version is written (draft), submitted (in_review), then approved or sent back (rejected) by another editor.
VERSION_STATES = ("draft", "in_review", "approved", "rejected")
UNANSWERED_STATUSES = ("open", "resolved")


def _in(column: str, values: tuple[str, ...] | list[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class KnowledgeArticle(Base):
    """An article: its category, publication state and validity; its text lives in its versions."""

    __tablename__ = "hotline_kb_articles"
    __table_args__ = (
        CheckConstraint(_in("status", ARTICLE_STATUSES), name="status"),
        CheckConstraint(_in("category", list(CATEGORIES)), name="category"),
        CheckConstraint("valid_until IS NULL OR valid_from IS NULL OR valid_until >= valid_from", name="validity"),
        CheckConstraint("status <> 'published' OR published_version_no IS NOT NULL", name="published_has_version"),
        Index("ix_hotline_kb_articles_status_updated_at", "status", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)  # the editor's (or starter set's) stable key
    category: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16))
    latest_version_no: Mapped[int] = mapped_column(Integer)
    published_version_no: Mapped[int | None] = mapped_column(Integer)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(96))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class KnowledgeVersion(Base):
    """One wording of an article: title, answer, the questions it answers, and its review trail."""

    __tablename__ = "hotline_kb_versions"
    __table_args__ = (
        UniqueConstraint("article_id", "version_no"),
        CheckConstraint(_in("state", VERSION_STATES), name="state"),
        CheckConstraint("reviewed_by IS NULL OR submitted_by IS NULL OR reviewed_by <> submitted_by",
                        name="four_eyes"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("hotline_kb_articles.id"))
    version_no: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    questions: Mapped[str] = mapped_column(Text)  # one phrasing a line: how callers ask for this answer
    author: Mapped[str] = mapped_column(String(96))
    submitted_by: Mapped[str | None] = mapped_column(String(96))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reviewed_by: Mapped[str | None] = mapped_column(String(96))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    review_note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UnansweredQuestion(Base):
    """Self-service questions that found no answer, grouped by their normalised terms, for editors."""

    __tablename__ = "hotline_kb_unanswered"
    __table_args__ = (
        CheckConstraint(_in("status", UNANSWERED_STATUSES), name="status"),
        CheckConstraint("asked_count >= 1", name="asked_count"),
        Index("ix_hotline_kb_unanswered_status_asked_count", "status", "asked_count"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_key: Mapped[str] = mapped_column(String(200), unique=True)
    sample_text: Mapped[str] = mapped_column(String(200))  # personal numbers masked
    asked_count: Mapped[int] = mapped_column(Integer)
    first_asked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_asked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    article_id: Mapped[int | None] = mapped_column(ForeignKey("hotline_kb_articles.id"))
    resolved_by: Mapped[str | None] = mapped_column(String(96))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SelfServiceQuery(Base):
    """One recognised utterance the IVR asked about, once per utterance id, with what it was answered."""

    __tablename__ = "hotline_kb_queries"
    __table_args__ = (Index("ix_hotline_kb_queries_asked_at", "asked_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    utterance_id: Mapped[str] = mapped_column(String(64), unique=True)
    client: Mapped[str] = mapped_column(String(96))
    text: Mapped[str] = mapped_column(String(200))  # personal numbers masked
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered: Mapped[bool] = mapped_column(Boolean)
    article_id: Mapped[int | None] = mapped_column(ForeignKey("hotline_kb_articles.id"))
    confidence: Mapped[float] = mapped_column(Float)
    unanswered_id: Mapped[int | None] = mapped_column(ForeignKey("hotline_kb_unanswered.id"))


class SelfServiceDay(Base):
    """A day's self-service questions, asked and answered: one more with each new utterance's query row."""

    __tablename__ = "hotline_kb_query_days"

    business_date: Mapped[date] = mapped_column(Date, primary_key=True)  # asked on (Asia/Shanghai)
    asked: Mapped[int] = mapped_column(Integer)
    answered: Mapped[int] = mapped_column(Integer)


class KnowledgeState(Base):
    """One row: a counter moved by every change to what is published, so that a worker's index sees it cheaply."""

    __tablename__ = "hotline_kb_state"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(Integer)


LEXICON_KINDS = ("word", "synonyms")


class LexiconEntry(Base):
    """One version of an editor's dictionary word or synonym group; the latest version of each is in force.

    The shipped data files stay the base; these add to them. A word's or group's history is its versions,
    a removal being a version that is not active."""

    __tablename__ = "hotline_kb_lexicon"
    __table_args__ = (
        UniqueConstraint("kind", "term", "version_no"),
        CheckConstraint(_in("kind", LEXICON_KINDS), name="kind"),
        CheckConstraint("version_no >= 1", name="version_no"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    term: Mapped[str] = mapped_column(String(40))  # the word, or the group's canonical word
    version_no: Mapped[int] = mapped_column(Integer)
    variants: Mapped[str] = mapped_column(Text)  # a synonym group's other words, one a line ('' for a word)
    active: Mapped[bool] = mapped_column(Boolean)  # false: removed by this version
    changed_by: Mapped[str] = mapped_column(String(96))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
