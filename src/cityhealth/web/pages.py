"""The web pages: the landing page and the monthly bulletin (page and downloads); `install` mounts the rest.

Everything a page needs is served here (CSS, SVG charts, no script from elsewhere, no web fonts): the
machine running the platform may have no internet. The bulletin and the dashboard's aggregates are
public, as the printed bulletin is; record-level pages need an operator login (web/session.py).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from cityhealth.context import ClockDep, DatabaseDep, SessionDep
from cityhealth.errors import ValidationFailed
from cityhealth.reporting import issues, month_loads, profiles
from cityhealth.reporting import service as reporting_service
from cityhealth.reporting.model import BulletinData
from cityhealth.reporting.schemas import PublicationProfileRead
from cityhealth.reporting.service import Edition
from cityhealth.web import (
    booking,
    bulletin_editor,
    dashboard,
    hotline_desk,
    login,
    sources,
    telemed_worklist,
    work_orders,
)
from cityhealth.web.session import LoginRequired, login_redirect
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


@router.get("/", response_class=HTMLResponse)
async def landing(request: Request, session: SessionDep, clock: ClockDep) -> HTMLResponse:
    months = await sources.months_with_data(session, clock)
    # Without data in the window, the latest bulletin is last month's (an issue reports the month before).
    latest = months[0] if months else sources.shift_month(sources.business_month(clock.now()), -1)
    return page(request, "index.html", latest=latest, latest_has_data=bool(months))


@router.get("/bulletin/", response_class=HTMLResponse)
async def bulletin_index(request: Request, session: SessionDep, clock: ClockDep,
                         month: Annotated[str | None, Query(max_length=16)] = None) -> Response:
    if month:  # the "go to month" form
        return RedirectResponse(f"/bulletin/{sources.parse_month(month)}", status_code=303)
    months = await sources.months_with_data(session, clock)
    return page(request, "bulletin_index.html", months=months, window=sources.INDEX_MONTHS,
                current=sources.business_month(clock.now()), downloads=list(DOWNLOADS),
                published=await issues.published_issues(session))


def _edition(edition: str) -> tuple[str, str | None]:
    """"2022-06" → ("2022-06", None); "2022-06.docx" → ("2022-06", "docx"); 422 for anything else."""
    month, dot, extension = edition.partition(".")
    sources.parse_month(month)
    if dot and extension not in DOWNLOADS:
        raise ValidationFailed(f"a bulletin downloads as {', '.join(DOWNLOADS)}, not {extension!r}",
                               field="format", value=extension, rule="format.unsupported")
    return month, extension if dot else None


async def _bulletin(database: DatabaseDep, month: str) -> tuple[BulletinData, PublicationProfileRead | None]:
    """The month's figures and its region's publication profile (the footer block), read in one snapshot."""
    async with database.transaction() as session:
        if not database.is_sqlite:
            # Booking and collection figures are read from one snapshot, as the CLI reads them.
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        data = await reporting_service.build_bulletin(session, month)
        return data, await profiles.profile_for_issue(session, data.region.code)


def _with_site_bar(html: str, month: str) -> str:
    """The HTML edition as the reporting room renders it, with the site's navigation bar on top."""
    if "</head>" not in html or "<body>" not in html:
        return html
    bar = environment().get_template("_bulletin_bar.html").render(
        month=month, previous=sources.shift_month(month, -1), following=sources.shift_month(month, 1),
        downloads=list(DOWNLOADS))
    html = html.replace("</head>", '<link rel="stylesheet" href="/static/bar.css">\n</head>', 1)
    return html.replace("<body>", "<body>\n" + bar, 1)


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
    if published is not None:  # a published issue is served as it was published, whatever the data since
        _, content = published
        if extension is None:
            return HTMLResponse(_with_site_bar(content.decode("utf-8"), month))
        return Response(content, media_type=DOWNLOADS[extension][1],
                        headers={"Content-Disposition": f'attachment; filename="bulletin-{month}.{extension}"'})
    data, profile = await _bulletin(database, month)
    if extension is None:
        html = await anyio.to_thread.run_sync(reporting_service.render, data, Edition.HTML)
        return HTMLResponse(_with_site_bar(html.decode("utf-8"), month))
    fmt, media_type = DOWNLOADS[extension]
    content = await anyio.to_thread.run_sync(functools.partial(reporting_service.render, data, fmt, profile=profile))
    return Response(content, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="bulletin-{month}.{extension}"'})


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)  # noqa: S101 - registered for LoginRequired only
    return login_redirect(exc, request.app.state.settings)


router.include_router(dashboard.router)
router.include_router(bulletin_editor.router)  # the bulletin editor's console: drafts, previews, publishing
router.include_router(login.router)
router.include_router(booking.router)  # the resident booking pages (web/booking*.py)
router.include_router(work_orders.router)  # the hotline's and the organizations' work-order pages
router.include_router(hotline_desk.router)  # the hotline agent desk and supervisor pages
router.include_router(telemed_worklist.router)  # the reading centres' worklist and the requesters' cases


def install(app: FastAPI) -> None:
    """Mount the pages, their static assets at /static, and the redirect of anonymous visits to /login."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(LoginRequired, _login_required)
