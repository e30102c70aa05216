"""The bulletin editor's console: draft a month's issue in Markdown, preview each edition, publish.

Every step is the reporting room's use case (reporting/issues.py), as the API's are; forms post with a
CSRF token and come back to the issue (post, redirect, get). Drafts and previews need `bulletin.edit`; the
public sees an issue only once it is published (web/pages.py serves the archived editions).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from cityhealth.context import SettingsDep
from cityhealth.db.types import RowId
from cityhealth.errors import DomainError, ValidationFailed
from cityhealth.reporting import issues
from cityhealth.reporting.schemas import CorrectionIn, IssueDraftIn
from cityhealth.reporting.service import Edition
from cityhealth.security.principals import Principal, Scope
from cityhealth.web.session import CSRF_FIELD, csrf_ok, require_login
from cityhealth.web.templating import page

router = APIRouter(prefix="/editor/bulletin", include_in_schema=False)
Editor = Annotated[Principal, Depends(require_login(Scope.BULLETIN_EDIT))]
Csrf = Annotated[str, Form(alias=CSRF_FIELD, max_length=128)]
Short = Annotated[str, Form(max_length=32)]
Markdown = Annotated[str, Form(max_length=50_000)]
HOME = "/editor/bulletin"
STALE_FORM = "表单已过期或来源无效，请刷新页面后重试。"
MEDIA_TYPES = {Edition.HTML: "text/html; charset=utf-8", Edition.MD: "text/markdown; charset=utf-8",
               Edition.JSON: "application/json", Edition.PDF: "application/pdf",
               Edition.DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}


async def _home(request: Request, *, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    async with request.app.state.database.transaction() as session:
        drafts = await issues.drafts(session)
        published = await issues.published_issues(session)
    return page(request, "bulletin_editor.html", status_code=status_code, drafts=drafts, published=published,
                error=error, editions=[edition.value for edition in Edition])


async def _issue(request: Request, issue_id: int, *, error: str | None = None, notice: str | None = None,
                 status_code: int = 200) -> HTMLResponse:
    async with request.app.state.database.transaction() as session:
        issue, markdown = await issues.get_issue(session, issue_id)
    return page(request, "bulletin_editor_issue.html", status_code=status_code, issue=issue, markdown=markdown,
                error=error, notice=notice, editions=[edition.value for edition in Edition])


@router.get("", response_class=HTMLResponse)
async def console(request: Request, principal: Editor) -> HTMLResponse:
    return await _home(request)


@router.get("/issues/{issue_id}", response_class=HTMLResponse)
async def issue_page(request: Request, principal: Editor, issue_id: RowId, notice: str | None = None) -> Response:
    return await _issue(request, issue_id, notice={"published": "已出版。", "saved": "草稿已保存。"}.get(notice or ""))


@router.post("/issues", response_class=HTMLResponse)
async def save_draft(request: Request, principal: Editor, settings: SettingsDep, csrf_token: Csrf = "",
                     region_code: Short = "", month: Short = "", published_on: Short = "", number: Short = "",
                     total_number: Short = "", news_markdown: Markdown = "") -> Response:
    if not csrf_ok(request, settings, csrf_token, principal.session_id):
        return await _home(request, error=STALE_FORM, status_code=403)
    try:
        data = IssueDraftIn.model_validate({
            "region_code": region_code, "month": month, "news_markdown": news_markdown,
            "published_on": published_on or None, "number": number or None,
            "total_number": total_number or None})
    except ValidationError as invalid:
        where = ".".join(str(part) for part in invalid.errors()[0]["loc"])
        return await _home(request, error=f"请检查“{where}”一栏", status_code=422)
    try:
        async with request.app.state.database.transaction() as session:
            issue = await issues.draft_issue(session, request.app.state.clock, principal, data)
    except DomainError as error:
        return await _home(request, error=f"{error.message}（{error.code}）", status_code=error.status)
    return RedirectResponse(f"{HOME}/issues/{issue.id}?notice=saved", status_code=303)


@router.post("/issues/{issue_id}/publish", response_class=HTMLResponse)
async def publish(request: Request, principal: Editor, settings: SettingsDep, issue_id: RowId,
                  csrf_token: Csrf = "") -> Response:
    if not csrf_ok(request, settings, csrf_token, principal.session_id):
        return await _issue(request, issue_id, error=STALE_FORM, status_code=403)
    try:
        async with request.app.state.database.transaction() as session:
            await issues.publish_issue(session, request.app.state.clock, principal, issue_id)
    except DomainError as error:
        return await _issue(request, issue_id, error=f"{error.message}（{error.code}）", status_code=error.status)
    return RedirectResponse(f"{HOME}/issues/{issue_id}?notice=published", status_code=303)


@router.post("/issues/{issue_id}/corrections", response_class=HTMLResponse)
async def correct(request: Request, principal: Editor, settings: SettingsDep, issue_id: RowId,
                  csrf_token: Csrf = "", note: Markdown = "") -> Response:
    if not csrf_ok(request, settings, csrf_token, principal.session_id):
        return await _issue(request, issue_id, error=STALE_FORM, status_code=403)
    try:
        data = CorrectionIn.model_validate({"note": note})
    except ValidationError:
        return await _issue(request, issue_id, error="请写明更正了什么（最多 2000 字）", status_code=422)
    try:
        async with request.app.state.database.transaction() as session:
            correction = await issues.correct_issue(session, request.app.state.clock, principal, issue_id, data)
    except DomainError as error:
        return await _issue(request, issue_id, error=f"{error.message}（{error.code}）", status_code=error.status)
    return RedirectResponse(f"{HOME}/issues/{correction.id}?notice=saved", status_code=303)


@router.get("/issues/{issue_id}/preview.{extension}")
async def preview(request: Request, principal: Editor, issue_id: RowId, extension: str) -> Response:
    try:
        fmt = Edition(extension)
    except ValueError as exc:
        raise ValidationFailed(f"an issue previews as {', '.join(e.value for e in Edition)}", field="format",
                               value=extension[:16], rule="format.unsupported") from exc
    async with request.app.state.database.transaction() as session:
        issue, content = await issues.issue_edition(session, issue_id, fmt)
    disposition = "inline" if fmt in (Edition.HTML, Edition.PDF) else "attachment"
    return Response(content, media_type=MEDIA_TYPES[fmt], headers={
        "Content-Disposition": f'{disposition}; filename="bulletin-{issue.month}-r{issue.revision}.{fmt.value}"',
        "X-Content-Type-Options": "nosniff"})
