"""Collection REST API: the standard, the two upload paths, jobs, operator settings, the quality report."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette import types as asgi

from cityhealth.collection import configuration, service, uploads
from cityhealth.collection.ingest import Collector, masked_row
from cityhealth.collection.jobs import JobWaiter, collector_of, process_job, reprocess_rejections
from cityhealth.collection.quality import quality_report
from cityhealth.collection.realtime import BatchGroups
from cityhealth.collection.rules import RULES
from cityhealth.collection.schemas import (
    AssignmentCreate,
    AssignmentRead,
    BatchRead,
    EnrolmentCreate,
    EnrolmentRead,
    JobRead,
    OpeningBalanceCreate,
    OpeningBalanceRead,
)
from cityhealth.collection.standard import load_standard
from cityhealth.context import ClockDep, DatabaseDep, SessionDep, SettingsDep
from cityhealth.db.types import Int64
from cityhealth.errors import Conflict
from cityhealth.observability import answer_in_lane
from cityhealth.personal_numbers import scrub, scrub_json
from cityhealth.security.audit import Action, record
from cityhealth.security.dependencies import bearer_credentials, require, require_any
from cityhealth.security.principals import Principal, Scope


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Freeze what the server built at start (its jobs run as tasks: app.py starts the queue's runner)."""
    # Everything imported and built so far lives as long as the process: moved out of the collector's
    # sight, it is no longer walked by every full collection, which otherwise stalls requests for tens of
    # milliseconds whenever a batch's allocations trigger one.
    gc.collect()
    gc.freeze()
    yield
    groups: BatchGroups | None = getattr(app.state, "collection_batch_groups", None)
    if groups is not None:
        await groups.close()  # the real-time batches queued are written before the process ends


router = APIRouter(prefix="/api/collection", tags=["collection"], lifespan=lifespan)

_UPLOAD_GUARD = require(Scope.COLLECTION_UPLOAD)
Upload = Annotated[Principal, Depends(_UPLOAD_GUARD)]
Reader = Annotated[Principal, Depends(require(Scope.COLLECTION_READ))]
Admin = Annotated[Principal, Depends(require(Scope.COLLECTION_ADMIN))]
Anyone = Annotated[Principal, Depends(require())]
JobReader = Annotated[Principal, Depends(require_any(*service.JOB_READ_SCOPES))]
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)


def runtime(app: FastAPI) -> tuple[Collector, JobWaiter]:
    """The app's collector (shared with its in-process tasks) and a waiter for its jobs (made on first use)."""
    state = app.state
    if getattr(state, "collection_runtime", None) is None:
        state.collection_runtime = (collector_of(state.tasks), JobWaiter(state.database))
    pair: tuple[Collector, JobWaiter] = state.collection_runtime
    return pair


def batch_groups(app: FastAPI) -> BatchGroups:
    """The app's real-time batch groups (made on first use)."""
    state = app.state
    if getattr(state, "collection_batch_groups", None) is None:
        state.collection_batch_groups = BatchGroups(state.database)
    groups: BatchGroups = state.collection_batch_groups
    return groups


def _standard_document() -> dict[str, Any]:
    standard = load_standard()
    return {
        **standard.document,
        "code_tables": standard.tables_document["tables"],
        "rules": {code: {"message": en, "message_zh": zh} for code, (en, zh) in RULES.items()},
    }


@router.get("/standard", summary="The data standard, machine-readable")
async def get_standard(principal: Anyone) -> Response:
    return Response(orjson.dumps(_standard_document()), media_type="application/json")


@router.get("/standard.html", summary="The data standard, as a readable page", response_class=HTMLResponse)
async def get_standard_page(principal: Anyone) -> HTMLResponse:
    standard = load_standard()
    forms = [{**asdict(form), "fields": [asdict(f) for f in form.fields]} for form in standard.forms.values()]
    html = _templates.get_template("standard.html").render(
        doc=standard.document, forms=forms, tables=standard.tables_document["tables"], rules=RULES
    )
    return HTMLResponse(html)


