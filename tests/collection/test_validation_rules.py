"""Every rule kind of the standard, form by form, through the form validator (no database).

Each test breaks one rule of one otherwise valid record and checks the exact rule, field and shown value;
the property tests state the parsers' and check digits' laws over generated input.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cityhealth.clock import BUSINESS_TZ
from cityhealth.collection.validation.dates import parse_datetime
from cityhealth.collection.validation.validator import FormValidator
from tests.collection.validation_support import (
    EVENT,
    NOW,
    STANDARD,
    accepted,
    broken,
    check,
    only_error,
)
from tests.factories.collection import ALL_FORMS, make_record

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
