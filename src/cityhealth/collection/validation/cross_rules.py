"""The cross-field rules a form names (ID number against sex and birth date, time order, amounts), per record."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from cityhealth.collection.rules import make_error
from cityhealth.collection.validation.dates import cached_moment, parse_date
from cityhealth.collection.validation.findings import MISSING, Sink, field_error
from cityhealth.registry.identifiers import (
    IdentifierError,
    cross_check_resident_id,
    mask_phone,
    mask_resident_id,
    parse_resident_id,
    validate_phone,
)

if TYPE_CHECKING:
    from cityhealth.collection.validation.validator import FormValidator

CrossRule = Callable[["FormValidator", dict[str, Any], list[dict[str, Any]], Sink, date], None]


def _failed(sink: Sink, index: int, *names: str) -> bool:
    """Whether one of these fields already failed its own checks (no second error on top)."""
    return any(error.field in names for error in sink.errors.get(index, ()))


def _id_number_rule(
    validator: FormValidator, rule: dict[str, Any], records: list[dict[str, Any]], sink: Sink, today: date
) -> None:
    id_field, type_field = rule["id_field"], rule.get("id_type_field")
    sex_field, birth_field = rule["sex_field"], rule["birth_field"]
    for i, record in enumerate(records):
        number = record.get(id_field)
        if not isinstance(number, str) or not number or _failed(sink, i, id_field):
            continue
        if type_field is not None and record.get(type_field) != "01":  # only 居民身份证 has a checkable shape
            continue
        masked = mask_resident_id(number)
        try:
            rid = parse_resident_id(number, today=today)
        except IdentifierError as exc:
            sink.add(i, make_error(exc.rule, id_field, masked))
            continue
        sex = record.get(sex_field)
        birth = record.get(birth_field)
        birth_date = parse_date(birth) if isinstance(birth, str) and not _failed(sink, i, birth_field) else None
        try:
            cross_check_resident_id(
                rid,
                sex=int(sex) if sex in ("0", "1", "2", "9") and not _failed(sink, i, sex_field) else None,
                birth_date=birth_date,
            )
        except IdentifierError as exc:
            other = sex_field if exc.rule == "id_number.sex_mismatch" else birth_field
            sink.add(i, make_error(exc.rule, id_field, masked, other=other))


def _phone_rule(
    validator: FormValidator, rule: dict[str, Any], records: list[dict[str, Any]], sink: Sink, today: date
) -> None:
    name = rule["field"]
    for i, record in enumerate(records):
        phone = record.get(name)
        if isinstance(phone, str) and phone and not _failed(sink, i, name):
            try:
                validate_phone(phone)
            except IdentifierError:
                sink.add(i, make_error("phone.format", name, mask_phone(phone)))


def _not_after_event_rule(
    validator: FormValidator, rule: dict[str, Any], records: list[dict[str, Any]], sink: Sink, today: date
) -> None:
    name = rule["field"]
    spec = validator.form.field(name)
    for i, record in enumerate(records):
        value = record.get(name)
        if isinstance(value, str) and not _failed(sink, i, name):
            day = parse_date(value)
            if day is not None and day > today:
                sink.add(i, field_error("time.future", spec, value))


def _not_before_rule(
    validator: FormValidator, rule: dict[str, Any], records: list[dict[str, Any]], sink: Sink, today: date
) -> None:
    later, earlier = validator.form.field(rule["field"]), validator.form.field(rule["other"])
    for i, record in enumerate(records):
        a, b = record.get(later.name), record.get(earlier.name)
        if a in MISSING or b in MISSING or _failed(sink, i, later.name, earlier.name):
            continue
        first, second = cached_moment(sink, earlier, b), cached_moment(sink, later, a)
        if first is not None and second is not None and second < first:
            sink.add(i, field_error("time.order", later, a, other=earlier.name))


def _not_greater_rule(
    validator: FormValidator, rule: dict[str, Any], records: list[dict[str, Any]], sink: Sink, today: date
) -> None:
    part, whole = validator.form.field(rule["field"]), validator.form.field(rule["other"])
    for i, record in enumerate(records):
        a, b = record.get(part.name), record.get(whole.name)
        if (
            isinstance(a, int | float)
            and isinstance(b, int | float)
            and not _failed(sink, i, part.name, whole.name)
            and a > b
        ):
            sink.add(i, field_error("amount.exceeds", part, a, other=whole.name))


def _one_of_rule(
    validator: FormValidator, rule: dict[str, Any], records: list[dict[str, Any]], sink: Sink, today: date
) -> None:
    names = rule["fields"]
    for i, record in enumerate(records):
        if all(record.get(name) in MISSING for name in names):
            sink.add(i, make_error("required.one_of", names[0], fields=" / ".join(names)))


def _classification_rule(
    validator: FormValidator, rule: dict[str, Any], records: list[dict[str, Any]], sink: Sink, today: date
) -> None:
    """Not a rejection: the platform computes the classification itself (public_health.py) and flags it."""


CROSS_RULES: dict[str, CrossRule] = {
    "id_number": _id_number_rule,
    "phone": _phone_rule,
    "not_after_event": _not_after_event_rule,
    "not_before": _not_before_rule,
    "not_greater": _not_greater_rule,
    "one_of": _one_of_rule,
    "classification": _classification_rule,
}