@router.post("/forms/{form}/records", response_model=BatchRead, summary="Upload up to 1,000 records (real time)")
async def upload_records(form: str, request: Request, principal: Upload, dry_run: bool = False) -> Response:
    # The hot path: the clock and database come from the app's state (a dependency each costs FastAPI more to
    # solve than the read), and the answer, already a plain JSON document, is written by orjson rather than
    # re-validated record by record against BatchRead (which stays the documented shape).
    state = request.app.state
    collector = runtime(request.app)[0]
    body = await request.body()
    answer = await uploads.upload_batch(
        state.database,
        batch_groups(request.app),
        collector,
        state.clock,
        principal,
        form,
        body,
        request.headers.get("content-type", "application/json"),
        dry_run,
    )
    return Response(orjson.dumps(answer), media_type="application/json")


_FORMS_PATH = "/api/collection/forms/"
_RECORDS = "/records"


class UploadLane:
    """ASGI middleware, innermost with the booking's: a machine client's real-time upload (POST to
    /api/collection/forms/{form}/records, no query string) goes straight to `upload_records`, past
    Starlette's exception middleware, FastAPI's router (the included routers tried in turn) and its
    dependency solving — a share of the upload's CPU measured in docs/decisions/realtime-path.md. It does
    what they would: the same guard, the scope naming the route, endpoint and path parameter, an error
    answered by the app's handler for it (`answer_error`), any other error raised on to the platform's
    middleware. A query string (`dry_run`), a root path, or any other request takes the usual way."""

    def __init__(self, app: asgi.ASGIApp) -> None:
        self.app = app
        self.route = next(route for route in router.routes
                          if isinstance(route, APIRoute) and route.endpoint is upload_records)

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        path: str = scope.get("path", "")
        form = path[len(_FORMS_PATH) : -len(_RECORDS)]
        if (scope["type"] != "http" or scope["method"] != "POST" or not path.startswith(_FORMS_PATH)
                or not path.endswith(_RECORDS) or not form or "/" in form or scope.get("query_string")
                or scope.get("root_path")):
            await self.app(scope, receive, send)
            return
        async def answer(request: Request) -> Response:
            return await upload_records(form, request, await _UPLOAD_GUARD(request, await bearer_credentials(request)))

        await answer_in_lane(scope, receive, send, self.route, upload_records, {"form": form}, answer)


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


