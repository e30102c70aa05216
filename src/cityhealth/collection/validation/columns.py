"""The column checks of each field type (text, code with its name, number, boolean, date and time).

A check runs over a whole column at once; only a column that fails falls back to a per-value pass that
says which record broke which rule. Code columns are checked on their distinct values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from itertools import compress, repeat
from math import isfinite
from operator import is_not, ne
from typing import Any

from cityhealth.collection.standard import FieldSpec
from cityhealth.collection.validation.dates import parse_date, parse_dates, parse_datetime, parse_datetimes
from cityhealth.collection.validation.findings import MISSING, Sink, field_error

ICD10 = re.compile(r"[A-Z][0-9]{2}(\.[0-9A-Za-z]{1,8})?")
ICD9CM3 = re.compile(r"[0-9]{2}(\.[0-9x]{1,8})?")
_SHAPES = {"ICD-10": (ICD10, "icd10.shape"), "ICD-9-CM-3": (ICD9CM3, "icd9cm3.shape")}
_TRUE = frozenset({True, "1", "true", "True", "TRUE", "Y", "y"})
_FALSE = frozenset({False, "0", "false", "False", "FALSE", "N", "n"})
_STR: frozenset[type] = frozenset({str})
_STR_TYPES: set[type] = {str}
_INT: frozenset[type] = frozenset({int})
NONE_TYPE = type(None)
_UNPARSED = object()

# A check gets the column, the set of its value types (computed once per column), the batch rows, the sink
# and the field path prefix; it returns the column converted (numbers, booleans, codes) or None if unchanged.
ColumnCheck = Callable[[list[Any], set[type], list[int], Sink, str], list[Any] | None]


def _present(column: list[Any]) -> list[int]:
    """Indexes of values that are there (not None, not empty)."""
    if None not in column and "" not in column:
        return list(range(len(column)))
    there = map(ne, compress(column, map(is_not, column, repeat(None))), repeat(""))
    return list(compress(compress(range(len(column)), map(is_not, column, repeat(None))), there))


def _only_types(column: list[Any], allowed: set[type]) -> bool:
    return set(map(type, column)) <= allowed


def string_check(spec: FieldSpec) -> ColumnCheck:
    pattern = re.compile(spec.pattern) if spec.pattern else None
    limit = spec.length

    def check(column: list[Any], types: set[type], rows: list[int], sink: Sink, prefix: str) -> list[Any] | None:
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
                sink.add(rows[i], field_error("type.string", spec, value, prefix + spec.name))
            elif limit is not None and len(value) > limit:
                sink.add(rows[i], field_error("length.max", spec, value, prefix + spec.name, length=limit))
            elif pattern is not None and not pattern.fullmatch(value):
                sink.add(rows[i], field_error("pattern", spec, value, prefix + spec.name))
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


def number_check(spec: FieldSpec) -> ColumnCheck:
    integer = spec.type == "integer"
    rule = "type.integer" if integer else "type.decimal"
    allowed: set[type] = {int} if integer else {int, float}
    low, high = spec.minimum, spec.maximum

    def check(column: list[Any], types: set[type], rows: list[int], sink: Sink, prefix: str) -> list[Any] | None:
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
                    sink.add(rows[i], field_error(rule, spec, column[i], prefix + spec.name))
        checked = [n for n in numbers if n is not None]
        if checked and ((low is not None and min(checked) < low) or (high is not None and max(checked) > high)):
            for i, number in zip(present, numbers, strict=True):
                if number is None:
                    continue
                if low is not None and number < low:
                    sink.add(rows[i], field_error("range.min", spec, number, prefix + spec.name, minimum=low))
                elif high is not None and number > high:
                    sink.add(rows[i], field_error("range.max", spec, number, prefix + spec.name, maximum=high))
        return converted

    return check


def boolean_check(spec: FieldSpec) -> ColumnCheck:
    def check(column: list[Any], types: set[type], rows: list[int], sink: Sink, prefix: str) -> list[Any] | None:
        if types <= {bool, NONE_TYPE}:
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
                sink.add(rows[i], field_error("type.boolean", spec, value, prefix + spec.name))
        return converted

    return check


def temporal_check(spec: FieldSpec) -> ColumnCheck:
    is_datetime = spec.type == "datetime"
    parse: Callable[[str], object] = parse_datetime if is_datetime else parse_date
    parse_all: Callable[[list[str]], list[Any]] = parse_datetimes if is_datetime else parse_dates
    rule = "format.datetime" if is_datetime else "format.date"

    def check(column: list[Any], types: set[type], rows: list[int], sink: Sink, prefix: str) -> list[Any] | None:
        # Parsed values go to the batch's cache: the event time and the time-order rules reuse them.
        seen: dict[str, Any] = sink.moments if is_datetime else sink.days
        if types == _STR and "" not in column:
            new = list(set(column).difference(seen))  # each distinct value parsed once per batch
            if new:
                seen.update(zip(new, parse_all(new), strict=True))
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
            sink.add(rows[i], field_error(rule, spec, value, prefix + spec.name))
        return None

    return check


def code_check(
    spec: FieldSpec, name_spec: FieldSpec | None, table: Mapping[str, str] | None, table_id: str
) -> Callable[[list[Any], set[type], list[Any] | None, list[int], Sink, str], list[Any] | None]:
    shape = _SHAPES.get(table_id)
    limit = spec.length

    def check(
        column: list[Any], types: set[type], names: list[Any] | None, rows: list[int], sink: Sink, prefix: str
    ) -> list[Any] | None:
        converted: list[Any] | None = None
        if types == _INT and min(column) >= 0:
            # Codes sent as numbers (an action of 1): the column as text in one pass, then checked as text.
            column = converted = list(map(str, column))
            types = _STR_TYPES
        if types == _STR and "" not in column:
            distinct = set(column)
            if (
                (limit is None or max(map(len, distinct)) <= limit)
                and (shape is None or all(map(shape[0].fullmatch, distinct)))
                and (table is None or all(map(table.__contains__, distinct)))
            ):
                if names is None or name_spec is None:
                    return converted
                if set(map(type, names)) == _STR and "" not in names:
                    if table is None:
                        return converted
                    if all(table[code] == name for code, name in set(zip(column, names, strict=True))):
                        return converted
            # a value or a name is off: the full pass below says which record broke which rule
        present = _present(column)
        values = column if len(present) == len(column) else [column[i] for i in present]
        if not _only_types(values, {str}):
            converted = list(column)
            for i in present:
                value = column[i]
                if type(value) is int and value >= 0:
                    converted[i] = str(value)
                elif not isinstance(value, str):
                    converted[i] = None
                    sink.add(rows[i], field_error("type.string", spec, value, prefix + spec.name))
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
                    sink.add(rows[i], field_error("length.max", spec, value, prefix + spec.name, length=limit))
                elif shape is not None and not shape[0].fullmatch(value):
                    sink.add(rows[i], field_error(shape[1], spec, value, prefix + spec.name))
                else:
                    sink.add(rows[i], field_error("code.not_in_table", spec, value, prefix + spec.name, table=table_id))
        if names is not None and name_spec is not None and (None in names or "" in names):
            # A code travels with its name (domain.md §2): a code without one is incomplete.
            for i in present:
                if column[i] is not None and names[i] in MISSING and not name_spec.required:
                    sink.add(rows[i], field_error("required", name_spec, path=prefix + name_spec.name))
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
                            field_error(
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
