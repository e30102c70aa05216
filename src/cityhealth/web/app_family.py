"""The resident app's family members: the links booking/family.py keeps, with the member's consent.

Linking a minor takes the guardian's declaration (the consent); an adult member's link waits until the
member confirms it from their own account, on this same page. Either side may end a link. Names and ID
numbers are masked by the booking room, which audits every listing and change.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from cityhealth.booking import service
from cityhealth.booking.schemas import FamilyLinkRead, FamilyMemberCreate
from cityhealth.context import ClockDep, DatabaseDep, SessionDep, SettingsDep
from cityhealth.db.types import RowId
from cityhealth.errors import DomainError
from cityhealth.security.audit import Action as AuditAction
from cityhealth.security.audit import Outcome, record_now
from cityhealth.security.crypto import field_cipher
from cityhealth.security.principals import Principal, Scope
from cityhealth.web.session import CSRF_FIELD, csrf_ok, require_app_resident
from cityhealth.web.templating import page

router = APIRouter(include_in_schema=False)
Reader = Annotated[Principal, Depends(require_app_resident(Scope.BOOKING_READ))]
Writer = Annotated[Principal, Depends(require_app_resident(Scope.BOOKING_WRITE))]
FAMILY = "/app/family"
STALE_FORM = "表单已过期或来源无效，请刷新页面后重试。"
RELATIONSHIPS = {"child": "子女", "parent": "父母", "spouse": "配偶", "other": "其他"}
STATUSES = {"active": ("已生效", "good"), "pending": ("待对方确认", "warn"),
            "needs_member_consent": ("已成年，需本人确认", "warn"), "revoked": ("已解除", "")}
REFUSALS = {
    "real_name_check_failed": "身份证号码与姓名不匹配，请核对后重试。",
    "invalid_id_number": "请填写有效的 18 位居民身份证号码。",
    "family_self": "不能添加自己为家庭成员。",
    "guardian_declaration_required": "未成年人须由监护人声明后才能添加。",
    "adult_consents_in_person": "成年家庭成员须本人在其账户中确认，不能由他人代为声明。",
    "member_consents": "只有被添加的成员本人可以确认。",
    "family_link_not_found": "找不到这条家庭成员关系。",
    "not_found": "找不到这条家庭成员关系。",
}
REFUSED = "暂时无法办理，请稍后再试。"
NOTICES = {"added": "已添加。成年成员须本人登录后在“家庭成员”中确认。", "confirmed": "已确认，对方可以为您预约挂号。",
           "revoked": "已解除该家庭成员关系。"}


def _page(request: Request, links: list[FamilyLinkRead], *, notice: str | None = None, error: str | None = None,
          status_code: int = 200) -> HTMLResponse:
    managed = [link for link in links if link.role == "manager"]
    managers = [link for link in links if link.role == "member"]
    return page(request, "app_family.html", status_code=status_code, managed=managed, managers=managers,
                relationships=RELATIONSHIPS, statuses=STATUSES, notice=notice, error=error)


@router.get("/family", response_class=HTMLResponse)
async def family_members(request: Request, principal: Reader, session: SessionDep, clock: ClockDep,
                         settings: SettingsDep, done: Literal["added", "confirmed", "revoked"] | None = None
                         ) -> HTMLResponse:
    links = await service.family_links(session, clock, field_cipher(settings), principal)
    return _page(request, links, notice=NOTICES[done] if done else None)


async def _refused(request: Request, principal: Principal, settings: SettingsDep, clock: ClockDep,
                   database: DatabaseDep, text: str, status_code: int) -> HTMLResponse:
    async with database.transaction() as session:
        links = await service.family_links(session, clock, field_cipher(settings), principal)
    return _page(request, links, error=text, status_code=status_code)


@router.post("/family", response_class=HTMLResponse)
async def add_member(
    request: Request, principal: Writer, settings: SettingsDep, clock: ClockDep, database: DatabaseDep,
    id_number: Annotated[str, Form(max_length=32)] = "",
    name: Annotated[str, Form(max_length=64)] = "",
    relationship: Annotated[str, Form(max_length=16)] = "",
    guardian_declaration: Annotated[bool, Form()] = False,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=128)] = "",
) -> Response:
    if not csrf_ok(request, settings, csrf_token, principal.session_id):
        return await _refused(request, principal, settings, clock, database, STALE_FORM, 403)
    try:
        data = FamilyMemberCreate(id_number=id_number.strip(), name=name.strip(), relationship=relationship,
                                  guardian_declaration=guardian_declaration)
    except ValidationError:
        return await _refused(request, principal, settings, clock, database, "请完整填写身份证号码、姓名和关系。", 422)
    try:
        async with database.transaction() as session:
            await service.add_family_member(session, clock, field_cipher(settings), principal, data)
    except DomainError as exc:
        await record_now(database, clock, principal, AuditAction.CREATE, service.FAMILY_LINK, outcome=Outcome.DENIED,
                         resident_ids=[principal.resident_id], detail=exc.code)
        return await _refused(request, principal, settings, clock, database, REFUSALS.get(exc.code, REFUSED),
                              exc.status)
    return RedirectResponse(f"{FAMILY}?done=added", status_code=303)


@router.post("/family/{link_id}", response_class=HTMLResponse)
async def change_link(
    request: Request, link_id: RowId, principal: Writer, settings: SettingsDep, clock: ClockDep,
    database: DatabaseDep, action: Annotated[Literal["confirm", "revoke"], Form()],
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=128)] = "",
) -> Response:
    if not csrf_ok(request, settings, csrf_token, principal.session_id):
        return await _refused(request, principal, settings, clock, database, STALE_FORM, 403)
    try:
        async with database.transaction() as session:
            if action == "confirm":
                await service.confirm_family_link(session, clock, field_cipher(settings), principal, link_id)
            else:
                await service.revoke_family_link(session, clock, field_cipher(settings), principal, link_id)
    except DomainError as exc:  # another resident's link is not found (404), as the API answers
        return await _refused(request, principal, settings, clock, database, REFUSALS.get(exc.code, REFUSED),
                              exc.status)
    return RedirectResponse(f"{FAMILY}?done={'confirmed' if action == 'confirm' else 'revoked'}", status_code=303)
