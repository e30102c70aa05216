"""Rules across fields and records, through the form validator (no database): cross rules, ID numbers and
personal fields, lists, batches, the rule catalogue, and the property tests of the parsers and check digits."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityhealth.clock import BUSINESS_TZ
from cityhealth.collection.rules import RULES, RecordError, make_error
from cityhealth.collection.validation.dates import business_month, parse_date, parse_datetime
from cityhealth.collection.validation.validator import SLICE_RECORDS
from cityhealth.registry.identifiers import (
    Sex,
    make_resident_id,
    mask_phone,
    mask_resident_id,
    parse_resident_id,
    resident_id_check_char,
)
from tests.collection.validation_support import (
    EVENT,
    NOW,
    STANDARD,
    VALIDATORS,
    accepted,
    broken,
    check,
    only_error,
    with_legacy_id,
)
from tests.factories.collection import ALL_FORMS, make_record

# --- cross rules -------------------------------------------------------------------------------------------


def test_a_lab_report_needs_a_visit_or_an_admission_number() -> None:
    assert only_error("lab_report", visit_no=None) == ("required.one_of", "visit_no", None)
    record = make_record("lab_report", "H0001", "r-1", EVENT, visit_no=None)
    assert check("lab_report", record).errors[0][0].message == "one of visit_no / admission_no is required"


def test_an_exam_report_with_only_an_admission_number_is_accepted() -> None:
    assert accepted("exam_report", visit_no=None, admission_no="A0000001")["admission_no"] == "A0000001"


def test_self_paid_above_the_total_is_refused() -> None:
    assert only_error("settlement", self_paid_amount=12850.41) == ("amount.exceeds", "self_paid_amount", "12850.41")


def test_self_paid_equal_to_the_total_is_accepted() -> None:
    assert accepted("settlement", self_paid_amount=12850.4)["self_paid_amount"] == 12850.4


def test_a_negative_total_is_a_range_error_and_not_also_an_excess() -> None:
    assert broken("settlement", total_amount=-1) == [("range.min", "total_amount", "-1")]


# --- ID numbers and personal fields ------------------------------------------------------------------------


def _person(form: str = "patient_master_index", **overrides: Any) -> dict[str, Any]:
    return make_record(form, "H0001", "p-1", EVENT, **overrides)


def _id_errors(record: dict[str, Any], form: str = "patient_master_index") -> list[tuple[str, str, str | None]]:
    return [(e.rule, e.field, e.value) for e in check(form, record).errors.get(0, [])]


def test_a_wrong_check_character_is_refused_masked() -> None:
    record = _person()
    number = record["id_number"]
    record["id_number"] = number[:17] + ("0" if number[17] != "0" else "1")
    assert _id_errors(record) == [("id_number.check_char", "id_number", mask_resident_id(record["id_number"]))]


def test_a_lower_case_x_check_character_is_accepted() -> None:
    born = date(1980, 1, 1)
    for seq in range(1, 999, 2):
        number = make_resident_id("320102", born, seq)
        if number.endswith("X"):
            break
    record = _person(id_number=number[:17] + "x", birth_date="19800101", sex_code="1", sex_name="男")
    assert _id_errors(record) == []


def test_an_id_number_of_the_wrong_length_is_refused() -> None:
    record = _person(id_number="3201021980010112")
    assert _id_errors(record) == [("id_number.length", "id_number", "*" * 16)]


def test_an_id_number_with_a_letter_inside_is_refused() -> None:
    record = _person()
    record["id_number"] = record["id_number"][:10] + "A" + record["id_number"][11:]
    assert _id_errors(record)[0][:2] == ("id_number.charset", "id_number")


def test_an_id_number_outside_any_province_is_refused() -> None:
    first17 = "990102" + "19800101" + "001"
    record = _person(id_number=first17 + resident_id_check_char(first17), birth_date="19800101",
                     sex_code="1", sex_name="男")
    assert _id_errors(record)[0][:2] == ("id_number.area_code", "id_number")


def test_an_id_number_with_an_impossible_birth_date_is_refused() -> None:
    first17 = "320102" + "19800230" + "001"
    record = _person(id_number=first17 + resident_id_check_char(first17), birth_date="19800101",
                     sex_code="1", sex_name="男")
    assert _id_errors(record)[0][:2] == ("id_number.birth_date", "id_number")


def test_an_id_number_disagreeing_with_the_birth_date_is_refused() -> None:
    record = _person()
    other = (parse_date(record["birth_date"]) or date(2000, 1, 1)) + timedelta(days=1)
    record["birth_date"] = other.strftime("%Y%m%d")
    rule, field, _ = _id_errors(record)[0]
    assert (rule, field) == ("id_number.birth_date_mismatch", "id_number")
    assert check("patient_master_index", record).errors[0][0].message.endswith("than birth_date")


def test_an_unknown_or_unstated_sex_is_not_held_against_the_number() -> None:
    assert _id_errors(_person(sex_code="0", sex_name="未知的性别")) == []
    assert _id_errors(_person(sex_code="9", sex_name="未说明的性别")) == []


def test_a_legacy_fifteen_digit_number_is_checked_after_conversion() -> None:
    born = date(1965, 3, 9)
    legacy = with_legacy_id(born, 37)
    record = _person(id_number=legacy, birth_date="19650309", sex_code="1", sex_name="男")
    assert _id_errors(record) == []
    record = _person(id_number=legacy, birth_date="19650309", sex_code="2", sex_name="女")
    assert _id_errors(record) == [("id_number.sex_mismatch", "id_number", mask_resident_id(legacy))]


def test_a_health_record_checks_its_id_number_without_an_id_type() -> None:
    record = _person("health_record")
    record["id_number"] = record["id_number"][:17] + ("0" if record["id_number"][17] != "0" else "1")
    assert _id_errors(record, "health_record")[0][:2] == ("id_number.check_char", "id_number")


def test_a_too_long_id_number_is_shown_only_as_stars() -> None:
    record = _person("health_record")
    long_number = record["id_number"] + "1"
    record["id_number"] = long_number
    assert _id_errors(record, "health_record") == [("length.max", "id_number", "*" * 19)]


@pytest.mark.parametrize("phone", ["13912345678", "025-83626620", "02583626620", "025-83626620-123"])
def test_mobiles_and_landlines_are_accepted(phone: str) -> None:
    assert _id_errors(_person(phone=phone)) == []


def test_a_phone_number_of_neither_kind_is_refused_masked() -> None:
    assert _id_errors(_person(phone="12912345678")) == [("phone.format", "phone", mask_phone("12912345678"))]


def test_a_whole_id_number_in_a_free_text_field_is_shown_masked() -> None:
    number = make_resident_id("320102", date(1985, 4, 12), 37)
    found = broken("exam_report", exam_class=number + "-CT" * 20)
    assert found[0][:2] == ("length.max", "exam_class")
    assert number not in str(found[0][2])
    assert mask_resident_id(number) in str(found[0][2])


# --- lists -------------------------------------------------------------------------------------------------


def test_items_that_are_not_a_list_of_objects_are_refused() -> None:
    assert only_error("prescription", items={"drug_name": "x"}) == ("type.list", "items", None)
    assert only_error("prescription", items=["x"]) == ("type.list", "items", None)


def test_an_empty_list_of_items_is_short_of_its_minimum() -> None:
    assert only_error("lab_report", items=[]) == ("list.min_items", "items", None)


def test_an_item_missing_a_required_field_names_its_place() -> None:
    record = make_record("lab_report", "H0001", "r-1", EVENT)
    del record["items"][1]["result"]
    assert [(e.rule, e.field) for e in check("lab_report", record).errors[0]] == [("required", "items[1].result")]


def test_a_negative_item_amount_names_its_place() -> None:
    record = make_record("prescription", "H0001", "r-1", EVENT)
    record["items"].append({**record["items"][0], "amount": -2})
    assert [(e.rule, e.field, e.value) for e in check("prescription", record).errors[0]] == [
        ("range.min", "items[1].amount", "-2")]


def test_an_unknown_item_field_is_refused() -> None:
    record = make_record("prescription", "H0001", "r-1", EVENT)
    record["items"][0]["colour"] = "white"
    assert [(e.rule, e.field) for e in check("prescription", record).errors[0]] == [
        ("field.unknown", "items[0].colour")]


def test_items_sent_as_json_text_from_a_csv_cell_are_read_as_a_list() -> None:
    items = make_record("prescription", "H0001", "r-1", EVENT)["items"]
    record = accepted("prescription", items=orjson.dumps(items).decode())
    assert record["items"] == items


def test_items_as_text_that_is_not_json_are_refused() -> None:
    assert only_error("prescription", items="[{") == ("type.list", "items", None)


# --- batches -----------------------------------------------------------------------------------------------


def test_errors_of_a_batch_longer_than_a_slice_keep_their_batch_positions() -> None:
    records = [make_record("outpatient_visit", "H", f"r-{i}", EVENT) for i in range(SLICE_RECORDS + 10)]
    records[3]["visit_no"] = None
    records[SLICE_RECORDS + 4]["patient_type_code"] = "7"
    result = VALIDATORS["outpatient_visit"].validate(records, now=NOW)
    assert sorted(result.errors) == [3, SLICE_RECORDS + 4]
    assert [item.index for item in result.valid] == [i for i in range(SLICE_RECORDS + 10) if i not in (3, 1028)]


def test_a_record_breaking_several_rules_is_told_each() -> None:
    found = broken("outpatient_visit", visit_no=None, patient_type_code="7", first_visit="maybe")
    assert sorted((rule, field) for rule, field, _ in found) == [
        ("code.not_in_table", "patient_type_code"),
        ("required", "visit_no"),
        ("type.boolean", "first_visit"),
    ]


# --- the rule catalogue ------------------------------------------------------------------------------------


def test_every_rule_has_an_english_and_a_chinese_message() -> None:
    for code, (english, chinese) in RULES.items():
        assert english, code
        assert chinese, code
        error = make_error(code, "f")
        assert isinstance(error, RecordError)
        assert "{" not in error.message, code
        assert "{" not in error.message_zh, code


def test_make_error_masks_numbers_in_the_value_and_both_messages() -> None:
    number = make_resident_id("320102", date(1985, 4, 12), 37)
    error = make_error("org_code.unknown", "org_code", number)
    assert error.value == mask_resident_id(number)
    assert number not in error.message
    assert number not in error.message_zh
    assert mask_resident_id(number) in error.message


# --- property tests ----------------------------------------------------------------------------------------

days = st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))


@given(day=days)
def test_both_date_spellings_parse_to_the_same_day(day: date) -> None:
    assert parse_date(day.strftime("%Y%m%d")) == day
    assert parse_date(day.isoformat()) == day


@given(text=st.text(max_size=12))
def test_parse_date_never_raises_and_accepts_only_calendar_dates(text: str) -> None:
    parsed = parse_date(text)
    if parsed is not None:
        assert text in (parsed.strftime("%Y%m%d"), parsed.isoformat())


@given(
    moment=st.datetimes(min_value=datetime(1995, 1, 1), max_value=datetime(2090, 1, 1)),  # noqa: DTZ001
    offset_h=st.integers(-12, 14),
)
def test_an_iso_date_time_with_any_offset_is_the_same_instant(moment: datetime, offset_h: int) -> None:
    from datetime import timezone

    aware = moment.replace(microsecond=0, tzinfo=timezone(timedelta(hours=offset_h)))
    assert parse_datetime(aware.isoformat()) == aware.astimezone(UTC)


@given(text=st.text(max_size=40))
def test_parse_datetime_never_raises_and_answers_utc(text: str) -> None:
    parsed = parse_datetime(text)
    assert parsed is None or parsed.utcoffset() == timedelta(0)


@given(moment=st.datetimes(min_value=datetime(1901, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)))  # noqa: DTZ001
def test_the_business_month_is_the_month_of_the_nanjing_day(moment: datetime) -> None:
    local = moment.astimezone(BUSINESS_TZ)
    assert business_month(moment) == local.year * 100 + local.month


@given(born=st.dates(min_value=date(1900, 1, 1), max_value=date(2022, 6, 15)), seq=st.integers(0, 999),
       area=st.sampled_from(["320102", "320115", "110101", "440305", "320103"]))
def test_a_made_id_number_parses_back_to_its_parts(born: date, seq: int, area: str) -> None:
    number = make_resident_id(area, born, seq)
    parsed = parse_resident_id(number, today=date(2022, 6, 15))
    assert (parsed.area_code, parsed.birth_date) == (area, born)
    assert parsed.sex == (Sex.MALE if seq % 2 else Sex.FEMALE)


@given(born=st.dates(min_value=date(1900, 1, 1), max_value=date(2022, 6, 15)), seq=st.integers(0, 999),
       place=st.integers(0, 16), shift=st.integers(1, 9))
def test_any_single_mistyped_digit_is_caught_by_the_check_character(
    born: date, seq: int, place: int, shift: int
) -> None:
    number = make_resident_id("320102", born, seq)
    digit = (int(number[place]) + shift) % 10
    typo = number[:place] + str(digit) + number[place + 1:]
    assert resident_id_check_char(typo[:17]) != typo[17]


@given(number=st.from_regex(r"[0-9]{17}[0-9X]", fullmatch=True))
def test_a_masked_id_number_shows_only_its_area_and_last_four(number: str) -> None:
    masked = mask_resident_id(number)
    assert masked == number[:6] + "********" + number[-4:]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(form=st.sampled_from(ALL_FORMS), seed=st.integers(0, 2**32 - 1),
       hours_ago=st.integers(0, 24 * 400))
def test_every_example_record_is_valid_whatever_its_seed_and_event_time(
    form: str, seed: int, hours_ago: int
) -> None:
    record = make_record(form, "H0001", "r-1", NOW - timedelta(hours=hours_ago), seed=seed)
    result = check(form, record)
    assert result.errors == {}
    assert len(result.valid) == 1


@settings(max_examples=150, deadline=None)
@given(form=st.sampled_from(ALL_FORMS), data=st.data())
def test_dropping_any_required_field_is_refused_naming_it(form: str, data: st.DataObject) -> None:
    spec = STANDARD.forms[form]
    field = data.draw(st.sampled_from([f for f in spec.fields if f.required]))
    record = make_record(form, "H0001", "r-1", EVENT)
    del record[field.name]
    errors = check(form, record).errors[0]
    assert ("required", field.name) in [(e.rule, e.field) for e in errors]


@settings(max_examples=150, deadline=None)
@given(form=st.sampled_from(ALL_FORMS), data=st.data())
def test_any_code_outside_its_table_is_refused_naming_the_table(form: str, data: st.DataObject) -> None:
    spec = STANDARD.forms[form]
    coded = [f for f in spec.fields if f.type == "code" and f.table in STANDARD.tables]
    field = data.draw(st.sampled_from(coded))
    table = STANDARD.tables[field.table or ""]
    code = data.draw(st.text(alphabet="0123456789", min_size=1, max_size=field.length or 8).filter(
        lambda c: c not in table.codes))
    record = make_record(form, "H0001", "r-1", EVENT, **{field.name: code})
    errors = check(form, record).errors[0]
    assert [(e.rule, e.field, e.value) for e in errors if e.field == field.name] == [
        ("code.not_in_table", field.name, code)]
    message = next(e.message for e in errors if e.field == field.name)
    assert table.id in message