@router.post("/jobs", status_code=202, response_model=JobRead, summary="Upload a bulk file (NDJSON or CSV)")
async def create_job(
    request: Request,
    response: Response,
    principal: Upload,
    clock: ClockDep,
    database: DatabaseDep,
    settings: SettingsDep,
    format: Annotated[str | None, Query(description="ndjson or csv (default: from Content-Type)")] = None,
    form: Annotated[str | None, Query(description="the form of every row (required for CSV)")] = None,
    encoding: Annotated[str | None, Query(description="utf-8 (default) or gb18030")] = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    collector = runtime(request.app)[0]
    job, created = await service.receive_job(
        request.stream(),
        database=database,
        collector=collector,
        clock=clock,
        settings=settings,
        principal=principal,
        media_type=request.headers.get("content-type", "application/x-ndjson"),
        content_encoding=request.headers.get("content-encoding", ""),
        format_=format,
        form=form,
        encoding=encoding,
        dry_run=dry_run,
        content_length=_declared_length(request),
    )
    if not created:
        response.status_code = 200  # the same file again: the existing job
    response.headers["Location"] = f"/api/collection/jobs/{job.id}"
    return service.job_view(job)


@router.get("/jobs/{job_id}", response_model=JobRead, summary="A job's progress and summary")
async def get_job(job_id: Int64, principal: JobReader, session: SessionDep) -> dict[str, Any]:
    return service.job_view(await service.job_for(session, principal, job_id))


@router.get("/jobs/{job_id}/rejections", summary="A job's rejected rows, NDJSON, each with its errors")
async def get_job_rejections(
    job_id: Int64,
    principal: JobReader,
    session: SessionDep,
    clock: ClockDep,
    database: DatabaseDep,
) -> StreamingResponse:
    job = await service.job_for(session, principal, job_id)
    record(session, clock, principal, Action.EXPORT, "collection_job_rejections", resource_id=job.id)

    async def lines() -> AsyncIterator[bytes]:
        after = 0
        while True:
            async with database.transaction() as page_session:
                page = await service.job_rejections_page(page_session, job_id, after, 1000)
            if not page:
                return
            for row in page:
                # Masked again as they leave: rows a job stored before every field was masked are still held.
                yield (
                    orjson.dumps(
                        {
                            "position": row.position,
                            "form": row.form,
                            "record_id": None if row.record_id is None else scrub(row.record_id),
                            "errors": scrub_json(row.errors),
                            "row": masked_row(row.row),
                        }
                    )
                    + b"\n"
                )
            after = page[-1].position

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.post(
    "/jobs/{job_id}/rerun",
    response_model=JobRead,
    summary="Resume an unfinished job, or re-run a completed job's rejected rows (after a code table was fixed)",
)
async def rerun_job(
    job_id: Int64, request: Request, principal: Admin, clock: ClockDep, database: DatabaseDep
) -> dict[str, Any]:
    collector, _ = runtime(request.app)
    # No request transaction: the work runs in transactions of its own, chunk by chunk.
    async with database.transaction() as session:
        status = (await service.job_to_rerun(session, job_id)).status
    if status == "completed":
        await reprocess_rejections(database, collector, clock, job_id)
    else:
        try:
            await process_job(database, collector, clock, job_id)
        except Conflict:
            raise
        except Exception:  # noqa: S110 - the failure is recorded on the job row, which the answer shows
            pass
    async with database.transaction() as session:
        return service.job_view(await service.job_for(session, principal, job_id))


@router.get("/quality", summary="The monthly data-collection quality report (the bulletin's two tables)")
async def get_quality(
    principal: Reader, session: SessionDep, month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")]
) -> dict[str, Any]:
    return await quality_report(session, month)


@router.post(
    "/enrolments",
    status_code=201,
    response_model=EnrolmentRead,
    summary="Enrol a unit in real-time monitoring for a group",
)
async def create_enrolment(body: EnrolmentCreate, principal: Admin, session: SessionDep, clock: ClockDep) -> Any:
    return await configuration.enrol(session, clock, body.organization_code, body.group, body.start_date, body.end_date)


@router.get("/enrolments", response_model=list[EnrolmentRead])
async def get_enrolments(principal: Reader, session: SessionDep) -> Any:
    return await configuration.list_enrolments(session)


@router.post(
    "/assignments",
    status_code=201,
    response_model=list[AssignmentRead],
    summary="Assign the forms a unit is expected to send",
)
async def create_assignments(body: AssignmentCreate, principal: Admin, session: SessionDep, clock: ClockDep) -> Any:
    return await configuration.assign_forms(
        session, clock, body.organization_code, body.forms, body.start_date, body.end_date
    )


@router.get("/assignments", response_model=list[AssignmentRead])
async def get_assignments(principal: Reader, session: SessionDep) -> Any:
    return await configuration.list_assignments(session)


@router.put("/opening-balances", response_model=OpeningBalanceRead, summary="Record an opening balance")
async def put_opening_balance(
    body: OpeningBalanceCreate, principal: Admin, session: SessionDep, clock: ClockDep
) -> Any:
    return await configuration.record_opening_balance(
        session,
        clock,
        body.kind,
        body.count,
        body.as_of,
        organization_code=body.organization_code,
        area_code=body.area_code,
    )
