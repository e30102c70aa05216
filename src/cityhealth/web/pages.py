"""The web pages: the landing page and the monthly bulletin (page and downloads); `install` mounts the rest.

Everything a page needs is served here (CSS, SVG charts, no script from elsewhere, no web fonts): the
machine running the platform may have no internet. The published bulletin and the dashboard's aggregates
are public, as the printed bulletin is; a month not yet published is the bulletin editors' (a preview, never
cached), and record-level pages need an operator login (web/session.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from cityhealth.context import ClockDep, DatabaseDep, SessionDep
from cityhealth.errors import NotFound, ValidationFailed
from cityhealth.reporting import issues, month_loads
from cityhealth.reporting.schemas import IssueRead
from cityhealth.reporting.service import Edition
from cityhealth.reporting.sources import NoFigures
from cityhealth.security.principals import Principal, Scope
from cityhealth.web import (
    app,
    booking,
    bulletin_editor,
    dashboard,
    hotline_desk,
    login,
    sources,
    telemed_worklist,
    work_orders,
)
from cityhealth.web.session import LoginRequired, apply_cookies, login_redirect, optional_staff
from cityhealth.web.templating import environment, page

STATIC_DIR = Path(__file__).resolve().parent / "static"
DOWNLOADS = {
    "json": (Edition.JSON, "application/json"),
    "md": (Edition.MD, "text/markdown; charset=utf-8"),
    "docx": (Edition.DOCX, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "pdf": (Edition.PDF, "application/pdf"),  # printed by LibreOffice: 503 edition_unavailable without it
}

LOADING_REFRESH_S = 10  # how often the page of a bulletin still being loaded reloads itself


async def _month_loads(request: Request, database: DatabaseDep) -> None:
    """Months still being loaded, for the progress banner every page shows (web/templates/_loading.html)."""
    async with database.transaction() as session:
        request.state.month_loads = await month_loads.unfinished(session)


router = APIRouter(include_in_schema=False, dependencies=[Depends(_month_loads)])
# A signed-in member of staff on the public pages, or None: the bulletin's editors also see unpublished months.
Visitor = Annotated[Principal | None, Depends(optional_staff)]


def _is_editor(principal: Principal | None) -> bool:
    return principal is not None and principal.has(Scope.BULLETIN_EDIT)


@router.get("/", response_class=HTMLResponse)
async def landing(request: Request, session: SessionDep) -> HTMLResponse:
    published = await issues.published_issues(session)
    return page(request, "index.html", latest=published[0] if published else None)


@router.get("/bulletin/", response_class=HTMLResponse)
async def bulletin_index(request: Request, session: SessionDep, clock: ClockDep, visitor: Visitor,
                         month: Annotated[str | None, Query(max_length=16)] = None) -> Response:
    if month:  # the "go to month" form
        return RedirectResponse(f"/bulletin/{sources.parse_month(month)}", status_code=303)
    published = await issues.published_issues(session)
    unpublished: list[str] = []
    if _is_editor(visitor):  # the months the editor could publish: the public sees only what is published
        issued = {issue.month for issue in published}
        unpublished = [month for month in await sources.months_with_data(session, clock) if month not in issued]
    return page(request, "bulletin_index.html", published=published, unpublished=unpublished,
                is_editor=_is_editor(visitor), window=sources.INDEX_MONTHS,
                current=sources.business_month(clock.now()), downloads=list(DOWNLOADS))


def _edition(edition: str) -> tuple[str, str | None]:
    """"2022-06" → ("2022-06", None); "2022-06.docx" → ("2022-06", "docx"); 422 for anything else."""
    month, dot, extension = edition.partition(".")
    sources.parse_month(month)
    if dot and extension not in DOWNLOADS:
        raise ValidationFailed(f"a bulletin downloads as {', '.join(DOWNLOADS)}, not {extension!r}",
                               field="format", value=extension, rule="format.unsupported")
    return month, extension if dot else None


async def _preview(database: DatabaseDep, month: str, fmt: Edition) -> tuple[IssueRead | None, bytes]:
    """The editor's preview of an unpublished month (its draft, or its figures), read in one snapshot."""
    async with database.transaction() as session:
        if not database.is_sqlite:
            # Booking and collection figures are read from one snapshot, as the CLI reads them.
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        return await issues.unpublished_edition(session, month, fmt)


def _neighbours(months: list[str], month: str) -> tuple[str | None, str | None]:
    """The published months just before and just after `month`, where there are any."""
    earlier = [other for other in months if other < month]
    later = [other for other in months if other > month]
    return (max(earlier) if earlier else None), (min(later) if later else None)


