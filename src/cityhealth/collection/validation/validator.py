"""The form validator: a batch's fields checked column by column, then the form's cross-field rules, per slice."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, repeat
from operator import itemgetter, setitem
from typing import Any, cast

import orjson

from cityhealth.clock import business_date
from cityhealth.collection.rules import RecordError, make_error
from cityhealth.collection.standard import CodeTable, FieldSpec, FormSpec, Standard
from cityhealth.collection.validation.columns import (
    NONE_TYPE,
    boolean_check,
    code_check,
    number_check,
    string_check,
    temporal_check,
)
from cityhealth.collection.validation.cross_rules import CROSS_RULES
from cityhealth.collection.validation.dates import cached_moment
from cityhealth.collection.validation.findings import Sink, field_error, shown

# Column passes run over slices of this many records: a slice's dicts stay in the CPU cache across the
# passes of all its fields, where a 20,000-record column pass would fetch every record from memory again.
SLICE_RECORDS = 1024
_STR: frozenset[type] = frozenset({str})
_LIST: frozenset[type] = frozenset({list})
_DICT: frozenset[type] = frozenset({dict})


@dataclass(slots=True)
class ValidRecord:
    index: int  # position of the record in the validated batch
    record: dict[str, Any]  # normalised: codes as strings, numbers as numbers, booleans as booleans
    action: int
    event_time: datetime  # UTC


@dataclass(slots=True)
class CheckedColumns:
    """A checked batch as columns: the valid records' indexes, actions and UTC event times; errors by index."""

    indexes: list[int] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    events: list[datetime] = field(default_factory=list)
    errors: dict[int, list[RecordError]] = field(default_factory=dict)


@dataclass
class ValidationResult:
    valid: list[ValidRecord] = field(default_factory=list)
    errors: dict[int, list[RecordError]] = field(default_factory=dict)


def _same_fields(records: list[dict[str, Any]]) -> list[tuple[Any, ...]] | None:
    """Each record's values in the first record's field order, if every record has exactly its fields.

    One C call per record (`itemgetter` of the first record's fields): a record missing one of them raises
    KeyError, and one with a field more has more fields than the first.
    """
    if not records:
        return None
    first = tuple(records[0])
    if len(first) < 2 or max(map(len, records)) != len(first):
        return None  # (one field: itemgetter would give values, not tuples)
    try:
        return list(map(itemgetter(*first), records))
    except KeyError:
        return None


def _uniform_items(
    column: list[Any], rows: list[int], min_items: int | None
) -> list[tuple[list[dict[str, Any]], list[int]]] | None:
    """A list field's items by place, when every value is a list of the same length (at least `min_items`,
    and at least one) holding only objects; None otherwise (the pass per record says what is wrong)."""
    if not column or set(map(type, column)) != _LIST:
        return None
    length = len(column[0])
    if not length or length < (min_items or 0) or max(map(len, column)) != min(map(len, column)):
        return None
    if set(map(type, chain.from_iterable(column))) != _DICT:
        return None
    return [(list(map(itemgetter(position), column)), list(rows)) for position in range(length)]


