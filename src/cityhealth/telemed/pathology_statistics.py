"""The pathology network's cumulative figures for the bulletin: hospitals, experts, doctors, cases, reports,
case-discussion meetings and video lectures of a city's members at a moment, each one indexed count."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import business_date
from cityhealth.errors import ValidationFailed
from cityhealth.telemed import pathology_repository as repository
from cityhealth.telemed.pathology_models import PathologyLecture, PathologyMeeting
from cityhealth.telemed.pathology_schemas import PathologyTotals

__all__ = ["PathologyTotals", "pathology_totals"]


async def pathology_totals(session: AsyncSession, city_code: str, until: datetime) -> PathologyTotals:
    """The figures at `until` for the pathology members of the city: members active on `until`'s business day;
    experts and doctors registered by then, not deactivated, of an organization then a member; the cases
    those members submitted by `until` and the reports on them signed by then; meetings and lectures those
    members organized and recorded held by `until`."""
    if until.tzinfo is None:
        raise ValidationFailed(
            "until: an aware moment is needed", field="until", value=until.isoformat(), rule="telemed.pathology.until"
        )
    on = business_date(until)
    cases, reports = await repository.count_cases(session, city_code, until)
    return PathologyTotals(
        hospitals=await repository.count_members(session, city_code, on),
        experts=await repository.count_people(session, "expert", city_code, until, on),
        doctors=await repository.count_people(session, "doctor", city_code, until, on),
        cases=cases,
        reports=reports,
        case_discussions=await repository.count_held(session, PathologyMeeting, city_code, until),
        video_lectures=await repository.count_held(session, PathologyLecture, city_code, until),
    )
