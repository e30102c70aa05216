"""Request and response shapes of the bulletin's publication profile (the publisher's block of every issue)."""

from __future__ import annotations

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
