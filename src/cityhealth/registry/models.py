"""Registry tables: areas, organizations, departments, practitioners, client apps, residents (MPI)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Double,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cityhealth.db.base import Base
from cityhealth.db.types import UTCDateTime

AREA_LEVELS = ("province", "city", "district", "reporting_unit")
ORGANIZATION_KINDS = ("hospital", "community_health_centre", "district_platform", "external")
CHANNELS = ("online_12320", "phone", "clinic", "third_party")
# What a facility offers, as the medical e-map filters by it (names: registry/facilities.py SERVICE_NAMES).
FACILITY_SERVICES = ("outpatient", "emergency", "fever_clinic", "inpatient", "pharmacy", "laboratory", "imaging",
                     "vaccination", "maternity", "paediatrics", "dental", "tcm", "rehabilitation", "physical_exam",
                     "family_doctor", "chronic_disease", "mental_health")


class Area(Base):
    """A GB/T 2260 division, or a platform-local reporting unit such as 江北新区 (3201JB)."""

    __tablename__ = "areas"
    __table_args__ = (CheckConstraint(f"level IN {AREA_LEVELS!r}", name="level"),)

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(16))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("areas.code"), index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AreaMapping(Base):
    """A reporting unit's constituent districts (江北新区 spans parts of 浦口/六合/栖霞)."""

    __tablename__ = "area_mappings"

    reporting_unit_code: Mapped[str] = mapped_column(ForeignKey("areas.code"), primary_key=True)
    district_code: Mapped[str] = mapped_column(ForeignKey("areas.code"), primary_key=True)


class Organization(Base):
    __tablename__ = "organizations"
    __table_args__ = (
        CheckConstraint(f"kind IN {ORGANIZATION_KINDS!r}", name="kind"),
        CheckConstraint("active_to IS NULL OR active_to >= active_from", name="active_dates"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The code senders put on every record (org code); the USCC where known, else platform-assigned.
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    short_name: Mapped[str | None] = mapped_column(String(64))
    uscc: Mapped[str | None] = mapped_column(String(18), unique=True)  # 统一社会信用代码
    ws218_type: Mapped[str | None] = mapped_column(String(8))  # WS 218 institution type, e.g. A100
    level: Mapped[str | None] = mapped_column(String(8))  # 三级 / 二级 / 一级
    kind: Mapped[str] = mapped_column(String(32))
    area_code: Mapped[str | None] = mapped_column(ForeignKey("areas.code"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    active_from: Mapped[date] = mapped_column(Date)
    active_to: Mapped[date | None] = mapped_column(Date)
    # The postal address and the phone residents book by, as the booking feed publishes them.
    address_line: Mapped[str | None] = mapped_column(String(128))  # street and number
    address_city: Mapped[str | None] = mapped_column(String(64))
    address_district: Mapped[str | None] = mapped_column(String(64))  # 区/县, FHIR's address.district
    address_state: Mapped[str | None] = mapped_column(String(64))  # 省, FHIR's address.state
    postal_code: Mapped[str | None] = mapped_column(String(6))
    booking_phone: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Department(Base):
    __tablename__ = "departments"
    __table_args__ = (UniqueConstraint("organization_id", "local_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    subject_code: Mapped[str] = mapped_column(String(16))  # national 诊疗科目 code
    local_code: Mapped[str] = mapped_column(String(32))
    local_name: Mapped[str] = mapped_column(String(64))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Practitioner(Base):
    __tablename__ = "practitioners"
    __table_args__ = (UniqueConstraint("organization_id", "staff_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    staff_code: Mapped[str] = mapped_column(String(32))  # the hospital's own practitioner code
    name: Mapped[str] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(32))  # 主任医师, 副主任医师 …
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ClientApp(Base):
    """A booking front-end or third-party platform (domain.md §4); every booking records its app."""

    __tablename__ = "client_apps"
    __table_args__ = (CheckConstraint(f"channel IN {CHANNELS!r}", name="channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    channel: Mapped[str] = mapped_column(String(16))  # the app's home channel
    # Further channels it books through, space-separated: the 12320 apps also carry hospitals' own
    # (third-party) pools, as the published figures show (their bookings exceed the online channel's).
    other_channels: Mapped[str] = mapped_column(String(64), default="", server_default="")
    operator: Mapped[str | None] = mapped_column(String(255))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Resident(Base):
    """The master patient index. ID and phone numbers are stored only as HMAC + AES-GCM ciphertext."""

    __tablename__ = "residents"
    __table_args__ = (
        CheckConstraint("sex IN (0, 1, 2, 9)", name="sex"),
        Index("ix_residents_phone_hash", "phone_hash"),
        Index("ix_residents_birth_date", "birth_date"),  # linkage's blocking on the birth date
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_number_hash: Mapped[str] = mapped_column(String(64), unique=True)
    id_number_enc: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(64), index=True)
    sex: Mapped[int] = mapped_column(SmallInteger)  # GB/T 2261.1
    birth_date: Mapped[date] = mapped_column(Date)
    phone_hash: Mapped[str | None] = mapped_column(String(64))
    phone_enc: Mapped[str | None] = mapped_column(String(255))
    address_area_code: Mapped[str | None] = mapped_column(ForeignKey("areas.code"), index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FacilityProfile(Base):
    """Where an organization is on the map (WGS-84 degrees) and the number residents call; its services and
    opening hours are the two tables below. The address is the organization's own."""

    __tablename__ = "facility_profiles"
    __table_args__ = (
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude"),
        # The `near` search's box prefilter: a range on latitude, then longitude within the band.
        Index("ix_facility_profiles_latitude_longitude", "latitude", "longitude"),
    )

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    latitude: Mapped[float] = mapped_column(Double)
    longitude: Mapped[float] = mapped_column(Double)
    phone: Mapped[str | None] = mapped_column(String(32))  # enquiries / switchboard
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FacilityService(Base):
    __tablename__ = "facility_services"
    __table_args__ = (
        CheckConstraint(f"service IN {FACILITY_SERVICES!r}", name="service"),
        Index("ix_facility_services_service", "service"),
    )

    organization_id: Mapped[int] = mapped_column(ForeignKey("facility_profiles.organization_id"), primary_key=True)
    service: Mapped[str] = mapped_column(String(32), primary_key=True)


class FacilityHours(Base):
    """One opening interval [opens_min, closes_min) of an ISO weekday, in minutes after midnight Asia/Shanghai
    (1440: midnight at the day's end); a day may have several (morning and afternoon clinics)."""

    __tablename__ = "facility_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 1 AND 7", name="weekday"),
        CheckConstraint("opens_min >= 0 AND closes_min <= 1440 AND opens_min < closes_min", name="interval"),
    )

    organization_id: Mapped[int] = mapped_column(ForeignKey("facility_profiles.organization_id"), primary_key=True)
    weekday: Mapped[int] = mapped_column(SmallInteger, primary_key=True)  # ISO: 1 = Monday
    opens_min: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    closes_min: Mapped[int] = mapped_column(SmallInteger)
