"""Example records: a valid record of every form, deterministic in its arguments.

The simulator builds its month from these, and the tests build their fixtures from them.
"""

from __future__ import annotations

import zlib
from datetime import date, datetime, timedelta
from typing import Any

from cityhealth.clock import BUSINESS_TZ
from cityhealth.registry.identifiers import Sex, make_resident_id

REALTIME_FORMS = (
    "patient_master_index",
    "outpatient_visit",
    "outpatient_diagnosis",
    "prescription",
    "lab_report",
    "exam_report",
    "admission",
    "inpatient_order",
    "surgery",
    "discharge",
    "settlement",
)
ALL_FORMS = (*REALTIME_FORMS, "health_record", "hypertension_followup", "diabetes_followup", "workload_daily")


def compact(moment: datetime) -> str:
    return moment.astimezone(BUSINESS_TZ).strftime("%Y%m%d%H%M%S")


def day(moment: datetime) -> str:
    return moment.astimezone(BUSINESS_TZ).strftime("%Y%m%d")


def _seed(record_id: str) -> int:
    return zlib.crc32(record_id.encode())


def make_record(form: str, org_code: str, record_id: str, event_time: datetime, *, seed: int | None = None,
                **overrides: Any) -> dict[str, Any]:
    """A valid record of `form` whose event happened at `event_time`; overrides replace fields (None removes).

    Its other fields follow from `seed` (by default, a hash of the record id).
    """
    n = _seed(record_id) if seed is None else seed
    at = compact(event_time)
    earlier = compact(event_time - timedelta(hours=1 + n % 5))
    visit = f"V{n % 10_000_000:07d}"
    admission = f"A{n % 10_000_000:07d}"
    base: dict[str, Any] = {"org_code": org_code, "record_id": record_id, "action": 1}
    birth = date(1950 + n % 50, 1 + n % 12, 1 + n % 28)
    sex = Sex.MALE if n % 2 else Sex.FEMALE
    seq = (n % 499) * 2 + (1 if sex is Sex.MALE else 0)
    body: dict[str, Any]
    if form == "patient_master_index":
        body = {
            "patient_id": f"P{n % 10_000_000:07d}",
            "name": "张三",
            "id_type_code": "01",
            "id_type_name": "居民身份证",
            "id_number": make_resident_id("320102", birth, seq, sex),
            "sex_code": str(int(sex)),
            "sex_name": "男" if sex is Sex.MALE else "女",
            "birth_date": birth.strftime("%Y%m%d"),
            "ethnicity_code": "01",
            "ethnicity_name": "汉族",
            "marital_code": "20",
            "marital_name": "已婚",
            "phone": f"138{n % 100_000_000:08d}",
            "address_area_code": "320102",
            "register_time": at,
        }
    elif form == "outpatient_visit":
        body = {
            "visit_no": visit,
            "patient_id": f"P{n % 10_000_000:07d}",
            "patient_type_code": "1",
            "patient_type_name": "门诊",
            "dept_code": "0301",
            "dept_name": "心血管内科",
            "visit_time": at,
            "first_visit": n % 3 == 0,
            "doctor_name": "李医生",
        }
    elif form == "outpatient_diagnosis":
        body = {
            "visit_no": visit,
            "seq": 1,
            "diagnosis_code": "I10.x00",
            "diagnosis_name": "高血压",
            "diagnosis_type_code": "1",
            "diagnosis_type_name": "西医诊断",
            "diagnosis_time": at,
        }
    elif form == "prescription":
        body = {
            "prescription_no": f"RX{n % 10_000_000:07d}",
            "visit_no": visit,
            "prescribe_time": at,
            "doctor_name": "李医生",
            "total_amount": 36.5,
            "items": [
                {
                    "drug_name": "氨氯地平片",
                    "dosage_form": "片剂",
                    "spec": "5mg*28",
                    "dose": 5,
                    "dose_unit": "mg",
                    "frequency": "qd",
                    "route": "口服",
                    "quantity": 1,
                    "amount": 36.5,
                }
            ],
        }
    elif form == "lab_report":
        body = {
            "report_no": f"L{n % 10_000_000:07d}",
            "request_no": f"Q{n % 1_000_000:06d}",
            "visit_no": visit,
            "specimen_no": f"S{n % 1_000_000:06d}",
            "report_time": at,
            "items": [
                {
                    "item_code": "GLU",
                    "item_name": "葡萄糖",
                    "result": "5.6",
                    "unit": "mmol/L",
                    "reference_range": "3.9-6.1",
                    "abnormal_flag": "N",
                },
                {
                    "item_code": "TC",
                    "item_name": "总胆固醇",
                    "result": "4.2",
                    "unit": "mmol/L",
                    "reference_range": "<5.2",
                    "abnormal_flag": "N",
                },
            ],
        }
    elif form == "exam_report":
        body = {
            "report_no": f"E{n % 10_000_000:07d}",
            "visit_no": visit,
            "exam_class": "CT",
            "exam_item": "胸部CT平扫",
            "findings": "双肺纹理清晰",
            "impression": "胸部CT平扫未见明显异常",
            "report_time": at,
            "reporter": "王医生",
        }
    elif form == "admission":
        body = {
            "admission_no": admission,
            "patient_id": f"P{n % 10_000_000:07d}",
            "admission_time": at,
            "dept_code": "0301",
            "dept_name": "心血管内科",
            "admission_route_code": "1",
            "admission_route_name": "门诊",
            "admission_diagnosis_code": "I20.000",
            "admission_diagnosis_name": "不稳定型心绞痛",
        }
    elif form == "inpatient_order":
        body = {
            "admission_no": admission,
            "order_no": f"O{n % 10_000_000:07d}",
            "order_kind_code": "1",
            "order_kind_name": "长期医嘱",
            "item_type": "药品",
            "content": "阿司匹林肠溶片 100mg qd",
            "start_time": at,
        }
    elif form == "surgery":
        body = {
            "admission_no": admission,
            "seq": 1,
            "procedure_code": "36.06",
            "procedure_name": "冠状动脉支架置入",
            "grade_code": "4",
            "grade_name": "四级手术",
            "start_time": earlier,
            "end_time": at,
            "wound_class_code": "2",
            "wound_class_name": "Ⅰ类",
            "healing_code": "1",
            "healing_name": "甲",
            "anaesthesia_method": "局部麻醉",
        }
    elif form == "discharge":
        body = {
            "admission_no": admission,
            "admission_time": compact(event_time - timedelta(days=5)),
            "discharge_time": at,
            "dept_code": "0301",
            "dept_name": "心血管内科",
            "length_of_stay_days": 5,
            "main_diagnosis_code": "I20.000",
            "main_diagnosis_name": "不稳定型心绞痛",
            "admission_condition_code": "1",
            "admission_condition_name": "有",
            "other_diagnoses": [{"diagnosis_code": "I10.x00", "diagnosis_name": "高血压"}],
            "disposition_code": "1",
            "disposition_name": "医嘱离院",
            "abo_code": "1",
            "abo_name": "A",
            "rh_code": "2",
            "rh_name": "阳性",
            "payment_code": "01",
            "payment_name": "城镇职工基本医疗保险",
        }
    elif form == "settlement":
        body = {
            "admission_no": admission,
            "settle_time": at,
            "total_amount": 12850.4,
            "self_paid_amount": 2570.08,
            "payment_code": "01",
            "payment_name": "城镇职工基本医疗保险",
        }
    elif form == "health_record":
        body = {
            "record_no": f"320115001001{n % 100_000:05d}",
            "name": "王芳",
            "id_number": make_resident_id("320115", birth, seq, sex),
            "sex_code": str(int(sex)),
            "sex_name": "男" if sex is Sex.MALE else "女",
            "birth_date": birth.strftime("%Y%m%d"),
            "address_area_code": "320115",
            "build_date": day(event_time),
            "responsible_doctor": "赵医生",
        }
    elif form in ("hypertension_followup", "diabetes_followup"):
        body = {
            "health_record_no": f"320115001001{n % 100_000:05d}",
            "visit_date": day(event_time),
            "visit_way_code": "1",
            "visit_way_name": "门诊",
            "sbp": 128,
            "dbp": 82,
            "weight_kg": 68.5,
            "bmi": 23.4,
            "heart_rate": 72,
            "adherence_code": "1",
            "adherence_name": "规律",
            "adverse_reaction": False,
            "new_complication": False,
            "classification_code": "1",
            "classification_name": "控制满意",
            "next_visit_date": day(event_time + timedelta(days=90)),
        }
        if form == "diabetes_followup":
            body["fbg_mmol_l"] = 6.2
    elif form == "workload_daily":
        body = {
            "report_date": day(event_time),
            "outpatient_emergency_visits": 1000 + n % 500,
            "discharges": 30 + n % 20,
        }
    else:
        raise ValueError(f"unknown form {form}")
    record = {**base, **body}
    for name, value in overrides.items():
        if value is None:
            record.pop(name, None)
        else:
            record[name] = value
    return record
