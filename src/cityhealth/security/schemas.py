"""Request and response shapes of the security API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from cityhealth.db.types import RowId
from cityhealth.security.principals import Role


class OAuthErrorResponse(BaseModel):
    """An OAuth 2.0 error response (RFC 6749 §5.2), as the token endpoint answers a refused request."""

    error: str
    error_description: str


class TokenResponse(BaseModel):
    """An OAuth 2.0 access token response (RFC 6749 §5.1)."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the token type name, not a secret
    expires_in: int
    scope: str


class StaffLogin(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    # SecretStr: a password never appears in a validation error, a repr or a log line.
    password: SecretStr
    totp: str | None = Field(default=None, max_length=16, description="the 6-digit code of the authenticator")


class TotpEnrolmentStart(BaseModel):
    current_code: str | None = Field(default=None, max_length=16,
                                     description="a code from the authenticator already enrolled, if any")


class TotpEnrolment(BaseModel):
    provisioning_uri: str = Field(description="otpauth:// URI to scan into the authenticator app")


class TotpConfirmation(BaseModel):
    code: str = Field(max_length=16)


class ResidentRegistration(BaseModel):
    """Real-name registration: ID number and name must match a resident in the master patient index."""

    id_number: SecretStr = Field(description="居民身份证号, 18 characters")
    name: str = Field(min_length=1, max_length=64)
    phone: SecretStr = Field(description="mainland mobile number; at most 3 accounts per number")
    password: SecretStr


class ResidentLogin(BaseModel):
    id_number: SecretStr
    password: SecretStr


class ResidentAccountRead(BaseModel):
    account_id: RowId
    resident_id: RowId
    phone: str = Field(description="masked, e.g. 138****5678")


class ClientCreate(BaseModel):
    client_id: str = Field(min_length=3, max_length=64)
    name: str = Field(min_length=1, max_length=128)
    scopes: list[str] = Field(min_length=1)
    organization_id: RowId | None = None
    client_app_id: RowId | None = None
    jwks: dict[str, Any] | None = Field(default=None, description="the client's public JWK Set")
    jwks_url: str | None = Field(default=None, max_length=512)


class ClientRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    client_id: str
    name: str
    organization_id: RowId | None
    client_app_id: RowId | None
    scopes: list[str]
    jwks_url: str | None
    created_at: datetime
    revoked_at: datetime | None


class StaffCreate(BaseModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    display_name: str = Field(min_length=1, max_length=64)
    password: SecretStr
    roles: list[Role] = Field(min_length=1)
    organization_id: RowId | None = None


class StaffRead(BaseModel):
    id: int
    username: str
    display_name: str
    roles: list[Role]
    organization_id: RowId | None
    is_active: bool
    locked_until: datetime | None
    has_second_factor: bool


class StaffCreated(BaseModel):
    user: StaffRead
    totp_provisioning_uri: str | None = Field(description="shown once: scan it into the authenticator app")


class SessionRead(BaseModel):
    id: str
    created_at: datetime
    last_seen_at: datetime
    source_address: str | None
    is_current: bool


class Accessor(BaseModel):
    """Who accessed a record, as a resident may be told: a kind and an organization, never an account."""

    kind: str = Field(description="staff, client (a connected system), resident, operator or anonymous")
    organization: str | None
    description: str


class AccessLogEntry(BaseModel):
    id: int
    occurred_at: datetime
    action: str
    resource_type: str
    outcome: str
    accessor: Accessor


class AccessLogPage(BaseModel):
    items: list[AccessLogEntry]
    next_before: int | None = Field(description="pass as `before` to get the next (older) page")
