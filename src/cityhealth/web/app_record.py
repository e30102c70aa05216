"""The resident app's record pages: my record (the shared record's first page and timeline), my results (lab and
exam reports) and who opened my record (the access log).

Each reads the signed-in resident's own record through records/mine.py, from the shared record's index
(never a month's stored records), audited there; a page of the timeline is asked for by the `before` token
the previous page gave. An account without a resident finds nothing (404).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from cityhealth.clock import BUSINESS_TZ
from cityhealth.context import ClockDep, SessionDep, SettingsDep
from cityhealth.errors import NotFound
from cityhealth.records import mine
from cityhealth.records.shared_record import page_cursor
from cityhealth.security.crypto import field_cipher
from cityhealth.security.principals import Principal, Scope
from cityhealth.web.session import require_app_resident
from cityhealth.web.templating import page

router = APIRouter(include_in_schema=False)
Self = Annotated[Principal, Depends(require_app_resident(Scope.RESIDENT_SELF))]
Before = Annotated[str | None, Query(max_length=512)]
TIMELINE_PAGE = 20
LOG_PAGE = 50

CATEGORIES = {
    "visit": "门诊就诊", "diagnosis": "诊断", "prescription": "处方", "lab_report": "检验报告",
    "exam_report": "检查报告", "admission": "入院", "inpatient_order": "住院医嘱", "surgery": "手术",
    "discharge": "出院", "settlement": "结算", "health_record": "健康档案", "hypertension_followup": "高血压随访",
    "diabetes_followup": "糖尿病随访",
}
# The summary fields a timeline line shows, per category (the index keeps no personal field).
SHOWN = {
    "visit": ("dept_name", "doctor_name"), "diagnosis": ("diagnosis_name", "diagnosis_code"),
    "prescription": ("prescription_no", "doctor_name"), "lab_report": ("report_no",),
    "exam_report": ("exam_item", "impression"), "admission": ("dept_name", "admission_diagnosis_name"),
    "inpatient_order": ("content",), "surgery": ("procedure_name",),
    "discharge": ("main_diagnosis_name", "disposition_name"), "settlement": ("total_amount", "payment_name"),
    "health_record": ("record_no", "responsible_doctor"),
    "hypertension_followup": ("sbp", "dbp", "classification_name"),
    "diabetes_followup": ("fbg_mmol_l", "classification_name"),
}
REASONS = {"booking": "在该院有预约", "open_encounter": "在该院就诊中", "family_doctor": "家庭医生签约",
           "consent": "您的授权", "break_glass": "紧急调阅"}
SEXES = {1: "男", 2: "女"}


def local_time(moment: datetime) -> str:
    return moment.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")


def summary_line(category: str, summary: dict[str, Any]) -> str:
    values = [str(summary[name]) for name in SHOWN.get(category, ()) if summary.get(name) not in (None, "")]
    return " · ".join(values)


def _texts() -> dict[str, Any]:
    return {"categories": CATEGORIES, "summary_line": summary_line, "local_time": local_time}


@router.get("/record", response_class=HTMLResponse)
async def my_record(request: Request, principal: Self, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                    before: Before = None) -> HTMLResponse:
    view = await mine.my_record(session, clock, field_cipher(settings), principal, before=page_cursor(before),
                                limit=TIMELINE_PAGE)
    if view is None:
        raise NotFound("no shared record for this account", code="shared_record_not_found", field="resident_id")
    masked_name = view.resident.name[:1] + "*" * (len(view.resident.name) - 1)
    return page(request, "app_record.html", view=view, masked_name=masked_name,
                sex=SEXES.get(view.resident.sex, "未说明"), **_texts())


@router.get("/results", response_class=HTMLResponse)
async def my_results(request: Request, principal: Self, session: SessionDep, clock: ClockDep,
                     before: Before = None) -> HTMLResponse:
    reports, next_before = await mine.my_results(session, clock, principal, before=page_cursor(before),
                                                 limit=TIMELINE_PAGE)
    return page(request, "app_results.html", reports=reports, next_before=next_before, **_texts())


@router.get("/access-log", response_class=HTMLResponse)
async def who_opened_my_record(request: Request, principal: Self, session: SessionDep, clock: ClockDep
                               ) -> HTMLResponse:
    entries = await mine.my_access_log(session, clock, principal, before_id=None, limit=LOG_PAGE)
    return page(request, "app_access_log.html", entries=entries, reasons=REASONS, local_time=local_time)
