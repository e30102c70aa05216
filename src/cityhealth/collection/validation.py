"""校验: checking a batch of one form's records against the standard, column by column.

Each field's checks run over the whole column at once: type and length checks are set and map operations
that stay in C for a clean column, code-table and code↔name checks look at the distinct values (a column of
50,000 sex codes has four), and only a column that fails falls back to a per-value pass to say which record
broke which rule. Cross-field rules (ID number against sex and birth date, time order, amounts) then run per
record. Nothing here touches the database: code tables loaded by the operator arrive as `loaded`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import compress, repeat
from math import isfinite
from operator import is_not, ne
from typing import Any

import orjson

from cityhealth.clock import BUSINESS_TZ, business_date
from cityhealth.collection.rules import RecordError, make_error
from cityhealth.collection.standard import CodeTable, FieldSpec, FormSpec, Standard
from cityhealth.registry.identifiers import (
    IdentifierError,
    cross_check_resident_id,
    mask_phone,
    mask_resident_id,
    parse_resident_id,
    validate_phone,
)

_ICD10 = re.compile(r"[A-Z][0-9]{2}(\.[0-9A-Za-z]{1,8})?")
_ICD9CM3 = re.compile(r"[0-9]{2}(\.[0-9x]{1,8})?")
_SHAPES = {"ICD-10": (_ICD10, "icd10.shape"), "ICD-9-CM-3": (_ICD9CM3, "icd9cm3.shape")}
_TRUE = frozenset({True, "1", "true", "True", "TRUE", "Y", "y"})
_FALSE = frozenset({False, "0", "false", "False", "FALSE", "N", "n"})
_MISSING = (None, "")
_VALUE_SHOWN = 64
# Asia/Shanghai has kept UTC+8 without daylight saving since 1992: later wall times convert by subtraction.
_FIXED_OFFSET_FROM = 1992
_FIXED_OFFSET_YEAR = str(_FIXED_OFFSET_FROM)
_STR: frozenset[type] = frozenset({str})
_NONE = type(None)
_SHANGHAI_OFFSET = timedelta(hours=8)
# Column passes run over slices of this many records: a slice's dicts stay in the CPU cache across the
# passes of all its fields, where a 20,000-record column pass would fetch every record from memory again.
SLICE_RECORDS = 1024
_UNPARSED = object()


@dataclass(slots=True)
class ValidRecord:
    index: int  # position of the record in the validated batch
    record: dict[str, Any]  # normalised: codes as strings, numbers as numbers, booleans as booleans
    action: int
    event_time: datetime  # UTC


@dataclass
class ValidationResult:
    valid: list[ValidRecord] = field(default_factory=list)
    errors: dict[int, list[RecordError]] = field(default_factory=dict)


class _Sink:
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
    return text if len(text) <= _VALUE_SHOWN else text[: _VALUE_SHOWN - 1] + "…"


def _error(rule: str, spec: FieldSpec, value: Any = None, path: str | None = None, **params: Any) -> RecordError:
    return make_error(
        rule,
        path or spec.name,
        None if value is None else shown(spec, value),
        label=spec.label_en,
        label_zh=spec.label_zh,
        **params,
    )


def parse_date(value: str) -> date | None:
    """yyyyMMdd or ISO 8601 YYYY-MM-DD; None if neither or not a calendar date."""
    try:
        if len(value) == 8 and value.isascii() and value.isdigit():
            return date(int(value[:4]), int(value[4:6]), int(value[6:]))
        if len(value) == 10 and value[4] == "-" and value[7] == "-":
            return date.fromisoformat(value)
    except ValueError:
        return None
    return None


def parse_datetime(value: str) -> datetime | None:
    """yyyyMMddHHmmss (Asia/Shanghai wall time) or ISO 8601 with an offset; UTC, or None."""
    try:
        if len(value) == 14 and value.isascii() and value.isdigit():
            if value >= _FIXED_OFFSET_YEAR:
                # The C ISO parser checks the calendar and the clock; read as UTC, then shift by +08:00.
                return datetime.fromisoformat(value[:8] + "T" + value[8:] + "+00:00") - _SHANGHAI_OFFSET
            return datetime(
                int(value[:4]),
                int(value[4:6]),
                int(value[6:8]),
                int(value[8:10]),
                int(value[10:12]),
                int(value[12:]),
                tzinfo=BUSINESS_TZ,
            ).astimezone(UTC)
        if 19 <= len(value) <= 35 and value[4] == "-" and value[10] in "T ":
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None or moment.utcoffset() is None:
                return None
            return moment.astimezone(UTC)
    except ValueError:
        return None
    return None


def event_moment(spec: FieldSpec, value: Any) -> datetime | None:
    """The UTC instant of an event field: a date-time, or 00:00 Asia/Shanghai of a date."""
    if not isinstance(value, str):
        return None
    if spec.type == "datetime":
        return parse_datetime(value)
    day = parse_date(value)
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=BUSINESS_TZ).astimezone(UTC)


def _cached_moment(sink: _Sink, spec: FieldSpec, value: Any) -> datetime | None:
    """event_moment through the batch's cache: a column's values were parsed once by its own check."""
    if not isinstance(value, str):
        return None
    if spec.type == "datetime":
        moments = sink.moments
        if value in moments:
            return moments[value]
        moment = moments[value] = parse_datetime(value)
        return moment
    days = sink.days
    day = days[value] if value in days else days.setdefault(value, parse_date(value))
    if day is None:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=BUSINESS_TZ).astimezone(UTC)


def business_month(moment: datetime) -> int:
    """yyyymm of the Asia/Shanghai day of a UTC instant."""
    if moment.year >= _FIXED_OFFSET_FROM:
        wall = moment + _SHANGHAI_OFFSET
        return wall.year * 100 + wall.month
    day = business_date(moment)
    return day.year * 100 + day.month


# --- column checks ------------------------------------------------------------------------------------

# A check gets the column, the set of its value types (computed once per column), the batch rows, the sink
# and the field path prefix; it returns the column converted (numbers, booleans, codes) or None if unchanged.
ColumnCheck = Callable[[list[Any], set[type], list[int], _Sink, str], list[Any] | None]


def _present(column: list[Any]) -> list[int]:
    """Indexes of values that are there (not None, not empty)."""
    if None not in column and "" not in column:
        return list(range(len(column)))
    there = map(ne, compress(column, map(is_not, column, repeat(None))), repeat(""))
    return list(compress(compress(range(len(column)), map(is_not, column, repeat(None))), there))


def _only_types(column: list[Any], allowed: set[type]) -> bool:
    return set(map(type, column)) <= allowed


def _string_check(spec: FieldSpec) -> ColumnCheck:
    pattern = re.compile(spec.pattern) if spec.pattern else None
    limit = spec.length

    def check(column: list[Any], types: set[type], rows: list[int], sink: _Sink, prefix: str) -> list[Any] | None:
        if (
            types == _STR
            and (limit is None or max(map(len, column)) <= limit)
            and (pattern is None or ("" not in column and all(map(pattern.fullmatch, column))))
        ):
            return None  # the usual column: text within its length, no per-value pass
        present = _present(column)
        values = column if len(present) == len(column) else [column[i] for i in present]
        clean = _only_types(values, {str}) and (limit is None or not values or max(map(len, values)) <= limit)
        if clean and pattern is None:
            return None
        for i in present:
            value = column[i]
            if not isinstance(value, str):
                sink.add(rows[i], _error("type.string", spec, value, prefix + spec.name))
            elif limit is not None and len(value) > limit:
                sink.add(rows[i], _error("length.max", spec, value, prefix + spec.name, length=limit))
            elif pattern is not None and not pattern.fullmatch(value):
                sink.add(rows[i], _error("pattern", spec, value, prefix + spec.name))
        return None

    return check


def _number(value: Any, integer: bool) -> int | float | None:
    if type(value) is int or (not integer and type(value) is float):
        return value  # type: ignore[no-any-return,unused-ignore]
    if isinstance(value, str) and value.strip() == value and 0 < len(value) <= 32:
        try:
            number = int(value) if integer else float(value)
        except ValueError:
            return None
        if isinstance(number, float):
            if number != number or number in (float("inf"), float("-inf")):
                return None
            return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
        return number
    if not integer and type(value) is float:
        return value
    return None


def _number_check(spec: FieldSpec) -> ColumnCheck:
    integer = spec.type == "integer"
    rule = "type.integer" if integer else "type.decimal"
    allowed: set[type] = {int} if integer else {int, float}
    low, high = spec.minimum, spec.maximum

    def check(column: list[Any], types: set[type], rows: list[int], sink: _Sink, prefix: str) -> list[Any] | None:
        if (
            types
            and types <= allowed
            and (integer or all(map(isfinite, column)))
            and (low is None or min(column) >= low)
            and (high is None or max(column) <= high)
        ):
            return None  # every value a number in range
        present = _present(column)
        values = column if len(present) == len(column) else [column[i] for i in present]
        if _only_types(values, allowed) and (integer or all(map(isfinite, values))):
            numbers: list[Any] = values
            converted = None
        else:
            numbers = [_number(v, integer) for v in values]
            converted = list(column)
            for i, number in zip(present, numbers, strict=True):
                converted[i] = number
                if number is None:
                    sink.add(rows[i], _error(rule, spec, column[i], prefix + spec.name))
        checked = [n for n in numbers if n is not None]
        if checked and ((low is not None and min(checked) < low) or (high is not None and max(checked) > high)):
            for i, number in zip(present, numbers, strict=True):
                if number is None:
                    continue
                if low is not None and number < low:
                    sink.add(rows[i], _error("range.min", spec, number, prefix + spec.name, minimum=low))
                elif high is not None and number > high:
                    sink.add(rows[i], _error("range.max", spec, number, prefix + spec.name, maximum=high))
        return converted

    return check


def _boolean_check(spec: FieldSpec) -> ColumnCheck:
    def check(column: list[Any], types: set[type], rows: list[int], sink: _Sink, prefix: str) -> list[Any] | None:
        if types <= {bool, _NONE}:
            return None
        present = _present(column)
        if _only_types([column[i] for i in present], {bool}):
            return None
        converted = list(column)
        for i in present:
            value = column[i]
            hashable = isinstance(value, str | int | bool)
            if hashable and value in _TRUE and not isinstance(value, float):
                converted[i] = True
            elif hashable and value in _FALSE and not isinstance(value, float):
                converted[i] = False
            else:
                sink.add(rows[i], _error("type.boolean", spec, value, prefix + spec.name))
        return converted

    return check


def _temporal_check(spec: FieldSpec) -> ColumnCheck:
    is_datetime = spec.type == "datetime"
    parse: Callable[[str], object] = parse_datetime if is_datetime else parse_date
    rule = "format.datetime" if is_datetime else "format.date"

    def check(column: list[Any], types: set[type], rows: list[int], sink: _Sink, prefix: str) -> list[Any] | None:
        # Parsed values go to the batch's cache: the event time and the time-order rules reuse them.
        seen: dict[str, Any] = sink.moments if is_datetime else sink.days
        if types == _STR and "" not in column:
            for value in column:
                if value not in seen:
                    seen[value] = parse(value)
            if None not in map(seen.__getitem__, column):
                return None
        for i in _present(column):
            value = column[i]
            if isinstance(value, str):
                parsed = seen.get(value, _UNPARSED)
                if parsed is _UNPARSED:
                    parsed = seen[value] = parse(value)
                if parsed is not None:
                    continue
            sink.add(rows[i], _error(rule, spec, value, prefix + spec.name))
        return None

    return check


def _code_check(
    spec: FieldSpec, name_spec: FieldSpec | None, table: Mapping[str, str] | None, table_id: str
) -> Callable[[list[Any], set[type], list[Any] | None, list[int], _Sink, str], list[Any] | None]:
    shape = _SHAPES.get(table_id)
    limit = spec.length

    def check(
        column: list[Any], types: set[type], names: list[Any] | None, rows: list[int], sink: _Sink, prefix: str
    ) -> list[Any] | None:
        if types == _STR and "" not in column:
            distinct = set(column)
            if (
                (limit is None or max(map(len, distinct)) <= limit)
                and (shape is None or all(map(shape[0].fullmatch, distinct)))
                and (table is None or all(map(table.__contains__, distinct)))
            ):
                if names is None or name_spec is None:
                    return None
                if set(map(type, names)) == _STR and "" not in names:
                    if table is None:
                        return None
                    if all(table[code] == name for code, name in set(zip(column, names, strict=True))):
                        return None
            # a value or a name is off: the full pass below says which record broke which rule
        present = _present(column)
        values = column if len(present) == len(column) else [column[i] for i in present]
        converted: list[Any] | None = None
        if not _only_types(values, {str}):
            converted = list(column)
            for i in present:
                value = column[i]
                if type(value) is int and value >= 0:
                    converted[i] = str(value)
                elif not isinstance(value, str):
                    converted[i] = None
                    sink.add(rows[i], _error("type.string", spec, value, prefix + spec.name))
            column = converted
        distinct = {column[i] for i in present} - {None}
        bad: set[str] = set()
        for value in distinct:
            if (
                (limit is not None and len(value) > limit)
                or (shape is not None and not shape[0].fullmatch(value))
                or (table is not None and value not in table)
            ):
                bad.add(value)
        if bad:
            for i in present:
                value = column[i]
                if value not in bad:
                    continue
                if limit is not None and len(value) > limit:
                    sink.add(rows[i], _error("length.max", spec, value, prefix + spec.name, length=limit))
                elif shape is not None and not shape[0].fullmatch(value):
                    sink.add(rows[i], _error(shape[1], spec, value, prefix + spec.name))
                else:
                    sink.add(rows[i], _error("code.not_in_table", spec, value, prefix + spec.name, table=table_id))
        if names is not None and name_spec is not None and (None in names or "" in names):
            # A code travels with its name (domain.md §2): a code without one is incomplete.
            for i in present:
                if column[i] is not None and names[i] in _MISSING and not name_spec.required:
                    sink.add(rows[i], _error("required", name_spec, path=prefix + name_spec.name))
        if names is not None and name_spec is not None and table is not None:
            if not bad and len(present) == len(column) and None not in column and _only_types(names, {str}):
                pairs = set(zip(column, names, strict=True))  # a clean column: no per-value pass
            else:
                pairs = {
                    (column[i], names[i])
                    for i in present
                    if column[i] not in bad and column[i] is not None and isinstance(names[i], str)
                }
            wrong = {pair for pair in pairs if pair[1] and table[pair[0]] != pair[1]}
            if wrong:
                for i in present:
                    pair = (column[i], names[i])
                    if isinstance(pair[1], str) and pair in wrong:
                        sink.add(
                            rows[i],
                            _error(
                                "code.name_mismatch",
                                name_spec,
                                names[i],
                                prefix + name_spec.name,
                                code=pair[0],
                                table=table_id,
                                expected=table[pair[0]],
                            ),
                        )
        return converted

    return check


# --- the validator ---------------------------------------------------------------------------------------


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
                self.checks.append((spec, _code_check(spec, name_spec, codes, table_id)))
            elif spec.type == "string":
                self.checks.append((spec, _string_check(spec)))
            elif spec.type in ("integer", "decimal"):
                self.checks.append((spec, _number_check(spec)))
            elif spec.type == "boolean":
                self.checks.append((spec, _boolean_check(spec)))
            elif spec.type in ("date", "datetime"):
                self.checks.append((spec, _temporal_check(spec)))
            elif spec.type == "list":
                self.checks.append((spec, _FieldsValidator(spec.items, tables, loaded)))
            else:  # pragma: no cover - the packaged standard uses only the types above
                raise ValueError(f"unknown field type {spec.type}")

    def run(self, records: list[dict[str, Any]], rows: list[int], sink: _Sink, prefix: str, form: str) -> None:
        keys: set[str] = set().union(*records) if records else set()
        unknown = keys - self.known
        if unknown:
            for i, record in enumerate(records):
                for name in sorted(unknown & record.keys()):
                    sink.add(rows[i], make_error("field.unknown", prefix + name, form=form))
        columns: dict[str, list[Any]] = {}
        for spec, check in self.checks:
            column = columns.pop(spec.name, None)
            if column is None:
                column = list(map(dict.get, records, repeat(spec.name)))
            types = set(map(type, column))
            if spec.required and (_NONE in types or (str in types and "" in column)):
                for i, value in enumerate(column):
                    if value is None or value == "":
                        sink.add(rows[i], _error("required", spec, path=prefix + spec.name))
            if isinstance(check, _FieldsValidator):
                self._run_list(spec, check, column, records, rows, sink, prefix, form)
                continue
            if spec.type == "code":
                names = None
                if spec.name_field:
                    # The name column is checked as a field of its own next: build it once.
                    names = columns[spec.name_field] = list(map(dict.get, records, repeat(spec.name_field)))
                converted = check(column, types, names, rows, sink, prefix)
            else:
                converted = check(column, types, rows, sink, prefix)
            if converted is not None:
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
        sink: _Sink,
        prefix: str,
        form: str,
    ) -> None:
        # Items of different records share one column pass per place in the list (items[0], items[1], …),
        # so that item errors name their place: items[2].amount.
        by_position: list[tuple[list[dict[str, Any]], list[int]]] = []
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
                sink.add(rows[i], _error("type.list", spec, path=prefix + spec.name))
                continue
            if spec.min_items and len(value) < spec.min_items:
                sink.add(rows[i], _error("list.min_items", spec, path=prefix + spec.name, min_items=spec.min_items))
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
        for start in range(0, len(records), SLICE_RECORDS):
            self._validate_slice(records[start : start + SLICE_RECORDS], start, now, result)
        return result

    def _validate_slice(self, records: list[dict[str, Any]], offset: int, now: datetime, out: ValidationResult) -> None:
        sink = _Sink()
        rows = list(range(len(records)))
        self.fields.run(records, rows, sink, "", self.form.code)
        today = business_date(now)
        event_spec = self.event_spec
        event_name = event_spec.name
        events = [_cached_moment(sink, event_spec, value) for value in map(dict.get, records, repeat(event_name))]
        for i, moment in enumerate(events):
            if moment is not None and moment > now:
                sink.add(i, make_error("event_time.future", event_name, shown(event_spec, records[i][event_name])))
        for rule in self.form.rules:
            _CROSS_RULES[rule["rule"]](self, rule, records, sink, today)
        errors = sink.errors
        valid = out.valid
        for i, record in enumerate(records):
            if i in errors:
                continue
            moment = events[i]
            if moment is None:  # pragma: no cover - a present, well-formed event field always parses
                sink.add(i, make_error("required", event_name))
                continue
            valid.append(ValidRecord(offset + i, record, int(record["action"]), moment))
        for i, found in errors.items():
            out.errors[offset + i] = found


# --- cross-field rules ------------------------------------------------------------------------------------

CrossRule = Callable[[FormValidator, dict[str, Any], list[dict[str, Any]], _Sink, date], None]


def _failed(sink: _Sink, index: int, *names: str) -> bool:
    """Whether one of these fields already failed its own checks (no second error on top)."""
    return any(error.field in names for error in sink.errors.get(index, ()))


def _id_number_rule(
    validator: FormValidator, rule: dict[str, Any], records: list[dict[str, Any]], sink: _Sink, today: date
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
    validator: FormValidator, rule: dict[str, Any], records: list[dict[str, Any]], sink: _Sink, today: date
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
    validator: FormValidator, rule: dict[str, Any], records: list[dict[str, Any]], sink: _Sink, today: date
) -> None:
    name = rule["field"]
    spec = validator.form.field(name)
    for i, record in enumerate(records):
        value = record.get(name)
        if isinstance(value, str) and not _failed(sink, i, name):
            day = parse_date(value)
            if day is not None and day > today:
                sink.add(i, _error("time.future", spec, value))




def _not_before_rule(
    validator: FormValidator, rule: dict[str, Any], records: list[dict[str, Any]], sink: _Sink, today: date
) -> None:
    later, earlier = validator.form.field(rule["field"]), validator.form.field(rule["other"])
    for i, record in enumerate(records):
        a, b = record.get(later.name), record.get(earlier.name)
        if a in _MISSING or b in _MISSING or _failed(sink, i, later.name, earlier.name):
            continue
        first, second = _cached_moment(sink, earlier, b), _cached_moment(sink, later, a)
        if first is not None and second is not None and second < first:
            sink.add(i, _error("time.order", later, a, other=earlier.name))


def _not_greater_rule(
    validator: FormValidator, rule: dict[str, Any], records: list[dict[str, Any]], sink: _Sink, today: date
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
            sink.add(i, _error("amount.exceeds", part, a, other=whole.name))


def _one_of_rule(
    validator: FormValidator, rule: dict[str, Any], records: list[dict[str, Any]], sink: _Sink, today: date
) -> None:
    names = rule["fields"]
    for i, record in enumerate(records):
        if all(record.get(name) in _MISSING for name in names):
            sink.add(i, make_error("required.one_of", names[0], fields=" / ".join(names)))


def _classification_rule(
    validator: FormValidator, rule: dict[str, Any], records: list[dict[str, Any]], sink: _Sink, today: date
) -> None:
    """Not a rejection: the platform computes the classification itself (public_health.py) and flags it."""


_CROSS_RULES: dict[str, CrossRule] = {
    "id_number": _id_number_rule,
    "phone": _phone_rule,
    "not_after_event": _not_after_event_rule,
    "not_before": _not_before_rule,
    "not_greater": _not_greater_rule,
    "one_of": _one_of_rule,
    "classification": _classification_rule,
}
