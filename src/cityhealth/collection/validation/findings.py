"""What every check of a batch shares: the sink of its errors and parsed values, and how an error shows a value."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import orjson

from cityhealth.collection.rules import RecordError, make_error
from cityhealth.collection.standard import FieldSpec
from cityhealth.personal_numbers import scrub, scrub_json
from cityhealth.registry.identifiers import mask_phone, mask_resident_id

MISSING = (None, "")
_VALUE_SHOWN = 64


class Sink:
    """Collects errors by record index, and the batch's parsed dates and times (each parsed once)."""

    def __init__(self) -> None:
        self.errors: dict[int, list[RecordError]] = {}
        self.moments: dict[str, datetime | None] = {}
        self.days: dict[str, date | None] = {}

    def add(self, index: int, error: RecordError) -> None:
        self.errors.setdefault(index, []).append(error)


def shown(spec: FieldSpec | None, value: Any) -> str:
    """The value as an error may show it: personal data masked, long values cut."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = orjson.dumps(value).decode()
        except TypeError:
            text = repr(value)
    if spec is not None and spec.sensitive:
        if spec.name == "id_number":
            return mask_resident_id(text)
        if spec.name == "phone":
            return mask_phone(text)
        return "*" * min(len(text), 8)
    # Masked before the cut, which could otherwise leave most of a number that no longer reads as one.
    text = scrub(text)
    return text if len(text) <= _VALUE_SHOWN else text[: _VALUE_SHOWN - 1] + "…"


def field_error(rule: str, spec: FieldSpec, value: Any = None, path: str | None = None, **params: Any) -> RecordError:
    return make_error(
        rule,
        path or spec.name,
        None if value is None else shown(spec, value),
        label=spec.label_en,
        label_zh=spec.label_zh,
        **params,
    )


def masked_row(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A rejected row as it may be shown back: ID and phone numbers masked wherever they appear.

    The named fields are masked whatever their shape (a malformed number is still personal data); every
    other value, nested ones and keys included, is scrubbed of whatever reads as an ID or mobile number.
    """
    if record is None:
        return None
    row: dict[str, Any] = scrub_json(record)
    for name, value in record.items():
        if isinstance(value, str) and name == "id_number":
            row[name] = mask_resident_id(value)
        elif isinstance(value, str) and name == "phone":
            row[name] = mask_phone(value)
        elif name in ("id_number", "phone"):
            row[name] = shown(None, "***")
    return row
