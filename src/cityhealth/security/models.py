"""Security tables: staff users and sessions, resident accounts, machine clients, the audit trail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityhealth.db.base import Base
from cityhealth.db.types import UTCDateTime
from cityhealth.security.crypto import Purpose


class AuditEvent(Base):
    """One access to personal data, authentication or denial. Append-only and hash-chained."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(96))  # principal subject, or "anonymous"
    actor_kind: Mapped[str] = mapped_column(String(16))
    on_behalf_of: Mapped[str | None] = mapped_column(String(96))
    organization_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    resource_type: Mapped[str] = mapped_column(String(48))
    resource_id: Mapped[str | None] = mapped_column(String(96))
    resident_id: Mapped[int | None] = mapped_column(Integer, index=True)  # one event per resident
    outcome: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str | None] = mapped_column(String(64))
    source_address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuthFailureWindow(Base):
    """Failed authentications from one source address in one window (security/failures.py): the bounded
    record of anonymous failures. The first of each kind in a window is also an audit event; the rest are
    only counted here, so no anonymous caller can grow the hash-chained trail without bound."""

    __tablename__ = "auth_failure_windows"

    source_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)  # failed authentications
    rate_limited: Mapped[int] = mapped_column(Integer)  # requests refused 429 for too many failures or attempts
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_detail: Mapped[str] = mapped_column(String(64))  # the last refusal's code, e.g. invalid_token


class StaffUser(Base):
    """A member of staff: argon2 password, TOTP second factor, lockout after repeated failures."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[str] = mapped_column(String(255))  # space-separated Role values
    # The organization the user works for; for a reading-centre doctor, the reading centre's organization.
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    totp_secret_enc: Mapped[str | None] = mapped_column(String(255))  # FieldCipher, Purpose.STAFF_TOTP_SECRET
    totp_pending_enc: Mapped[str | None] = mapped_column(String(255))  # an enrolment awaiting its first code
    totp_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)  # a code is accepted once, never replayed
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StaffSession(Base):
    """A staff login. Tokens carry its id (`sid`); it dies on logout or after the idle timeout."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(16))  # logout, idle, deactivated
    source_address: Mapped[str | None] = mapped_column(String(64))


class ResidentAccount(Base):
    """A resident's login, bound to one master-index resident after a real-name check."""

    __tablename__ = "resident_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), unique=True)
    # At most three accounts per phone number (domain.md §4), counted through the HMAC.
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    phone_enc: Mapped[str] = mapped_column(String(255))  # FieldCipher, Purpose.ACCOUNT_PHONE
    password_hash: Mapped[str] = mapped_column(String(255))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ResidentSession(Base):
    """A resident login; same lifecycle as a staff session."""

    __tablename__ = "resident_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    resident_account_id: Mapped[int] = mapped_column(ForeignKey("resident_accounts.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(16))
    source_address: Mapped[str | None] = mapped_column(String(64))


class MachineClient(Base):
    """A system calling the API with OAuth2 client credentials and a signed JWT assertion (SMART Backend)."""

    __tablename__ = "machine_clients"
    __table_args__ = (CheckConstraint("jwks IS NOT NULL OR jwks_url IS NOT NULL", name="has_keys"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    client_app_id: Mapped[int | None] = mapped_column(ForeignKey("client_apps.id"), index=True)
    scopes: Mapped[str] = mapped_column(String(1024))  # space-separated Scope values
    jwks: Mapped[str | None] = mapped_column(Text)  # the registered public JWK Set, JSON
    jwks_url: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UsedJti(Base):
    """A client assertion's `jti`, kept until the assertion expires so it is never accepted twice."""

    __tablename__ = "used_jtis"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SmsCode(Base):
    """A one-time code sent to a phone (resident app sign-in or registration). Only its keyed hash is kept.

    `token_hash` is a digest of the random token the browser carries between the steps; the code's hash is
    bound to that token, so a code is good for its own challenge only.
    """

    __tablename__ = "sms_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)  # Purpose.ACCOUNT_PHONE, as the accounts'
    phone_enc: Mapped[str] = mapped_column(String(255), info={"encrypted_purpose": Purpose.SMS_PHONE})
    purpose: Mapped[str] = mapped_column(String(16))  # sign_in | register
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (CheckConstraint("attempts >= 0", name="attempts"),)


class SmsMessage(Base):
    """The SMS outbox: one text to send to a phone. The text is encrypted; it is erased once delivered."""

    __tablename__ = "sms_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone_enc: Mapped[str] = mapped_column(String(255), info={"encrypted_purpose": Purpose.OUTBOX_PHONE})
    body_enc: Mapped[str | None] = mapped_column(String(1024), info={"encrypted_purpose": Purpose.OUTBOX_BODY})
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)  # past it, the text is not worth sending
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_by: Mapped[str | None] = mapped_column(String(32))  # the sink or gateway that took it
