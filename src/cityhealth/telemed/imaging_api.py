"""Remote imaging API: a member institution records a study its PACS holds (metadata and image counts, never
the pixels) and reports it. The PACSs are the platform's configuration (`Settings.telemed_pacs`, name -> DICOMweb
root), reached through `files.pacs_named` like a case's studies."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from cityhealth.context import ClockDep, SessionDep, SettingsDep
from cityhealth.db.types import RowId
from cityhealth.registry import service as registry
from cityhealth.security.dependencies import refusals_audited, require
from cityhealth.security.principals import Principal, Scope
from cityhealth.telemed import files, imaging

router = APIRouter(prefix="/api/telemed/imaging", tags=["telemed"], route_class=refusals_audited("telemed_imaging"))
Requester = Annotated[Principal, Depends(require(Scope.TELEMED_REQUEST))]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=imaging.MAX_REPORT_CHARS)]


class StudyRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pacs: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] = Field(
        description="The PACS's name in the platform's configuration"
    )
    study_instance_uid: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    # No case here: a study is put under a case only through the case's own route (files_api), behind its
    # object rule and its one-case check.


class StudyReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    findings: Text
    impression: Text
    sign: bool = Field(False, description="Sign the report final (it is then fixed)")


@router.post(
    "/studies",
    response_model=imaging.StudyView,
    summary="Record a study the named PACS holds: its metadata and its images counted (idempotent on its UID)",
)
async def record_study(
    principal: Requester, session: SessionDep, clock: ClockDep, settings: SettingsDep, data: StudyRecord
) -> imaging.StudyView:
    async with files.pacs_named(settings, data.pacs) as pacs:
        cipher = registry.cipher_for(settings)
        return await imaging.record_study(
            session, clock, cipher, principal, pacs, data.study_instance_uid
        )


@router.put(
    "/studies/{study_id}/report",
    response_model=imaging.ReportView,
    summary="Write the study's report, signing it final when asked (by the organization that recorded it)",
)
async def write_report(
    principal: Requester, session: SessionDep, clock: ClockDep, study_id: RowId, data: StudyReport
) -> imaging.ReportView:
    await imaging.require_recorder(session, principal, study_id)
    return await imaging.write_report(
        session, clock, principal, study_id, findings=data.findings, impression=data.impression, sign=data.sign
    )
