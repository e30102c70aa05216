"""Typed domain errors. One handler (observability.install_error_handlers) renders them as RFC 9457."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """An error a caller can act on: a stable code, an HTTP status, and the field and value at fault."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        value: Any = None,
        rule: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field
        self.value = value
        self.rule = rule
        self.errors = errors or []


class ValidationFailed(DomainError):
    status = 422
    code = "validation_failed"
    title = "Unprocessable content"


class MalformedBody(ValidationFailed):
    """The body is not what its Content-Type says (JSON with NaN, Infinity or a lone surrogate, say)."""

    code = "malformed_body"


class NotFound(DomainError):
    """Also used for "exists but not yours", so that existence never leaks."""

    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class Unauthenticated(DomainError):
    status = 401
    code = "unauthenticated"
    title = "Unauthenticated"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class TooManyRequests(DomainError):
    status = 429
    code = "too_many_requests"
    title = "Too many requests"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"
    title = "Content too large"


class ConfigurationError(Exception):
    """The platform cannot start as configured; the message says what to change."""


class SchemaOutOfDate(ConfigurationError):
    """The database's schema is behind the code."""
