"""How a stored record enters the shared record's index: its category, the encounter it belongs to, the patient
identity it names (directly, or through its visit or admission), and the fields shown — never a personal one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The forms that name a patient identity of their own: the patient master index, and the health record
# (whose identity is its number, "HR:<number>", which the follow-ups name).
IDENTITY_FORMS = ("patient_master_index", "health_record")
HEALTH_RECORD_PREFIX = "HR:"

# Per form: the category shown, and the fields of its summary.
SHOWN: dict[str, tuple[str, tuple[str, ...]]] = {
    "outpatient_visit": ("visit", ("visit_no", "patient_type_name", "dept_name", "first_visit", "doctor_name")),
    "outpatient_diagnosis": ("diagnosis", ("seq", "diagnosis_code", "diagnosis_name", "diagnosis_type_name")),
    "prescription": ("prescription", ("prescription_no", "doctor_name", "items", "total_amount")),
    "lab_report": ("lab_report", ("report_no", "items")),
    "exam_report": ("exam_report", ("report_no", "exam_class", "exam_item", "findings", "impression", "reporter")),
    "admission": ("admission", ("admission_no", "dept_name", "admission_route_name", "admission_diagnosis_code",
                                "admission_diagnosis_name")),
    "inpatient_order": ("inpatient_order", ("order_no", "order_kind_name", "item_type", "content", "stop_time")),
    "surgery": ("surgery", ("seq", "procedure_code", "procedure_name", "grade_name", "anaesthesia_method",
                            "end_time")),
    "discharge": ("discharge", ("admission_no", "dept_name", "length_of_stay_days", "main_diagnosis_code",
                                "main_diagnosis_name", "other_diagnoses", "disposition_name", "abo_name",
                                "rh_name")),
    "settlement": ("settlement", ("total_amount", "self_paid_amount", "payment_name")),
    "health_record": ("health_record", ("record_no", "build_date", "responsible_doctor", "address_area_code")),
    "hypertension_followup": ("hypertension_followup", ("visit_way_name", "sbp", "dbp", "heart_rate", "bmi",
                                                        "classification_code", "classification_name",
                                                        "next_visit_date")),
    "diabetes_followup": ("diabetes_followup", ("visit_way_name", "sbp", "dbp", "fbg_mmol_l", "bmi",
                                                "classification_code", "classification_name", "next_visit_date")),
}
LINKED_FORMS = frozenset(SHOWN) | frozenset(IDENTITY_FORMS)
ENCOUNTER_CATEGORIES = ("visit", "diagnosis", "prescription", "lab_report", "exam_report", "admission",
                        "inpatient_order", "surgery", "discharge", "settlement")
PUBLIC_HEALTH_CATEGORIES = ("health_record", "hypertension_followup", "diabetes_followup")


@dataclass(frozen=True)
class Placement:
    """Where a record sits in the index."""

    category: str
    encounter_kind: str | None
    encounter_no: str | None
    owns_encounter: bool
    patient_key: str | None  # None: named through an encounter, looked up (or adopted when it arrives)
    summary: dict[str, Any]


def identity_key(form: str, fields: dict[str, Any]) -> str | None:
    """The patient identity a patient-master or health-record record declares."""
    if form == "patient_master_index":
        value = fields.get("patient_id")
        return str(value) if value else None
    if form == "health_record":
        value = fields.get("record_no")
        return f"{HEALTH_RECORD_PREFIX}{value}" if value else None
    return None


def placement(form: str, fields: dict[str, Any]) -> Placement | None:
    """The record's place in the index; None for a form the shared record does not show."""
    shown = SHOWN.get(form)
    if shown is None:
        return None
    category, names = shown
    summary = {name: fields[name] for name in names if fields.get(name) not in (None, "")}
    if form in ("outpatient_visit", "admission"):
        kind = "visit" if form == "outpatient_visit" else "admission"
        number = fields.get("visit_no" if kind == "visit" else "admission_no")
        patient = fields.get("patient_id")
        return Placement(category, kind, _text(number), True, _text(patient), summary)
    if form == "health_record":
        number = _text(fields.get("record_no"))
        return Placement(category, "health_record", number, True, identity_key(form, fields), summary)
    if form in ("hypertension_followup", "diabetes_followup"):
        number = _text(fields.get("health_record_no"))
        key = f"{HEALTH_RECORD_PREFIX}{number}" if number else None
        return Placement(category, "health_record", number, False, key, summary)
    if fields.get("visit_no"):
        return Placement(category, "visit", _text(fields["visit_no"]), False, None, summary)
    if fields.get("admission_no"):
        return Placement(category, "admission", _text(fields["admission_no"]), False, None, summary)
    return Placement(category, None, None, False, None, summary)


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