class _FieldsValidator:
    """Column checks for a list of fields (a form's, or a list field's items)."""

    def __init__(
        self, fields: Sequence[FieldSpec], tables: Mapping[str, CodeTable], loaded: Mapping[str, Mapping[str, str]]
    ) -> None:
        self.fields = list(fields)
        self.known = frozenset(spec.name for spec in fields)
        self.by_name = {spec.name: spec for spec in fields}
        self.name_fields = {spec.name_field for spec in fields if spec.name_field}
        self.checks: list[tuple[FieldSpec, Any]] = []
        for spec in fields:
            if spec.type == "code":
                table_id = spec.table or ""
                codes: Mapping[str, str] | None
                static = tables.get(table_id)
                codes = static.codes if static is not None else loaded.get(table_id)
                name_spec = self.by_name.get(spec.name_field) if spec.name_field else None
                self.checks.append((spec, code_check(spec, name_spec, codes, table_id)))
            elif spec.type == "string":
                self.checks.append((spec, string_check(spec)))
            elif spec.type in ("integer", "decimal"):
                self.checks.append((spec, number_check(spec)))
            elif spec.type == "boolean":
                self.checks.append((spec, boolean_check(spec)))
            elif spec.type in ("date", "datetime"):
                self.checks.append((spec, temporal_check(spec)))
            elif spec.type == "list":
                self.checks.append((spec, _FieldsValidator(spec.items, tables, loaded)))
            else:  # pragma: no cover - the packaged standard uses only the types above
                raise ValueError(f"unknown field type {spec.type}")

    def run(self, records: list[dict[str, Any]], rows: list[int], sink: Sink, prefix: str, form: str) -> None:
        columns: dict[str, list[Any]] = {}
        rows_of = _same_fields(records)
        shaped = rows_of is not None
        if rows_of is not None:
            # Every record has the same fields (a machine client's batch): one transposition makes every column
            # at once, and a field no record has is a column of None, as dict.get gives.
            first = tuple(records[0])
            keys = set(first)
            columns = dict(zip(first, map(list, zip(*rows_of, strict=True)), strict=True))
            for name in self.by_name.keys() - keys:
                columns[name] = [None] * len(records)
        else:
            keys = set().union(*records) if records else set()
        unknown = keys - self.known
        if unknown:
            for i, record in enumerate(records):
                for name in sorted(unknown & record.keys()):
                    sink.add(rows[i], make_error("field.unknown", prefix + name, form=form))
        for spec, check in self.checks:
            column = columns.pop(spec.name, None)
            if column is None:
                column = list(map(dict.get, records, repeat(spec.name)))
            types = set(map(type, column))
            if spec.required and (NONE_TYPE in types or (str in types and "" in column)):
                for i, value in enumerate(column):
                    if value is None or value == "":
                        sink.add(rows[i], field_error("required", spec, path=prefix + spec.name))
            if isinstance(check, _FieldsValidator):
                self._run_list(spec, check, column, records, rows, sink, prefix, form)
                continue
            if spec.type == "code":
                names = None
                if spec.name_field:
                    # The name column is checked as a field of its own next: build it once.
                    names = columns.get(spec.name_field)
                    if names is None:
                        names = columns[spec.name_field] = list(map(dict.get, records, repeat(spec.name_field)))
                converted = check(column, types, names, rows, sink, prefix)
            else:
                converted = check(column, types, rows, sink, prefix)
            if converted is not None:
                if shaped and spec.name in keys and None not in converted:
                    # Every record has the field, every value converted: written back in one C-level pass.
                    deque(map(setitem, records, repeat(spec.name), converted), maxlen=0)
                    continue
                for record, value in zip(records, converted, strict=True):
                    if spec.name in record and value is not None:
                        record[spec.name] = value

    def _run_list(
        self,
        spec: FieldSpec,
        items_validator: _FieldsValidator,
        column: list[Any],
        records: list[dict[str, Any]],
        rows: list[int],
        sink: Sink,
        prefix: str,
        form: str,
    ) -> None:
        # Items of different records share one column pass per place in the list (items[0], items[1], …),
        # so that item errors name their place: items[2].amount.
        by_position = _uniform_items(column, rows, spec.min_items)
        if by_position is not None:  # every record holds a list of as many objects: no pass per record
            for position, (items, item_rows) in enumerate(by_position):
                items_validator.run(items, item_rows, sink, f"{prefix}{spec.name}[{position}].", form)
            return
        by_position = []
        for i, value in enumerate(column):
            if value is None or value == "":
                continue
            if isinstance(value, str):  # a CSV cell carries the list as JSON text
                try:
                    value = orjson.loads(value)
                except orjson.JSONDecodeError:
                    value = None
                else:
                    records[i][spec.name] = value
            if not isinstance(value, list) or not all(map(isinstance, value, repeat(dict))):
                sink.add(rows[i], field_error("type.list", spec, path=prefix + spec.name))
                continue
            if spec.min_items and len(value) < spec.min_items:
                sink.add(
                    rows[i], field_error("list.min_items", spec, path=prefix + spec.name, min_items=spec.min_items)
                )
            while len(by_position) < len(value):
                by_position.append(([], []))
            row = rows[i]
            for (items, item_rows), item in zip(by_position, value, strict=False):
                items.append(item)
                item_rows.append(row)
        for position, (items, item_rows) in enumerate(by_position):
            items_validator.run(items, item_rows, sink, f"{prefix}{spec.name}[{position}].", form)


class FormValidator:
    """Validates batches of one form. Build once per form and code-table generation; reuse per batch."""

    def __init__(self, form: FormSpec, standard: Standard, loaded: Mapping[str, Mapping[str, str]]) -> None:
        self.form = form
        self.fields = _FieldsValidator(form.fields, standard.tables, loaded)
        self.event_spec = form.field(form.event_field)

    def validate(self, records: list[dict[str, Any]], *, now: datetime) -> ValidationResult:
        """Check every record; `records` are normalised in place. Never raises on bad input."""
        result = ValidationResult()
        checked = self.check(records, now=now)
        result.errors = checked.errors
        result.valid = [
            ValidRecord(i, records[i], action, moment)
            for i, action, moment in zip(checked.indexes, checked.actions, checked.events, strict=True)
        ]
        return result

    def check(self, records: list[dict[str, Any]], *, now: datetime) -> CheckedColumns:
        """`validate` as columns: the valid records' indexes, actions and event times (no object per record)."""
        out = CheckedColumns()
        for start in range(0, len(records), SLICE_RECORDS):
            self._validate_slice(records[start : start + SLICE_RECORDS], start, now, out)
        return out

    def _validate_slice(self, records: list[dict[str, Any]], offset: int, now: datetime, out: CheckedColumns) -> None:
        sink = Sink()
        rows = list(range(len(records)))
        self.fields.run(records, rows, sink, "", self.form.code)
        today = business_date(now)
        event_spec = self.event_spec
        event_name = event_spec.name
        column = list(map(dict.get, records, repeat(event_name)))
        events: list[datetime | None] = []
        if event_spec.type == "datetime" and set(map(type, column)) == _STR:
            # The column's own check parsed every text value into the sink: one lookup per value.
            parsed: Callable[[Any], datetime | None] = sink.moments.get
            events = list(map(parsed, column))
        if len(events) != len(column) or None in events:
            events = [cached_moment(sink, event_spec, value) for value in column]
        if None in events or max(cast("list[datetime]", events)) > now:
            for i, moment in enumerate(events):
                if moment is not None and moment > now:
                    sink.add(i, make_error("event_time.future", event_name, shown(event_spec, column[i])))
        for rule in self.form.rules:
            CROSS_RULES[rule["rule"]](self, rule, records, sink, today)
        errors = sink.errors
        if errors or None in events:
            valid = [i for i in rows if i not in errors]
            for i in valid:
                if events[i] is None:  # pragma: no cover - a present, well-formed event field always parses
                    sink.add(i, make_error("required", event_name))
            valid = [i for i in valid if i not in errors]
        else:
            valid = rows
        out.indexes.extend([offset + i for i in valid] if offset else valid)
        out.actions.extend([int(records[i]["action"]) for i in valid])
        out.events.extend(cast("list[datetime]", [events[i] for i in valid] if errors else events))
        for i, found in errors.items():
            out.errors[offset + i] = found
