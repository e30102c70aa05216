"""Settings, read from the environment (prefix CITYHEALTH_) once, in create_app() or the CLI."""

from __future__ import annotations

import os
import secrets
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cityhealth.errors import ConfigurationError


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


# Keys the platform needs; each is 32 random bytes, base64url in the environment or in var/secrets/.
SECRET_NAMES = ("field_encryption_key", "lookup_hmac_key", "token_signing_key")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITYHEALTH_", extra="ignore", frozen=True)

    env: Environment = Environment.DEVELOPMENT
    var_dir: Path = Path("var")
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    log_level: str = "INFO"

    # Keys; generated into var/secrets/ in development, required in production.
    field_encryption_key: SecretStr | None = None
    lookup_hmac_key: SecretStr | None = None
    token_signing_key: SecretStr | None = None
    # Older field-encryption keys still accepted for decryption during `cityhealth keys rotate`.
    previous_field_encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)

    # HTTP
    # Where callers reach the platform (scheme, host, optional port and path prefix), e.g.
    # https://health.example.gov.cn. Absolute URLs that must not follow the request's Host header (the
    # token endpoint's expected `aud`) are built from it, never from the request. Required (https) in
    # production; elsewhere it defaults to http://127.0.0.1:{port}.
    public_base_url: str = ""
    behind_proxy: bool = False
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_request_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    auth_attempts_per_minute: int = Field(default=60, ge=1)
    # Failed authentications (401s, bad client assertions) per minute per address on any route, before 429.
    auth_failures_per_minute: int = Field(default=60, ge=1)
    rate_limit_storage_url: str = "memory://"  # per process; redis://host:6379 shares limits across workers

    # Security
    access_token_ttl_s: int = Field(default=300, ge=30, le=300)
    staff_session_idle_timeout_s: int = Field(default=900, ge=60)
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_s: int = Field(default=900, ge=1)

    # Data collection
    realtime_window_h: int = Field(default=24, ge=1)
    raw_payload_retention_days: int = Field(default=90, ge=1)
    # Failed-authentication counters per source and hour (security/failures.py); the first of each window
    # is in the audit trail for good, the counts are kept this long for abuse reviews.
    auth_failure_retention_days: int = Field(default=30, ge=1)
    # Background tasks on PostgreSQL (queue.py): tasks the server itself runs at once, beside any number of
    # `cityhealth worker` processes (0: only those). SQLite always runs them in the server.
    server_worker_concurrency: int = Field(default=1, ge=0, le=64)
    # A worker's heartbeat; one silent for `worker_stalled_after_s` is taken as dead and its jobs run again.
    worker_heartbeat_s: int = Field(default=10, ge=1, le=60)
    worker_stalled_after_s: int = Field(default=30, ge=2)
    worker_shutdown_timeout_s: int = Field(default=10, ge=0)  # then a stopping worker cancels what it runs
    worker_nice: int = Field(default=10, ge=0, le=19)  # bulk jobs' CPU priority below requests' (os.nice)
    bulk_chunk_rows: int = Field(default=2500, ge=100, le=20000)  # a bulk job's rows per transaction
    # Bulk upload limits, enforced while the body streams (docs/decisions/collection-ingest.md says why these).
    upload_max_compressed_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)  # as sent (gzip or plain)
    upload_max_decompressed_bytes: int = Field(default=1024 * 1024 * 1024, ge=1024)  # after gzip inflation
    upload_max_line_bytes: int = Field(default=1024 * 1024, ge=1024)  # one NDJSON record or CSV row, as UTF-8
    upload_max_expansion_ratio: int = Field(default=100, ge=2)  # inflated / compressed bytes, ...
    upload_expansion_check_from_bytes: int = Field(default=16 * 1024 * 1024, ge=0)  # ... once this much inflated
    # Free disk a bulk upload's spool leaves to everything else on a SQLite database's filesystem (a full disk
    # would refuse every write, the spool's own clean-up included); docs/reliability.md.
    storage_reserve_bytes: int = Field(default=128 * 1024 * 1024, ge=0)

    # Hotline work orders: the deadline in working days by category, within the ranges domain.md §5 allows
    # (an urgent order is due the same day, always).
    hotline_consultation_days: int = Field(default=5, ge=1, le=5)
    hotline_help_days: int = Field(default=5, ge=1, le=5)
    hotline_complaint_days: int = Field(default=10, ge=10, le=13)

    # Remote diagnosis: the PACSs the imaging routes reach over DICOMweb, by the name a request gives, e.g.
    # CITYHEALTH_TELEMED_PACS='{"city-pacs": "http://pacs.internal:8042/dicom-web"}'.
    telemed_pacs: dict[str, str] = Field(default_factory=dict)

    # Simulation and tests only: lets the injected clock be moved. Refused in production.
    simulated_clock: bool = False

    @field_validator("cors_origins", "previous_field_encryption_keys", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _heartbeat_divides_a_minute(self) -> Settings:
        if 60 % self.worker_heartbeat_s or self.worker_stalled_after_s <= self.worker_heartbeat_s:
            raise ValueError(
                f"CITYHEALTH_WORKER_HEARTBEAT_S={self.worker_heartbeat_s} must divide a minute and be shorter than "
                f"CITYHEALTH_WORKER_STALLED_AFTER_S={self.worker_stalled_after_s}"
            )
        return self

    @model_validator(mode="after")
    def _production_rules(self) -> Settings:
        if self.env is Environment.PRODUCTION:
            missing = [name for name in SECRET_NAMES if getattr(self, name) is None]
            if missing:
                raise ValueError(
                    "production requires explicit keys: set "
                    + ", ".join(f"CITYHEALTH_{name.upper()}" for name in missing)
                )
            if self.simulated_clock:
                raise ValueError("CITYHEALTH_SIMULATED_CLOCK cannot be enabled in production")
        return self

    @model_validator(mode="after")
    def _public_base_url_is_a_base_url(self) -> Settings:
        if not self.public_base_url:
            if self.env is Environment.PRODUCTION:
                raise ValueError("production requires CITYHEALTH_PUBLIC_BASE_URL (https://…): the URL callers "
                                 "reach the platform at, from which client assertions' audience is checked")
            object.__setattr__(self, "public_base_url", f"http://127.0.0.1:{self.port}")
            return self
        parts = urlsplit(self.public_base_url)
        if (parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment
                or "#" in self.public_base_url or "?" in self.public_base_url or parts.username is not None):
            raise ValueError(f"CITYHEALTH_PUBLIC_BASE_URL must be a base URL such as https://health.example.gov.cn "
                             f"(no user, query or fragment), not {self.public_base_url!r}")
        if self.env is Environment.PRODUCTION and parts.scheme != "https":
            raise ValueError("CITYHEALTH_PUBLIC_BASE_URL must be an https:// URL in production")
        object.__setattr__(self, "public_base_url", self.public_base_url.rstrip("/"))
        return self

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'cityhealth.sqlite'}"

    def public_url(self, path: str) -> str:
        """The absolute URL of `path` (a route's path, starting with "/") as callers reach the platform."""
        return f"{self.public_base_url}{path}"

    @property
    def secrets_dir(self) -> Path:
        return self.var_dir / "secrets"

    def secret(self, name: str) -> bytes:
        """The named key, from the environment or, in development and tests, var/secrets/ (made on first use)."""
        if name not in SECRET_NAMES:
            raise ConfigurationError(f"unknown secret {name!r}")
        configured: SecretStr | None = getattr(self, name)
        if configured is not None:
            return _decode_key(name, configured.get_secret_value())
        if self.env is Environment.PRODUCTION:  # pragma: no cover - the validator already refuses this
            raise ConfigurationError(f"CITYHEALTH_{name.upper()} must be set in production")
        return _load_or_create_key(self.secrets_dir / name)

    def previous_secrets(self) -> list[bytes]:
        return [
            _decode_key("previous_field_encryption_keys", key.get_secret_value())
            for key in self.previous_field_encryption_keys
        ]


def _decode_key(name: str, text: str) -> bytes:
    import base64
    import binascii

    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ConfigurationError(f"CITYHEALTH_{name.upper()} is not base64url") from exc
    if len(raw) < 32:
        raise ConfigurationError(f"CITYHEALTH_{name.upper()} must decode to at least 32 bytes")
    return raw


def _load_or_create_key(path: Path) -> bytes:
    import base64

    if path.exists():
        return _decode_key(path.name, path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    encoded = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    # Written whole under a name of its own (mode 0600), then linked into place: a process starting at the same
    # moment finds no key or the whole of it, never a file still empty (it read "" and failed to start), and the
    # link refuses to replace a key another process put there first, so no two processes hold different keys.
    fd, written = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(encoded)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(written, path)
        except FileExistsError:
            return _decode_key(path.name, path.read_text())
    finally:
        os.unlink(written)
    return base64.urlsafe_b64decode(encoded)


def generate_key() -> str:
    """A fresh key, base64url, for an operator to put in the environment."""
    import base64

    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment; the only place configuration is read."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