def _with_site_bar(html: str, month: str, *, previous: str | None, following: str | None, downloads: list[str],
                   is_preview: bool = False, draft: IssueRead | None = None) -> str:
    """The HTML edition as the reporting room renders it, with the site's navigation bar on top (and, on an
    editor's preview of an unpublished month, the banner saying so)."""
    if "</head>" not in html or "<body>" not in html:
        return html
    bar = environment().get_template("_bulletin_bar.html").render(
        month=month, previous=previous, following=following, downloads=downloads, is_preview=is_preview,
        draft=draft)
    html = html.replace("</head>", '<link rel="stylesheet" href="/static/bar.css">\n</head>', 1)
    return html.replace("<body>", "<body>\n" + bar, 1)


def _download(content: bytes, month: str, extension: str, *, name: str = "", private: bool = False) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="bulletin-{month}{name}.{extension}"'}
    if private:
        headers["Cache-Control"] = "no-store"
    return Response(content, media_type=DOWNLOADS[extension][1], headers=headers)


@router.get("/bulletin/{edition}", response_class=HTMLResponse)
async def bulletin(edition: str, request: Request, database: DatabaseDep) -> Response:
    month, extension = _edition(edition)
    load = next((load for load in request.state.month_loads if load.month == month), None)
    if load is not None:
        if extension is not None:
            month_loads.refuse_partial(load)  # a download is the bulletin itself: 409 until the month is whole
        return page(request, "bulletin_loading.html", load=load, refresh_s=LOADING_REFRESH_S)
    fmt = DOWNLOADS[extension][0] if extension is not None else Edition.HTML
    async with database.transaction() as session:
        published = await issues.published_edition(session, None, month, fmt)
        issued = [] if published is None or extension else await issues.published_issues(session)
    if published is not None:  # a published issue is served as it was published, whatever the data since
        issue, content = published
        if extension is not None:
            return _download(content, month, extension)
        previous, following = _neighbours([other.month for other in issued], month)
        formats = {stored.format for stored in issue.editions}
        return HTMLResponse(_with_site_bar(content.decode("utf-8"), month, previous=previous, following=following,
                                           downloads=[name for name in DOWNLOADS if name in formats]))
    # Not published: the month's figures are unreviewed, so only the bulletin's editors see them (a preview).
    if not _is_editor(await optional_staff(request)):
        if extension is not None:
            raise NotFound(f"the bulletin of {month} is not published", field="month", value=month,
                           rule="bulletin.issue.published_exists")
        response = page(request, "bulletin_unpublished.html", status_code=404, month=month)
        response.headers["Cache-Control"] = "no-store"  # it is published one day: no cache keeps the 404
        return response
    return await _editor_preview(request, database, month, extension)


async def _editor_preview(request: Request, database: DatabaseDep, month: str, extension: str | None) -> Response:
    """An unpublished month for its editor: the page with the preview banner, or a download marked as such;
    neither kept by any cache."""
    fmt = DOWNLOADS[extension][0] if extension is not None else Edition.HTML
    try:
        draft, content = await _preview(database, month, fmt)
    except NoFigures:
        if extension is not None:
            raise  # a download is the bulletin itself: its problem document says why there is none
        # A page saying so, where the editor was looking for a preview, rather than a problem document.
        empty = page(request, "bulletin_no_figures.html", status_code=404, month=month,
                     previous=sources.shift_month(month, -1), following=sources.shift_month(month, 1))
        empty.headers["Cache-Control"] = "no-store"
        return empty
    response: Response
    if extension is not None:
        response = _download(content, month, extension, name="-unpublished", private=True)
    else:
        response = HTMLResponse(_with_site_bar(
            content.decode("utf-8"), month, previous=sources.shift_month(month, -1),
            following=sources.shift_month(month, 1), downloads=list(DOWNLOADS), is_preview=True, draft=draft),
            headers={"Cache-Control": "no-store"})
    apply_cookies(request, response, request.app.state.settings)
    return response


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)  # noqa: S101 - registered for LoginRequired only
    return login_redirect(exc, request.app.state.settings)


router.include_router(dashboard.router)
router.include_router(bulletin_editor.router)  # the bulletin editor's console: drafts, previews, publishing
router.include_router(login.router)
router.include_router(booking.router)  # the resident booking pages (web/booking*.py)
router.include_router(app.router)  # the resident app (web/app*.py)
router.include_router(work_orders.router)  # the hotline's and the organizations' work-order pages
router.include_router(hotline_desk.router)  # the hotline agent desk and supervisor pages
router.include_router(telemed_worklist.router)  # the reading centres' worklist and the requesters' cases


def install(app: FastAPI) -> None:
    """Mount the pages, their static assets at /static, and the redirect of anonymous visits to /login."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(LoginRequired, _login_required)
