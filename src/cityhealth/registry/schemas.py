"""Registry request and response shapes.

Checks that need nothing but the value (a kind, a code's shape, a credit code's check character) live here
and fail with a stable rule name as the error type. Checks that need the database or the clock (does the
area exist, is the ID number's birth date in the past) live in the services. ID and phone numbers are
never checked here: a schema error echoes its input, and those values must only ever leave masked.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from cityhealth.db.types import RowId
from cityhealth.registry.identifiers import IdentifierError, validate_uscc
from cityhealth.registry.models import AREA_LEVELS, CHANNELS, ORGANIZATION_KINDS

T = TypeVar("T")

MAX_PAGE_SIZE = 500
HOSPITAL_LEVELS = ("三级", "二级", "一级")
SEX_CODES = (0, 1, 2, 9)  # GB/T 2261.1

_ORG_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_WS218_TYPE = re.compile(r"[A-Z][0-9]{3}")
# 诊疗科目 (the national directory of clinical subjects): "03" 内科, "03.01" 呼吸内科专业 …
_SUBJECT_CODE = re.compile(r"[0-9]{2}(?:\.[0-9]{2}){0,2}")
_LOCAL_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_APP_CODE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_AREA_CODE = re.compile(r"[0-9A-Z]{2,12}")
_POSTAL_CODE = re.compile(r"[0-9]{6}")
# A hospital's switchboard or booking line: digits, optionally a leading '+', area code and extension
# separated by '-' or spaces (025-83304616, 12320-1, +86 25 8330 4616).
_BOOKING_PHONE = re.compile(r"\+?[0-9](?:[0-9 -]{1,30}[0-9])?")


def _one_of(rule: str, allowed: tuple[object, ...]) -> Any:
    def check(value: object) -> object:
        if value not in allowed:
            raise PydanticCustomError(rule, "must be one of {allowed}",
                                      {"allowed": ", ".join(str(a) for a in allowed)})
        return value

    return AfterValidator(check)


def _shaped(rule: str, pattern: re.Pattern[str], description: str) -> Any:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise PydanticCustomError(rule, "must be {description}", {"description": description})
        return value

    return AfterValidator(check)


def _uscc(value: str) -> str:
    try:
        return validate_uscc(value)
    except IdentifierError as exc:
        raise PydanticCustomError(exc.rule, exc.message) from None


def _int_as_text(value: object) -> object:
    # A JSON number would otherwise fail as a "string_type" error that echoes the whole ID number.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _not_blank(value: str) -> str:
    if not value:
        raise PydanticCustomError("string_too_short", "must not be blank")
    return value


def _not_null(value: object, info: ValidationInfo) -> object:
    """An update may leave a required field out, but may not set it to null."""
    if value is None:
        raise PydanticCustomError("not_null", "{field} cannot be cleared", {"field": info.field_name})
    return value


AreaCode = Annotated[str, Field(max_length=12),
                     _shaped("area.code_format", _AREA_CODE, "2-12 digits or capital letters")]
AreaLevel = Annotated[str, _one_of("area.level", AREA_LEVELS)]
OrganizationKind = Annotated[str, _one_of("organization.kind", ORGANIZATION_KINDS)]
OrganizationCode = Annotated[str, _shaped("organization.code", _ORG_CODE,
                                          "1-32 letters, digits, '.', '_' or '-', starting with a letter or digit")]
HospitalLevel = Annotated[str, _one_of("organization.level", HOSPITAL_LEVELS)]
Ws218Type = Annotated[str, _shaped("organization.ws218_type", _WS218_TYPE,
                                   "a WS 218 institution type: a capital letter and 3 digits, e.g. A100")]
Uscc = Annotated[str, AfterValidator(_uscc)]
SubjectCode = Annotated[str, _shaped("department.subject_code", _SUBJECT_CODE,
                                     "a 诊疗科目 code: 2 digits, optionally .NN subdivisions, e.g. 03.01")]
LocalCode = Annotated[str, _shaped("department.local_code", _LOCAL_CODE,
                                   "1-32 letters, digits, '.', '_' or '-'")]
StaffCode = Annotated[str, _shaped("practitioner.staff_code", _LOCAL_CODE,
                                   "1-32 letters, digits, '.', '_' or '-'")]
AppCode = Annotated[str, _shaped("client_app.code", _APP_CODE, "1-64 lower-case letters, digits or '-'")]
Channel = Annotated[str, _one_of("client_app.channel", CHANNELS)]
SexCode = Annotated[int, _one_of("sex.code", SEX_CODES)]
Name64 = Annotated[str, Field(max_length=64), AfterValidator(_not_blank)]
Name128 = Annotated[str, Field(max_length=128), AfterValidator(_not_blank)]
PostalCode = Annotated[str, _shaped("organization.postal_code", _POSTAL_CODE, "a 6-digit postal code")]
BookingPhone = Annotated[str, Field(max_length=32), _shaped(
    "organization.booking_phone", _BOOKING_PHONE, "a phone number: digits, an optional leading '+', '-' or spaces")]
# No length or shape constraint: the services check these values and report them masked.
SensitiveText = Annotated[str, BeforeValidator(_int_as_text)]


class _Input(BaseModel):
    # Unknown fields are refused: a client must not set server-owned fields (id, created_at …).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


# --- Areas --------------------------------------------------------------------------------------------


class AreaCreate(_Input):
    code: AreaCode = Field(description="GB/T 2260 code (6 digits), or a platform-local reporting unit code")
    name: Name64
    level: AreaLevel
    parent_code: AreaCode | None = None
    maps_to: list[AreaCode] | None = Field(
        default=None, description="a reporting unit's constituent districts (GB/T 2260 codes)")


class AreaUpdate(_Input):
    """The level is fixed at creation: children and mappings depend on it."""

    name: Name64 | None = None
    parent_code: AreaCode | None = None
    maps_to: list[AreaCode] | None = None
    is_active: bool | None = None

    @field_validator("name", "is_active")
    @classmethod
    def _required(cls, value: object, info: ValidationInfo) -> object:
        return _not_null(value, info)


class AreaRead(_Output):
    code: str
    name: str
    level: str
    parent_code: str | None
    maps_to: list[str]
    is_active: bool
    created_at: datetime
    updated_at: datetime


# --- Organizations ------------------------------------------------------------------------------------

_ACTIVE_TO = "last day excluded: the organization is active on days active_from <= d < active_to"


class _AddressFields(_Input):
    """Where the organization is and the phone residents book by (all optional; the booking feed shows them)."""

    address_line: Name128 | None = Field(default=None, description="street and number")
    address_city: Name64 | None = None
    address_district: Name64 | None = Field(default=None, description="区/县")
    address_state: Name64 | None = Field(default=None, description="省 (province)")
    postal_code: PostalCode | None = None
    booking_phone: BookingPhone | None = Field(default=None, description="the number residents book by")


class _OrganizationFields(_AddressFields):
    code: OrganizationCode | None = Field(
        default=None, description="the code senders put on records; default the USCC, else platform-assigned")
    name: Name128
    short_name: Name64 | None = None
    uscc: Uscc | None = Field(default=None, description="统一社会信用代码 (GB 32100-2015)")
    ws218_type: Ws218Type | None = None
    level: HospitalLevel | None = None
    kind: OrganizationKind
    area_code: AreaCode | None = None
    active_from: date | None = Field(default=None, description="default: today (Asia/Shanghai)")
    active_to: date | None = Field(default=None, description=_ACTIVE_TO)


class OrganizationCreate(_OrganizationFields):
    parent_id: RowId | None = None


class OrganizationUpdate(_AddressFields):
    """The code is immutable: every record a sender ever uploaded carries it."""

    name: Name128 | None = None
    short_name: Name64 | None = None
    uscc: Uscc | None = None
    ws218_type: Ws218Type | None = None
    level: HospitalLevel | None = None
    kind: OrganizationKind | None = None
    area_code: AreaCode | None = None
    parent_id: RowId | None = None
    active_from: date | None = None
    active_to: date | None = Field(default=None, description=_ACTIVE_TO)

    @field_validator("name", "kind", "active_from")
    @classmethod
    def _required(cls, value: object, info: ValidationInfo) -> object:
        return _not_null(value, info)


class OrganizationDeactivate(_Input):
    active_to: date | None = Field(default=None, description="default: today, so it is inactive from today")


class OrganizationRead(_Output):
    id: int
    code: str
    name: str
    short_name: str | None
    uscc: str | None
    ws218_type: str | None
    level: str | None
    kind: str
    area_code: str | None
    parent_id: RowId | None
    active_from: date
    active_to: date | None
    address_line: str | None = None
    address_city: str | None = None
    address_district: str | None = None
    address_state: str | None = None
    postal_code: str | None = None
    booking_phone: str | None = None
    created_at: datetime
    updated_at: datetime


# --- Departments and practitioners --------------------------------------------------------------------


class DepartmentCreate(_Input):
    subject_code: SubjectCode = Field(description="national 诊疗科目 code")
    local_code: LocalCode
    local_name: Name64


class DepartmentUpdate(_Input):
    subject_code: SubjectCode | None = None
    local_name: Name64 | None = None
    is_active: bool | None = None

    @field_validator("subject_code", "local_name", "is_active")
    @classmethod
    def _required(cls, value: object, info: ValidationInfo) -> object:
        return _not_null(value, info)


class DepartmentRead(_Output):
    id: int
    organization_id: RowId
    subject_code: str
    local_code: str
    local_name: str
    is_active: bool
    created_at: datetime
    updated_at: datetime


class _PractitionerFields(_Input):
    staff_code: StaffCode
    name: Name64
    title: Annotated[str, Field(max_length=32)] | None = None


class PractitionerCreate(_PractitionerFields):
    department_id: RowId | None = None


class PractitionerUpdate(_Input):
    name: Name64 | None = None
    title: Annotated[str, Field(max_length=32)] | None = None
    department_id: RowId | None = None
    is_active: bool | None = None

    @field_validator("name", "is_active")
    @classmethod
    def _required(cls, value: object, info: ValidationInfo) -> object:
        return _not_null(value, info)


class PractitionerRead(_Output):
    id: int
    organization_id: RowId
    department_id: RowId | None
    staff_code: str
    name: str
    title: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


# --- Client applications ------------------------------------------------------------------------------


class _ClientAppFields(_Input):
    code: AppCode
    name: Name128
    channel: Channel
    other_channels: list[Channel] = Field(default_factory=list, description="further channels it books through")
    operator: Annotated[str, Field(max_length=255)] | None = None


class ClientAppCreate(_ClientAppFields):
    organization_id: RowId | None = None


class ClientAppUpdate(_Input):
    name: Name128 | None = None
    channel: Channel | None = None
    other_channels: list[Channel] | None = None
    operator: Annotated[str, Field(max_length=255)] | None = None
    organization_id: RowId | None = None
    is_active: bool | None = None

    @field_validator("name", "channel", "is_active", "other_channels")
    @classmethod
    def _required(cls, value: object, info: ValidationInfo) -> object:
        return _not_null(value, info)


class ClientAppRead(_Output):
    id: int
    code: str
    name: str
    channel: str
    other_channels: list[str]
    operator: str | None
    organization_id: RowId | None
    is_active: bool
    created_at: datetime
    updated_at: datetime

    @field_validator("other_channels", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return value.split() if isinstance(value, str) else value


# --- Residents (the master patient index) -------------------------------------------------------------


class ResidentCreate(_Input):
    id_number: SensitiveText = Field(description="GB 11643 ID number; a 15-digit legacy number is converted")
    name: Name64
    sex: SexCode | None = Field(default=None, description="GB/T 2261.1; default: the ID number's")
    birth_date: date | None = Field(default=None, description="default: the ID number's")
    phone: SensitiveText | None = None
    address_area_code: AreaCode | None = None


class ResidentUpdate(_Input):
    id_number: SensitiveText | None = Field(default=None, description="a correction; must stay unique")
    name: Name64 | None = None
    sex: SexCode | None = None
    birth_date: date | None = None
    phone: SensitiveText | None = None
    address_area_code: AreaCode | None = None
    is_active: bool | None = None

    @field_validator("id_number", "name", "sex", "birth_date", "is_active")
    @classmethod
    def _required(cls, value: object, info: ValidationInfo) -> object:
        return _not_null(value, info)


class ResidentLookup(_Input):
    """Sent in a POST body so that the number never appears in a URL or an access log."""

    id_number: SensitiveText


class ResidentRead(BaseModel):
    id: int
    id_number_masked: str
    name: str
    sex: int
    birth_date: date
    phone_masked: str | None
    address_area_code: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


class ResidentRevealed(ResidentRead):
    """The resident's own view, or a platform administrator's: the whole numbers."""

    id_number: str
    phone: str | None


# --- Import rows: other objects referenced by their codes, which are stable across installations -------


class AreaImport(AreaCreate):
    is_active: bool | None = None


class OrganizationImport(_OrganizationFields):
    parent_code: OrganizationCode | None = None


class DepartmentImport(DepartmentCreate):
    organization_code: OrganizationCode
    is_active: bool | None = None


class PractitionerImport(_PractitionerFields):
    organization_code: OrganizationCode
    department_local_code: LocalCode | None = None
    is_active: bool | None = None


class ClientAppImport(_ClientAppFields):
    organization_code: OrganizationCode | None = None
    is_active: bool | None = None


class ResidentImport(ResidentCreate):
    is_active: bool | None = None
