"""Public-health records: the platform's own follow-up classification, and what counts as a managed record.

National basic public health service rules (domain.md §3): controlled means SBP < 140 and DBP < 90
(hypertension) or fasting glucose < 7.0 mmol/L (diabetes); SBP ≥ 180 or DBP ≥ 110 calls for urgent
referral. The classification codes are 1 控制满意, 2 控制不满意, 3 不良反应, 4 并发症; where several apply the
most serious wins (a new complication over an adverse reaction over poor control), as the follow-up form
asks the doctor to record the finding that drives the next step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SATISFACTORY, UNSATISFACTORY, ADVERSE_REACTION, COMPLICATION = "1", "2", "3", "4"
SBP_TARGET, DBP_TARGET = 140, 90  # mmHg, both below: controlled hypertension (also the HEARTS target)
FBG_TARGET = 7.0  # mmol/L fasting glucose, below: controlled diabetes

# form -> program of the distinct-records counters, and the field naming the health record.
PROGRAM_OF_FORM = {
    "health_record": ("basic", "record_no"),
    "hypertension_followup": ("hypertension", "health_record_no"),
    "diabetes_followup": ("diabetes", "health_record_no"),
}
FOLLOWUP_PROGRAMS = {"hypertension_followup": "hypertension", "diabetes_followup": "diabetes"}


def held_number(form: str, record: dict[str, Any]) -> str | None:
    """The health record number a record of this form holds under its program; None for other forms."""
    program = PROGRAM_OF_FORM.get(form)
    return None if program is None else str(record[program[1]])


def followup_controlled(program: str, record: dict[str, Any]) -> bool:
    """Whether a follow-up's readings meet its programme's target (a diabetes one without glucose does not)."""
    if program == "hypertension":
        return bool(record["sbp"] < SBP_TARGET and record["dbp"] < DBP_TARGET)
    return record.get("fbg_mmol_l") is not None and bool(record["fbg_mmol_l"] < FBG_TARGET)


def classify_followup(program: str, record: dict[str, Any]) -> str:
    """The classification the platform computes from a validated follow-up: sbp, dbp, fbg_mmol_l and the
    adverse_reaction and new_complication flags (the upload forms' and the records room's alike)."""
    if record.get("new_complication"):
        return COMPLICATION
    if record.get("adverse_reaction"):
        return ADVERSE_REACTION
    return SATISFACTORY if followup_controlled(program, record) else UNSATISFACTORY


def needs_urgent_referral(record: dict[str, Any]) -> bool:
    return bool(record["sbp"] >= 180 or record["dbp"] >= 110)


@dataclass(frozen=True)
class FollowupReview:
    computed: str
    submitted: str
    urgent_referral: bool

    @property
    def disagrees(self) -> bool:
        return self.computed != self.submitted

    def warnings(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        if self.disagrees:
            found.append(
                {
                    "rule": "followup.classification_mismatch",
                    "field": "classification_code",
                    "submitted": self.submitted,
                    "computed": self.computed,
                    "message": f"submitted classification {self.submitted} differs from the computed {self.computed}",
                    "message_zh": f"上报的随访分类 {self.submitted} 与平台计算的 {self.computed} 不一致",
                }
            )
        if self.urgent_referral:
            found.append(
                {
                    "rule": "followup.urgent_referral",
                    "field": "sbp",
                    "message": "SBP ≥ 180 or DBP ≥ 110: urgent referral is indicated",
                    "message_zh": "收缩压 ≥ 180 或舒张压 ≥ 110：应紧急转诊",
                }
            )
        return found


def review_followup(form: str, record: dict[str, Any]) -> FollowupReview | None:
    """The computed classification of a follow-up record, or None for other forms."""
    program = FOLLOWUP_PROGRAMS.get(form)
    if program is None:
        return None
    return FollowupReview(
        computed=classify_followup(program, record),
        submitted=str(record["classification_code"]),
        urgent_referral=needs_urgent_referral(record),
    )
