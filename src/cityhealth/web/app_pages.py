"""The resident app's pages behind the sign-in: my family doctor, my readings and follow-ups, the map.

Each reads the signed-in resident's own data only (the principal's resident; no page takes a resident id),
through the owning room's use cases, which audit the read. The map's facts are public (facilities and
today's free slots, as GET /api/booking/nearby answers them); the family members' page is web/app_family.py.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from cityhealth.booking.service import nearby, runtime_of
from cityhealth.context import ClockDep, DatabaseDep, SessionDep
from cityhealth.records import mine
from cityhealth.registry.service import NearQuery
from cityhealth.security.principals import Principal, Scope
from cityhealth.web import app_family
from cityhealth.web.session import require_app_resident
from cityhealth.web.templating import page

router = APIRouter(include_in_schema=False)
Self = Annotated[Principal, Depends(require_app_resident(Scope.RESIDENT_SELF))]
MapReader = Annotated[Principal, Depends(require_app_resident(Scope.BOOKING_READ))]

ROLES = {"doctor": "家庭医生", "nurse": "护士", "public_health": "公卫人员"}
CONTRACT_STATUSES = {"active": "生效中", "renewed": "已续约", "expired": "已到期", "cancelled": "已解约",
                     "switched": "已改签"}
PROGRAMS = {"hypertension": "高血压", "diabetes": "2 型糖尿病"}
# The national follow-up form's classification codes and the next step the rules set.
CLASSIFICATIONS = {"1": ("控制满意", "good"), "2": ("控制不满意", "warn"), "3": ("药物不良反应", "warn"),
                   "4": ("并发症", "bad")}
NEXT_STEPS = {"routine": "按常规 3 个月内随访", "recheck": "2 周内复查随访", "refer": "建议转诊，2 周内随访确认"}

# Where the map searches when the browser gives no position: each district's centre (its government's
# seat, WGS-84, rounded to 0.001°). 鼓楼区 first: the default.
DISTRICTS = {
    "320106": ("鼓楼区", 32.066, 118.770), "320102": ("玄武区", 32.048, 118.797),
    "320104": ("秦淮区", 32.023, 118.796), "320105": ("建邺区", 32.004, 118.732),
    "320111": ("浦口区", 32.059, 118.628), "320113": ("栖霞区", 32.096, 118.909),
    "320114": ("雨花台区", 31.992, 118.779), "320115": ("江宁区", 31.953, 118.840),
    "320116": ("六合区", 32.323, 118.822), "320117": ("溧水区", 31.651, 119.028),
    "320118": ("高淳区", 31.328, 118.892),
}
DEFAULT_DISTRICT = "320106"
RADII_M = (1000, 3000, 5000, 10000, 20000)
DEFAULT_RADIUS_M = 5000
MAP_PAGE = 20


@router.get("/doctor", response_class=HTMLResponse)
async def my_doctor(request: Request, principal: Self, session: SessionDep, clock: ClockDep) -> HTMLResponse:
    doctor = await mine.my_doctor(session, clock, principal)
    return page(request, "app_doctor.html", doctor=doctor, roles=ROLES, statuses=CONTRACT_STATUSES)


@router.get("/readings", response_class=HTMLResponse)
async def my_readings(request: Request, principal: Self, session: SessionDep, clock: ClockDep) -> HTMLResponse:
    programs = await mine.my_programs(session, clock, principal)
    return page(request, "app_readings.html", programs=programs, names=PROGRAMS, classifications=CLASSIFICATIONS,
                next_steps=NEXT_STEPS)


def _coordinate(value: str | None, low: float, high: float) -> float | None:
    """A coordinate the browser sent, or None for none or a malformed one (the page then says so)."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and low <= number <= high else None


@router.get("/map", response_class=HTMLResponse)
async def the_map(
    request: Request, principal: MapReader, database: DatabaseDep, clock: ClockDep,
    latitude: Annotated[str | None, Query(max_length=32)] = None,
    longitude: Annotated[str | None, Query(max_length=32)] = None,
    district: Annotated[str | None, Query(max_length=6)] = None,
    radius_m: Annotated[int, Query(ge=0, le=1_000_000)] = DEFAULT_RADIUS_M,
) -> HTMLResponse:
    problem = None
    lat, lng = _coordinate(latitude, -90, 90), _coordinate(longitude, -180, 180)
    located = lat is not None and lng is not None
    if (latitude or longitude) and not located:
        problem = "定位坐标无效，已改用所选区的中心位置。"
    chosen = district if district in DISTRICTS else DEFAULT_DISTRICT
    if lat is None or lng is None:
        _, lat, lng = DISTRICTS[chosen]
    if radius_m not in RADII_M:
        problem, radius_m = f"搜索半径只能选 {'、'.join(f'{r // 1000} 公里' for r in RADII_M)}。", DEFAULT_RADIUS_M
    query = NearQuery(latitude=lat, longitude=lng, crs="wgs84", radius_m=radius_m, service=None, open_now=False,
                      limit=MAP_PAGE, offset=0)
    async with database.transaction() as session:
        found = await nearby(session, database, clock, runtime_of(request.app.state), principal, query)
    return page(request, "app_map.html", status_code=422 if problem else 200,
                found=found, problem=problem, located=located, districts=DISTRICTS, district=chosen,
                radii=RADII_M, radius_m=radius_m)


router.include_router(app_family.router)
