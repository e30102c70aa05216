"""Request and response shapes of the knowledge-base API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

MAX_QUESTION_CHARS = 200  # an IVR's recognised utterance; longer text is not a caller's question
KEY_PATTERN = r"^[a-z0-9][a-z0-9-]{2,79}$"


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ArticleCreate(_Input):
    key: str = Field(pattern=KEY_PATTERN, description="the editor's stable key: a retry with it is the same article")
    category: str = Field(min_length=1, max_length=24)
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=5000)
    questions: list[str] = Field(default_factory=list, max_length=30,
                                 description="how callers ask for this answer, one phrasing each")
    valid_from: date | None = None
    valid_until: date | None = None


class ArticleUpdate(_Input):
    """Article-level fields an editor may change without a new version."""

    category: str | None = Field(default=None, min_length=1, max_length=24)
    valid_from: date | None = None
    valid_until: date | None = None


class VersionCreate(_Input):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=5000)
    questions: list[str] = Field(default_factory=list, max_length=30)


class Transition(_Input):
    version_no: int = Field(ge=1, le=1_000_000, description="the version acted on (a retry names the same one)")
    note: str | None = Field(default=None, max_length=500)


class VersionRead(_Output):
    version_no: int
    state: str
    title: str
    body: str
    questions: list[str]
    author: str
    submitted_by: str | None
    submitted_at: datetime | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_note: str | None


class ArticleRead(_Output):
    id: int
    key: str
    category: str
    category_name: str
    status: str
    latest_version_no: int
    published_version_no: int | None
    valid_from: date | None
    valid_until: date | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    latest: VersionRead
    versions: list[VersionRead] = Field(default_factory=list)


class ArticlePage(BaseModel):
    items: list[ArticleRead]
    total: int


class SearchHit(BaseModel):
    article_id: int
    key: str
    category: str
    title: str
    answer: str
    score: float
    confidence: float


class SelfServiceAsk(_Input):
    utterance_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$",
                              description="the IVR's id of this recognised utterance: a retry sends the same")
    text: str = Field(max_length=1000, description="the recognised text (at most 200 characters are a question)")


class SelfServiceAnswer(BaseModel):
    utterance_id: str
    answered: bool
    confidence: float
    threshold: float
    article_id: int | None = None
    title: str | None = None
    answer: str | None = None


class UnansweredRead(_Output):
    id: int
    group_key: str
    sample_text: str
    asked_count: int
    first_asked_at: datetime
    last_asked_at: datetime
    status: str
    article_id: int | None


class UnansweredPage(BaseModel):
    items: list[UnansweredRead]
    total: int


class SynonymGroupWrite(_Input):
    variants: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(
        min_length=1, max_length=50, description="the words callers use for the group's word (folded into it)")


class LexiconEntryRead(_Output):
    kind: str
    term: str
    version_no: int
    variants: list[str]
    active: bool
    changed_by: str
    changed_at: datetime


class LexiconRead(_Output):
    """The editors' additions in force; the shipped data files are the base they add to."""

    words: list[LexiconEntryRead]
    synonyms: list[LexiconEntryRead]
