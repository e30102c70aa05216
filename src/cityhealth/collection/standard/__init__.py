"""The data standard as data: forms, fields and code tables, loaded from the JSON files beside this module."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent

OUTPATIENT = "outpatient"
INPATIENT = "inpatient"
GROUPS = (OUTPATIENT, INPATIENT)
# Code tables whose members the operator loads from a government release (`collection load-codes`).
LOADABLE_TABLES = ("ICD-10", "ICD-9-CM-3")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str  # string, integer, decimal, code, date, datetime, boolean, list
    label_zh: str
    label_en: str
    required: bool
    de: str | None = None  # WS 363 data element id
    length: int | None = None
    table: str | None = None
    name_field: str | None = None  # the companion field carrying the code's name
    format: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    sensitive: bool = False  # personal data: encrypted at rest, masked in errors
    items: tuple[FieldSpec, ...] = ()
    min_items: int | None = None


@dataclass(frozen=True)
class FormSpec:
    code: str
    number: int | None  # 1-11 for the real-time forms
    name_zh: str
    name_en: str
    group: str | None  # outpatient (forms 2-6), inpatient (7-11) or None
    kind: str  # realtime, public_health, workload
    event_field: str
    fields: tuple[FieldSpec, ...]
    rules: tuple[dict[str, Any], ...]

    @property
    def counts_as_upload(self) -> bool:
        """Workload reports are a separate feed (domain.md §3): not uploaded records."""
        return self.kind != "workload"

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)


@dataclass(frozen=True)
class CodeTable:
    id: str
    name_zh: str
    name_en: str
    source: str
    codes: dict[str, str]  # code -> name


@dataclass(frozen=True)
class Standard:
    version: str
    document: dict[str, Any]
    common_fields: tuple[FieldSpec, ...]
    forms: dict[str, FormSpec]
    tables: dict[str, CodeTable]
    tables_document: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def realtime_forms(self) -> list[FormSpec]:
        return [form for form in self.forms.values() if form.number is not None]


def _field(raw: dict[str, Any]) -> FieldSpec:
    return FieldSpec(
        name=raw["name"],
        type=raw["type"],
        label_zh=raw["label_zh"],
        label_en=raw["label_en"],
        required=bool(raw.get("required", False)),
        de=raw.get("de"),
        length=raw.get("length"),
        table=raw.get("table"),
        name_field=raw.get("name_field"),
        format=raw.get("format"),
        minimum=raw.get("minimum"),
        maximum=raw.get("maximum"),
        pattern=raw.get("pattern"),
        sensitive=bool(raw.get("sensitive", False)),
        items=tuple(_field(item) for item in raw.get("items", ())),
        min_items=raw.get("min_items"),
    )


@cache
def load_standard() -> Standard:
    """The packaged standard (read once per process)."""
    document = json.loads((_HERE / "standard.json").read_text(encoding="utf-8"))
    tables_document = json.loads((_HERE / "code_tables.json").read_text(encoding="utf-8"))
    common = tuple(_field(raw) for raw in document["common_fields"])
    forms = {
        raw["code"]: FormSpec(
            code=raw["code"],
            number=raw["number"],
            name_zh=raw["name_zh"],
            name_en=raw["name_en"],
            group=raw["group"],
            kind=raw["kind"],
            event_field=raw["event_field"],
            fields=common + tuple(_field(item) for item in raw["fields"]),
            rules=tuple(raw["rules"]),
        )
        for raw in document["forms"]
    }
    tables = {
        raw["id"]: CodeTable(
            id=raw["id"],
            name_zh=raw["name_zh"],
            name_en=raw["name_en"],
            source=raw["source"],
            codes={entry["code"]: entry["name"] for entry in raw["codes"]},
        )
        for raw in tables_document["tables"]
    }
    return Standard(
        version=document["version"],
        document=document,
        common_fields=common,
        forms=forms,
        tables=tables,
        tables_document=tables_document,
    )


def form_for_number(number: int) -> FormSpec:
    for form in load_standard().forms.values():
        if form.number == number:
            return form
    raise KeyError(number)
