"""What the rule tests share: the standard's validators at a fixed moment, and one record broken or accepted."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from cityhealth.collection.standard import load_standard
from cityhealth.collection.validation.validator import FormValidator, ValidationResult
from cityhealth.registry.identifiers import (
    make_resident_id,
)
from tests.factories.collection import make_record

NOW = datetime(2022, 6, 15, 1, 30, tzinfo=UTC)  # 09:30 in Nanjing
EVENT = NOW - timedelta(hours=3)
STANDARD = load_standard()
VALIDATORS = {code: FormValidator(form, STANDARD, {}) for code, form in STANDARD.forms.items()}


def check(form: str, record: dict[str, Any]) -> ValidationResult:
    return VALIDATORS[form].validate([record], now=NOW)


def broken(form: str, **overrides: Any) -> list[tuple[str, str, str | None]]:
    """(rule, field, shown value) of every error of one record of `form` with `overrides` applied."""
    record = make_record(form, "H0001", "r-1", EVENT, **overrides)
    result = check(form, record)
    return [(error.rule, error.field, error.value) for error in result.errors.get(0, [])]


def only_error(form: str, **overrides: Any) -> tuple[str, str, str | None]:
    found = broken(form, **overrides)
    assert len(found) == 1, found
    return found[0]


def accepted(form: str, **overrides: Any) -> dict[str, Any]:
    record = make_record(form, "H0001", "r-1", EVENT, **overrides)
    result = check(form, record)
    assert result.errors == {}, result.errors
    assert len(result.valid) == 1
    return result.valid[0].record


def with_legacy_id(birth: date, seq: int) -> str:
    """The 15-digit legacy form of an 18-digit number (two-digit year, no check character)."""
    full = make_resident_id("320102", birth, seq)
    return full[:6] + full[8:17]
