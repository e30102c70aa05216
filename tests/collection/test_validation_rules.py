"""Every rule kind of the standard, form by form, through the form validator (no database).

Each test breaks one rule of one otherwise valid record and checks the exact rule, field and shown value;
the property tests state the parsers' and check digits' laws over generated input.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityhealth.clock import BUSINESS_TZ
from cityhealth.collection.rules import RULES, RecordError, make_error
from cityhealth.collection.standard import load_standard
from cityhealth.collection.validation.dates import business_month, parse_date, parse_datetime
from cityhealth.collection.validation.validator import SLICE_RECORDS, FormValidator, ValidationResult
from cityhealth.registry.identifiers import (
    Sex,
    make_resident_id,
    mask_phone,
    mask_resident_id,
    parse_resident_id,
    resident_id_check_char,
)
from tests.factories.collection import ALL_FORMS, make_record

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


# --- the example records themselves ------------------------------------------------------------------------


@pytest.mark.parametrize("form", ALL_FORMS)
def test_the_example_record_of_every_form_is_valid_and_keeps_its_event_time(form: str) -> None:
    record = make_record(form, "H0001", "r-1", EVENT)
    spec = STANDARD.forms[form]
    sent = record[spec.event_field]
    result = check(form, record)
    assert result.errors == {}
    moment = result.valid[0].event_time
    if spec.field(spec.event_field).type == "datetime":
        assert moment == parse_datetime(sent)
        assert moment <= EVENT
    else:  # a date: midnight in Nanjing of the event's day
        assert moment == datetime(2022, 6, 15, tzinfo=BUSINESS_TZ).astimezone(UTC)
    assert result.valid[0].action == 1


# --- required fields ---------------------------------------------------------------------------------------


def test_a_missing_common_field_is_required() -> None:
    record = make_record("outpatient_visit", "H0001", "r-1", EVENT)
    del record["org_code"]
    assert [(e.rule, e.field) for e in check("outpatient_visit", record).errors[0]] == [("required", "org_code")]


def test_an_empty_string_counts_as_missing() -> None:
    assert only_error("admission", admission_no="") == ("required", "admission_no", None)


def test_a_missing_optional_field_is_fine() -> None:
    record = accepted("outpatient_visit", doctor_name=None)
    assert "doctor_name" not in record


def test_a_missing_required_list_is_required() -> None:
    assert only_error("prescription", items=None) == ("required", "items", None)


def test_each_missing_required_field_is_named_once() -> None:
    found = broken("discharge", dept_code=None, payment_code=None, payment_name=None)
    assert sorted(found) == [
        ("required", "dept_code", None),
        ("required", "payment_code", None),
        ("required", "payment_name", None),
    ]


def test_the_required_message_names_the_label_in_both_languages() -> None:
    record = make_record("admission", "H0001", "r-1", EVENT, dept_name=None)
    error = check("admission", record).errors[0][0]
    spec = STANDARD.forms["admission"].field("dept_name")
    assert error.message == f"{spec.label_en} (dept_name) is required"
    assert error.message_zh == f"{spec.label_zh}（dept_name）为必填项"


# --- text: type, length and shape --------------------------------------------------------------------------


def test_text_longer_than_its_length_is_refused_with_the_length() -> None:
    rule, field, value = only_error("outpatient_visit", doctor_name="医" * 51)
    assert (rule, field, value) == ("length.max", "doctor_name", "医" * 51)
    record = make_record("outpatient_visit", "H0001", "r-1", EVENT, doctor_name="医" * 51)
    assert "50 characters" in check("outpatient_visit", record).errors[0][0].message


def test_text_at_exactly_its_length_is_accepted() -> None:
    assert accepted("outpatient_visit", doctor_name="医" * 50)["doctor_name"] == "医" * 50


def test_a_number_where_text_is_expected_is_refused() -> None:
    assert only_error("outpatient_visit", visit_no=12345) == ("type.string", "visit_no", "12345")


def test_an_area_code_not_of_six_digits_breaks_the_pattern() -> None:
    assert only_error("patient_master_index", address_area_code="32010A") == (
        "pattern", "address_area_code", "32010A")


def test_a_health_record_number_of_sixteen_digits_breaks_the_pattern() -> None:
    assert only_error("health_record", record_no="3201150010010000") == (
        "pattern", "record_no", "3201150010010000")


def test_a_long_value_is_cut_when_shown() -> None:
    rule, field, value = only_error("exam_report", impression="阴" * 2001)
    assert (rule, field) == ("length.max", "impression")
    assert value == "阴" * 63 + "…"


def test_an_unknown_field_is_refused_naming_the_form() -> None:
    record = make_record("settlement", "H0001", "r-1", EVENT)
    record["discount"] = 3
    error = check("settlement", record).errors[0][0]
    assert (error.rule, error.field) == ("field.unknown", "discount")
    assert error.message == "discount is not a field of form settlement"


# --- codes and their names ---------------------------------------------------------------------------------


def test_a_code_outside_its_table_names_the_table() -> None:
    record = make_record("discharge", "H0001", "r-1", EVENT, abo_code="6")
    error = check("discharge", record).errors[0][0]
    assert (error.rule, error.field, error.value) == ("code.not_in_table", "abo_code", "6")
    label = STANDARD.forms["discharge"].field("abo_code").label_en
    assert error.message == f"{label} (abo_code): code 6 is not in table CV04.50.005"
    assert "CV04.50.005" in error.message_zh


def test_an_action_outside_1_2_3_is_refused() -> None:
    assert only_error("outpatient_visit", action=4) == ("code.not_in_table", "action", "4")


def test_a_code_sent_as_a_number_is_read_as_its_text() -> None:
    record = accepted("outpatient_visit", patient_type_code=2, patient_type_name="急诊")
    assert record["patient_type_code"] == "2"


def test_a_negative_number_as_a_code_is_not_text() -> None:
    assert only_error("outpatient_visit", patient_type_code=-1) == ("type.string", "patient_type_code", "-1")


def test_a_code_longer_than_its_length_is_a_length_error_not_a_table_error() -> None:
    assert only_error("discharge", payment_code="012345678") == ("length.max", "payment_code", "012345678")


def test_a_name_that_does_not_match_its_code_names_the_expected_name() -> None:
    record = make_record("discharge", "H0001", "r-1", EVENT, disposition_name="死亡")
    error = check("discharge", record).errors[0][0]
    assert (error.rule, error.field, error.value) == ("code.name_mismatch", "disposition_name", "死亡")
    assert "expected 医嘱离院" in error.message
    assert "CV06.00.226" in error.message


def test_an_optional_code_without_its_name_is_incomplete() -> None:
    assert only_error("patient_master_index", ethnicity_name=None) == ("required", "ethnicity_name", None)


def test_an_optional_code_pair_left_out_entirely_is_fine() -> None:
    record = accepted("discharge", abo_code=None, abo_name=None, rh_code=None, rh_name=None)
    assert "abo_code" not in record


@pytest.mark.parametrize(
    ("form", "field", "code", "name"),
    [
        ("patient_master_index", "sex", "9", "未说明的性别"),
        ("patient_master_index", "marital", "40", "离婚"),
        ("patient_master_index", "id_type", "03", "护照"),
        ("outpatient_visit", "patient_type", "2", "急诊"),
        ("admission", "admission_route", "3", "其他医疗机构转入"),
        ("discharge", "admission_condition", "4", "无"),
        ("discharge", "disposition", "5", "死亡"),
        ("discharge", "abo", "4", "AB"),
        ("discharge", "rh", "1", "阴性"),
        ("discharge", "payment", "99", "其他"),
        ("surgery", "grade", "3", "三级手术"),
        ("surgery", "wound_class", "4", "Ⅲ类"),
        ("surgery", "healing", "9", "其他"),
    ],
)
def test_every_code_table_of_the_domain_takes_its_codes_with_their_names(
    form: str, field: str, code: str, name: str
) -> None:
    spec = STANDARD.forms[form].field(f"{field}_code")
    assert STANDARD.tables[spec.table or ""].codes[code] == name
    extra: dict[str, Any] = {}
    if field == "id_type":
        extra["id_number"] = "E12345678"  # a passport number: not an ID number's shape, not checked as one
    assert accepted(form, **{f"{field}_code": code, f"{field}_name": name}, **extra)[f"{field}_code"] == code


def test_an_icd10_code_of_the_wrong_shape_is_refused_by_shape() -> None:
    assert only_error("admission", admission_diagnosis_code="i20.000") == (
        "icd10.shape", "admission_diagnosis_code", "i20.000")


def test_an_icd9cm3_code_of_the_wrong_shape_is_refused_by_shape() -> None:
    assert only_error("surgery", procedure_code="3606") == ("icd9cm3.shape", "procedure_code", "3606")


def test_a_loaded_icd10_table_adds_membership_and_the_name_check() -> None:
    validator = FormValidator(STANDARD.forms["admission"], STANDARD, {"ICD-10": {"I20.000": "不稳定型心绞痛"}})
    ok = make_record("admission", "H0001", "a-1", EVENT)
    unlisted = make_record("admission", "H0001", "a-2", EVENT, admission_diagnosis_code="I21.000")
    misnamed = make_record("admission", "H0001", "a-3", EVENT, admission_diagnosis_name="心梗")
    result = validator.validate([ok, unlisted, misnamed], now=NOW)
    assert [item.index for item in result.valid] == [0]
    assert [(e.rule, e.field) for e in result.errors[1]] == [("code.not_in_table", "admission_diagnosis_code")]
    assert [(e.rule, e.field) for e in result.errors[2]] == [("code.name_mismatch", "admission_diagnosis_name")]


def test_a_list_item_code_error_names_its_place_in_the_list() -> None:
    diagnoses = [{"diagnosis_code": "I10.x00", "diagnosis_name": "高血压"},
                 {"diagnosis_code": "HYPER", "diagnosis_name": "高血压"}]
    assert only_error("discharge", other_diagnoses=diagnoses) == (
        "icd10.shape", "other_diagnoses[1].diagnosis_code", "HYPER")


# --- numbers and booleans ----------------------------------------------------------------------------------


def test_an_integer_sent_as_text_is_read_as_a_number() -> None:
    assert accepted("discharge", length_of_stay_days="5")["length_of_stay_days"] == 5


def test_a_fraction_where_an_integer_is_expected_is_refused() -> None:
    assert only_error("discharge", length_of_stay_days=5.5) == ("type.integer", "length_of_stay_days", "5.5")


def test_a_boolean_where_an_integer_is_expected_is_refused() -> None:
    assert only_error("outpatient_diagnosis", seq=True) == ("type.integer", "seq", "true")


def test_an_integer_below_its_minimum_is_refused() -> None:
    assert only_error("outpatient_diagnosis", seq=0) == ("range.min", "seq", "0")


def test_an_integer_above_its_maximum_is_refused() -> None:
    assert only_error("surgery", seq=100) == ("range.max", "seq", "100")


def test_the_bounds_themselves_are_accepted() -> None:
    assert accepted("outpatient_diagnosis", seq=999)["seq"] == 999
    assert accepted("outpatient_diagnosis", seq=1)["seq"] == 1


def test_a_decimal_sent_as_text_is_read_as_a_number() -> None:
    assert accepted("settlement", total_amount="12850.40", self_paid_amount="0")["total_amount"] == 12850.4


@pytest.mark.parametrize("value", ["abc", "NaN", "inf", " 12", ""])
def test_a_decimal_that_is_not_a_finite_number_is_refused(value: str) -> None:
    found = broken("diabetes_followup", fbg_mmol_l=value)
    expected = ("required", "fbg_mmol_l", None) if value == "" else ("type.decimal", "fbg_mmol_l", value)
    assert found == [expected]


def test_a_decimal_above_its_maximum_is_refused() -> None:
    assert only_error("diabetes_followup", fbg_mmol_l=50.5) == ("range.max", "fbg_mmol_l", "50.5")


@pytest.mark.parametrize(("sent", "read"), [("Y", True), ("n", False), (1, True), (0, False), ("TRUE", True)])
def test_booleans_are_read_from_their_usual_spellings(sent: Any, read: bool) -> None:
    assert accepted("outpatient_visit", first_visit=sent)["first_visit"] is read


@pytest.mark.parametrize("sent", ["yes", 2, "是", 1.0])
def test_other_booleans_are_refused(sent: Any) -> None:
    rule, field, _ = only_error("outpatient_visit", first_visit=sent)
    assert (rule, field) == ("type.boolean", "first_visit")


# --- dates and times ---------------------------------------------------------------------------------------


def test_iso_dates_and_compact_dates_are_both_accepted() -> None:
    assert accepted("health_record", build_date="2022-06-14")["build_date"] == "2022-06-14"
    assert accepted("health_record", build_date="20220614")["build_date"] == "20220614"


@pytest.mark.parametrize("value", ["2022/06/14", "20220230", "2022-6-14", "14062022"])
def test_a_date_not_on_the_calendar_or_in_another_shape_is_refused(value: str) -> None:
    assert only_error("health_record", build_date=value) == ("format.date", "build_date", value)


def test_an_iso_date_time_needs_an_offset() -> None:
    assert only_error("admission", admission_time="2022-06-15T07:00:00") == (
        "format.datetime", "admission_time", "2022-06-15T07:00:00")
    accepted("admission", admission_time="2022-06-15T07:00:00+08:00")


def test_an_event_after_now_is_in_the_future() -> None:
    record = make_record("settlement", "H0001", "s-1", NOW + timedelta(seconds=1))
    error = check("settlement", record).errors[0][0]
    assert (error.rule, error.field) == ("event_time.future", "settle_time")


def test_an_event_at_now_is_accepted() -> None:
    result = check("settlement", make_record("settlement", "H0001", "s-1", NOW))
    assert result.errors == {}


def test_a_birth_date_after_today_is_in_the_future() -> None:
    # The ID number is of another person here (passport): only the birth date rule speaks.
    found = broken("patient_master_index", birth_date="20220616", id_type_code="03", id_type_name="护照",
                   id_number="E1234567")
    assert found == [("time.future", "birth_date", "20220616")]


def test_a_stop_time_before_the_start_is_out_of_order() -> None:
    start = EVENT
    assert only_error(
        "inpatient_order", stop_time=(start - timedelta(minutes=1)).astimezone(BUSINESS_TZ).strftime("%Y%m%d%H%M%S")
    ) == ("time.order", "stop_time", (start - timedelta(minutes=1)).astimezone(BUSINESS_TZ).strftime("%Y%m%d%H%M%S"))


def test_a_stop_time_equal_to_the_start_is_in_order() -> None:
    at = EVENT.astimezone(BUSINESS_TZ).strftime("%Y%m%d%H%M%S")
    assert accepted("inpatient_order", stop_time=at)["stop_time"] == at


def test_a_surgery_ending_before_it_starts_is_out_of_order() -> None:
    record = make_record("surgery", "H0001", "r-1", EVENT)
    record["end_time"], record["start_time"] = record["start_time"], record["end_time"]
    # start_time is the event field: the swapped record's event is still in the past.
    error = check("surgery", record).errors[0][0]
    assert (error.rule, error.field) == ("time.order", "end_time")
    assert error.message.endswith("is earlier than start_time")


def test_a_next_follow_up_before_this_one_is_out_of_order() -> None:
    assert only_error("hypertension_followup", next_visit_date="20220614") == (
        "time.order", "next_visit_date", "20220614")


def test_order_is_not_judged_when_one_side_is_malformed() -> None:
    assert broken("discharge", admission_time="yesterday") == [("format.datetime", "admission_time", "yesterday")]


def test_times_in_iso_and_compact_forms_are_compared_as_instants() -> None:
    # 07:00 in Nanjing is 23:00 UTC of the day before: the same instant in two spellings is in order.
    at = EVENT.astimezone(BUSINESS_TZ)
    iso_utc = EVENT.astimezone(UTC).isoformat()
    record = accepted("discharge", admission_time=iso_utc, discharge_time=at.strftime("%Y%m%d%H%M%S"))
    assert record["admission_time"] == iso_utc


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
