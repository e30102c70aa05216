"""The validator: a property test that it never crashes and never accepts a record that breaks a rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityhealth.clock import BUSINESS_TZ
from cityhealth.collection.standard import FieldSpec, load_standard
from cityhealth.collection.validation.dates import parse_date, parse_dates, parse_datetime, parse_datetimes
from cityhealth.collection.validation.validator import FormValidator
from tests.factories.collection import ALL_FORMS, make_record

NOW = datetime(2022, 6, 15, 1, 30, tzinfo=UTC)
STANDARD = load_standard()
VALIDATORS = {code: FormValidator(form, STANDARD, {}) for code, form in STANDARD.forms.items()}

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**12),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.sampled_from(
        ["", "1", "01", "9", "20220615", "20220615093000", "2022-06-15T09:30:00+08:00", "I10.x00", "男", "X" * 200]
    ),
    st.lists(st.dictionaries(st.text(max_size=8), st.integers(), max_size=3), max_size=2),
)


def _ok(spec: FieldSpec, value: Any) -> bool:
    """An independent, slow statement of the single-field rules of the standard."""
    if value is None or value == "":
        return not spec.required
    if spec.type == "string":
        return isinstance(value, str) and (spec.length is None or len(value) <= spec.length)
    if spec.type == "code":
        code = str(value) if type(value) is int and value >= 0 else value
        if not isinstance(code, str):
            return False
        table = STANDARD.tables.get(spec.table or "")
        return table is None or code in table.codes
    if spec.type in ("integer", "decimal"):
        if isinstance(value, bool):
            return False
        try:
            number = int(value) if spec.type == "integer" else float(value)
        except (TypeError, ValueError):
            return False
        if isinstance(value, float) and spec.type == "integer":
            return False
        if number != number or number in (float("inf"), float("-inf")):
            return False
        return (spec.minimum is None or number >= spec.minimum) and (spec.maximum is None or number <= spec.maximum)
    if spec.type == "boolean":
        return value in (
            True,
            False,
            1,
            0,
            "1",
            "0",
            "true",
            "false",
            "True",
            "False",
            "TRUE",
            "FALSE",
            "Y",
            "N",
            "y",
            "n",
        ) and not isinstance(value, float)
    if spec.type == "date":
        return isinstance(value, str) and parse_date(value) is not None
    if spec.type == "datetime":
        return isinstance(value, str) and parse_datetime(value) is not None
    return isinstance(value, list | str)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    form=st.sampled_from(ALL_FORMS),
    mutations=st.lists(st.tuples(st.integers(0, 40), values), max_size=4),
    extra=st.booleans(),
)
def test_validator_never_crashes_and_never_accepts_a_broken_field(
    form: str, mutations: list[tuple[int, Any]], extra: bool
) -> None:
    spec = STANDARD.forms[form]
    record = make_record(form, "H0001", "r-1", NOW - timedelta(hours=3))
    for position, value in mutations:
        field = spec.fields[position % len(spec.fields)]
        record[field.name] = value
    if extra:
        record["not_a_field"] = 1
    original = dict(record)
    result = VALIDATORS[form].validate([record], now=NOW)
    assert len(result.valid) + len(result.errors) == 1
    if result.valid:
        assert not extra
        for field in spec.fields:
            assert _ok(field, original.get(field.name)), (field.name, original.get(field.name))
        for field in spec.fields:
            if field.name_field and field.table in STANDARD.tables and original.get(field.name) not in (None, ""):
                table = STANDARD.tables[field.table or ""]
                assert table.codes[str(original[field.name])] == original.get(field.name_field)
    else:
        for errors in result.errors.values():
            assert all(error.rule and error.field and error.message and error.message_zh for error in errors)


def test_column_checks_name_every_bad_record_of_a_batch() -> None:
    records = [make_record("outpatient_visit", "H", f"r-{i}", NOW - timedelta(hours=1)) for i in range(100)]
    records[7]["patient_type_code"] = "7"
    records[42]["visit_time"] = "2022-13-01"
    result = VALIDATORS["outpatient_visit"].validate(records, now=NOW)
    assert sorted(result.errors) == [7, 42]
    assert result.errors[7][0].rule == "code.not_in_table"
    assert result.errors[42][0].rule == "format.datetime"
    assert len(result.valid) == 98


@settings(max_examples=300, deadline=None)
@given(moment=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2099, 12, 31)))  # noqa: DTZ001
def test_compact_datetimes_convert_as_the_time_zone_database_says(moment: datetime) -> None:
    # Wall times: the converter shifts by +08:00 from 1992 on, and asks the time zone database before. The text
    # cannot say which of a repeated hour (the end of a summer time, e.g. 1940-10-12 23:00) it means: the
    # converter takes the first, as zoneinfo does with fold=0, so the expectation does too.
    text = moment.strftime("%Y%m%d%H%M%S")
    expected = moment.replace(microsecond=0, fold=0, tzinfo=BUSINESS_TZ).astimezone(UTC)
    assert parse_datetime(text) == expected


def test_compact_datetimes_that_are_not_on_the_calendar_or_clock_are_refused() -> None:
    for text in ("20220230093000", "20221301093000", "20220615240000", "20220615096000", "00000615093000"):
        assert parse_datetime(text) is None, text


compact_texts = st.one_of(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2099, 12, 31)).map(  # noqa: DTZ001
        lambda moment: moment.strftime("%Y%m%d%H%M%S")
    ),
    st.text("0123456789", min_size=14, max_size=14),  # mostly not on the calendar or the clock
    st.sampled_from(
        ["20220615096000", "19911231235959", "20220615093000", "２０２２0615093000", "2022-06-15T09:30:00Z"]
    ),
)


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(compact_texts, max_size=6, unique=True))
def test_a_column_of_datetimes_parses_as_each_value_alone(texts: list[str]) -> None:
    assert parse_datetimes(texts) == [parse_datetime(text) for text in texts]


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(
        st.one_of(
            st.dates().map(lambda day: day.strftime("%Y%m%d")),
            st.text("0123456789", min_size=8, max_size=8),
            st.sampled_from(["20220230", "00000101", "2022-06-15", "２０２２0615", "2022061"]),
        ),
        max_size=6,
        unique=True,
    )
)
def test_a_column_of_dates_parses_as_each_value_alone(texts: list[str]) -> None:
    assert parse_dates(texts) == [parse_date(text) for text in texts]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    form=st.sampled_from(ALL_FORMS),
    broken=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 40), st.sampled_from([None, "", "x", 10**12, []]))),
    future=st.lists(st.integers(0, 7), max_size=2),
)
def test_the_column_answer_holds_what_the_per_record_answer_holds(
    form: str, broken: list[tuple[int, int, Any]], future: list[int]
) -> None:
    spec = STANDARD.forms[form]
    records = [make_record(form, "H0001", f"r-{i}", NOW - timedelta(hours=3)) for i in range(8)]
    for row, position, value in broken:
        records[row][spec.fields[position % len(spec.fields)].name] = value
    for row in future:  # an event after `now` is refused by the check that runs after the column passes
        records[row] = make_record(form, "H0001", f"r-{row}", NOW + timedelta(days=2))
    copies = [dict(record) for record in records]
    result = VALIDATORS[form].validate(records, now=NOW)
    checked = VALIDATORS[form].check(copies, now=NOW)
    assert checked.errors == result.errors
    assert checked.indexes == [valid.index for valid in result.valid]
    assert checked.actions == [valid.action for valid in result.valid]
    assert checked.events == [valid.event_time for valid in result.valid]
    assert all(event <= NOW for event in checked.events)
    assert copies == records  # normalised alike


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    form=st.sampled_from(ALL_FORMS),
    broken=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 40), st.sampled_from([None, "", "x", 7, 10**12]))),
    dropped=st.integers(0, 40),
)
def test_records_with_their_fields_in_one_order_are_judged_as_records_in_any_order(
    form: str, broken: list[tuple[int, int, Any]], dropped: int
) -> None:
    spec = STANDARD.forms[form]
    records = [make_record(form, "H0001", f"r-{i}", NOW - timedelta(hours=3)) for i in range(6)]
    for row, position, value in broken:
        records[row][spec.fields[position % len(spec.fields)].name] = value
    for record in records:  # one field missing from every record (a column of None), one unknown field
        record.pop(spec.fields[dropped % len(spec.fields)].name, None)
        record["not_a_field"] = 1
    names = list(dict.fromkeys(name for record in records for name in record))
    uniform = [{name: record.get(name) for name in names} for record in records]  # one order: one transposition
    shuffled = [dict(reversed(record.items())) if i % 2 else dict(record) for i, record in enumerate(uniform)]
    one_order = VALIDATORS[form].check(uniform, now=NOW)
    any_order = VALIDATORS[form].check(shuffled, now=NOW)
    assert one_order.errors == any_order.errors
    assert (one_order.indexes, one_order.events) == (any_order.indexes, any_order.events)
    assert uniform == shuffled  # normalised alike (dict equality ignores the order)


odd_values = st.sampled_from(
    [None, "", "x", 7, -3, 2.5, True, "1", "20220230093000", [], [{}], [{"x": 1}, 3], "X" * 80]
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    form=st.sampled_from(ALL_FORMS),
    broken=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 40), odd_values), max_size=12),
    items=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 3)), max_size=4),
    every=st.sampled_from([None, 1, 2]),
    not_objects=st.lists(st.integers(0, 11), max_size=2),
)
def test_a_batch_judges_each_record_as_the_record_alone(
    form: str, broken: list[tuple[int, int, Any]], items: list[tuple[int, int]], every: int | None,
    not_objects: list[int],
) -> None:  # fmt: skip
    # The column passes take shortcuts when a whole column is clean (one transposition, a column of dates parsed
    # at once, list items split by place): every record of a batch must get the answer it gets on its own.
    spec = STANDARD.forms[form]
    records = [make_record(form, "H0001", f"r-{i}", NOW - timedelta(hours=3, seconds=i)) for i in range(12)]
    # The form's list fields, read before any value is broken (an odd value may be a list in a field that is
    # none, and absent from the other records).
    lists = [name for name, value in records[0].items() if isinstance(value, list)]
    for row, position, value in broken:
        records[row][spec.fields[position % len(spec.fields)].name] = value
    for row, count in [(row, every) for row in range(12) if every is not None] + items:
        for name in lists:  # lists of other lengths than the example's one item, in some or all records
            value = records[row].get(name)
            if isinstance(value, list) and value and isinstance(value[0], dict):
                records[row][name] = [dict(value[0]) for _ in range(count)]
    for row in not_objects:
        for name in lists:  # as many items as the others, but not all of them objects
            value = records[row].get(name)
            if isinstance(value, list) and value:
                records[row][name] = [*value[:-1], "not an object"]
    copies = [dict(record) for record in records]
    alone = [VALIDATORS[form].check([record], now=NOW) for record in copies]
    together = VALIDATORS[form].check(records, now=NOW)
    assert records == copies  # normalised alike
    assert together.errors == {i: found.errors[0] for i, found in enumerate(alone) if found.errors}
    assert together.indexes == [i for i, found in enumerate(alone) if not found.errors]
    assert together.events == [event for found in alone for event in found.events]
    assert together.actions == [action for found in alone for action in found.actions]
