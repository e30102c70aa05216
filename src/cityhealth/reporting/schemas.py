"""Request and response shapes of the bulletin's publication profile (the publisher's block of every issue)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9+][0-9 ()\-]{4,31}$")]
Postcode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
# Kept as written (a URL type would rewrite it, e.g. add a trailing slash the printed code would carry).
Url = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500, pattern=r"^https?://[^\s/?#]+[^\s]*$")]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
MAX_PRINT_RUN = 1_000_000


class QrCodeIn(BaseModel):
    """A QR code printed in the footer: the URL it encodes (never fetched) and the caption under it."""

    model_config = ConfigDict(extra="forbid")

    caption: Short = Field(description="Printed under the code, e.g. 健康南京 APP")
    url: Url = Field(description="What the code encodes; the platform does not open it")


class PublicationProfileIn(BaseModel):
    """Everything the bulletin's footer block prints about its publisher; the editor keeps it current."""

    model_config = ConfigDict(extra="forbid")

    publisher: Line = Field(description="编印单位, also the documents' author")
    address: Line
    postcode: Postcode
    phone: Phone
    fax: Phone
    email: Email
    website: Url
    responsible_editor: Short = Field(description="责任编辑")
    print_run: int = Field(ge=1, le=MAX_PRINT_RUN, description="本期共印 N 份")
    qr_codes: list[QrCodeIn] = Field(min_length=2, max_length=2, description="The two codes of the footer")


class PublicationProfileRead(PublicationProfileIn):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    region_code: str
    version: int = Field(description="Raised by every change, for the editor's If-Match")


MAX_NEWS_CHARS = 50_000


class IssueDraftIn(BaseModel):
    """An issue drafted for a month: its editorial Markdown and, for a region's first issue, its numbers."""

    model_config = ConfigDict(extra="forbid")

    region_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{6,12}$")]
    month: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
    published_on: date = Field(description="The date printed under the masthead; its year numbers the issue")
    news_markdown: str = Field(default="", max_length=MAX_NEWS_CHARS,
                               description="The lead article and the 简讯 items (reporting/news.py's format)")
    number: int | None = Field(default=None, ge=1, le=999,
                               description="第N期: only needed for the region's first issue; later ones continue")
    total_number: int | None = Field(default=None, ge=1, le=99_999, description="总第M期, likewise")


class CorrectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)] = Field(
        description="What the correction changes; printed at the head of the corrected issue")
    news_markdown: str | None = Field(default=None, max_length=MAX_NEWS_CHARS,
                                      description="New editorial Markdown (absent: the corrected issue's)")


class EditionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    format: str
    sha256: str
    size: int


class IssueRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    region_code: str
    month: str
    year: int
    number: int
    total_number: int
    revision: int
    status: str
    published_on: date
    correction_note: str | None
    published_at: datetime | None
    editions: list[EditionRead] = []
