"""create_app(): mounts each domain's router, error handlers and middleware; nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cityhealth import __version__, apidocs, ops, queue
from cityhealth.booking import api as booking_api
from cityhealth.booking import family_api, sanctions_api, scheduler_api
from cityhealth.booking import feed_api as booking_feed_api
from cityhealth.booking import jobs as booking_jobs
from cityhealth.booking import messages_api as booking_messages_api
from cityhealth.booking import nearby_api as booking_nearby_api
from cityhealth.booking import waitlist_api as booking_waitlist_api
from cityhealth.clock import Clock, SimulatedClock, SystemClock
from cityhealth.collection import api as collection_api
from cityhealth.collection import tasks as collection_tasks
from cityhealth.config import Environment, Settings, load_settings
from cityhealth.db.engine import Database
from cityhealth.db.failures import DatabaseFailureMiddleware
from cityhealth.db.schema import ensure_durable, ensure_schema_current
from cityhealth.errors import ConfigurationError
from cityhealth.hotline import api as hotline_api
from cityhealth.hotline import desk_api as hotline_desk_api
from cityhealth.hotline import knowledge_api as hotline_knowledge_api
from cityhealth.hotline import tasks as hotline_tasks
from cityhealth.hotline import work_order_api as hotline_work_order_api
from cityhealth.observability import (
    BodyLimitMiddleware,
    Metrics,
    RequestContextMiddleware,
    install_error_handlers,
)
from cityhealth.records import api as records_api
from cityhealth.records import chronic_api as records_chronic_api
from cityhealth.records import chronic_tasks as records_chronic_tasks
from cityhealth.records import family_api as records_family_api
from cityhealth.records import tasks as records_tasks
from cityhealth.registry import accounts as registry_accounts
from cityhealth.registry import api as registry_api
from cityhealth.registry import facility_api as registry_facility_api
from cityhealth.reporting import api as reporting_api
from cityhealth.security import api as security_api
from cityhealth.security import http as security_http
from cityhealth.security import tasks as security_tasks
from cityhealth.strict_json import StrictJsonMiddleware
from cityhealth.telemed import api as telemed_api
from cityhealth.telemed import files_api as telemed_files_api
from cityhealth.telemed import imaging_api as telemed_imaging_api
from cityhealth.telemed import pathology_api as telemed_pathology_api
from cityhealth.web import pages as web_pages
from cityhealth.worker import ServerWorker

# The rooms' task modules: importing them registers their tasks and periodic work with the queue.
TASK_MODULES = (booking_jobs, collection_tasks, hotline_tasks, records_chronic_tasks, records_tasks, security_tasks)
# Bodies on these paths are streamed by their handlers, which enforce their own limits.
STREAMING_UPLOAD_PATHS = ("/api/collection/jobs",)
# Bodies on these paths are parsed by their handlers with the same strict parser (orjson) the strict-JSON
# middleware uses: the real-time upload, the hot path, is not parsed twice.
SELF_PARSED_PATHS = (*STREAMING_UPLOAD_PATHS, "/api/collection/forms/")


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    settings = settings or load_settings()
    if isinstance(clock, SimulatedClock) and (
        settings.env is Environment.PRODUCTION or not settings.simulated_clock
    ):
        raise ConfigurationError("a simulated clock needs CITYHEALTH_SIMULATED_CLOCK=true outside production")
    database = database or Database(settings.effective_database_url)
    clock = clock or SystemClock()
    tasks = queue.Runtime(settings, database, clock)
    # Periodic work only on the system clock: a simulated clock's driver runs it as it moves the clock.
    run_periodic = isinstance(clock, SystemClock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_durable(database)
        await ensure_schema_current(database)
        runner = None
        worker = None
        if database.is_sqlite:
            runner = queue.LocalRunner(tasks, run_periodic=run_periodic)
            await runner.start()
        elif settings.server_worker_concurrency:
            worker = ServerWorker(tasks, concurrency=settings.server_worker_concurrency,
                                  run_periodic=run_periodic)
        app.state.task_runner = runner
        try:
            yield
        finally:
            if runner is not None:
                await runner.close()
            if worker is not None:
                await worker.stop()
            await tasks.close()
            await database.dispose()

    app = FastAPI(
        title="cityhealth",
        version=__version__,
        description="City health information platform API",
        lifespan=lifespan,
        docs_url=None,  # served by apidocs with local assets
        redoc_url=None,
        # FastAPI's native OpenTelemetry: the platform installs no OpenTelemetry provider (its metrics are
        # Prometheus', its traces the request id), so it is off rather than asked about on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.database = database
    app.state.clock = clock
    app.state.tasks = tasks
    app.state.metrics = Metrics()

    # Added first, so innermost: the attempt routes' and the real-time upload's direct ways past the router
    # (booking/api.py, collection/api.py).
    app.add_middleware(booking_api.AttemptLane)
    app.add_middleware(collection_api.UploadLane)
    # Around the routes and the lanes, inside the platform's 500: a database that is gone or full, whatever
    # class its error arrives in, is answered 503 + Retry-After / 507 (db/failures.py).
    app.add_middleware(DatabaseFailureMiddleware)
    install_error_handlers(app)
    app.add_middleware(StrictJsonMiddleware, self_parsed_paths=SELF_PARSED_PATHS)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_request_bytes,
                       large_body_paths=STREAMING_UPLOAD_PATHS)
    security_http.install(app, settings)
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)

    # Routes are matched one by one in this order (each match costs a few µs in FastAPI): the three health routes
    # (an anonymous probe must reach them before any rate-limited route), then the two hot paths, booking
    # attempts and real-time uploads. The prefixes do not overlap, so the order decides nothing else.
    app.include_router(ops.router)
    app.include_router(booking_api.router)
    app.include_router(booking_waitlist_api.router)
    app.include_router(booking_messages_api.router)
    app.include_router(booking_messages_api.links)
    app.include_router(collection_api.router)
    app.include_router(booking_feed_api.router)
    app.include_router(booking_nearby_api.router)  # the medical e-map's near search
    app.include_router(family_api.router)
    app.include_router(scheduler_api.router)
    app.include_router(sanctions_api.router)
    app.include_router(hotline_desk_api.router)
    app.include_router(hotline_api.router)
    app.include_router(registry_api.router)
    app.include_router(registry_facility_api.router)  # the medical e-map's facility profiles
    app.include_router(security_api.router)
    app.include_router(registry_accounts.router)
    app.include_router(hotline_knowledge_api.router)
    app.include_router(hotline_work_order_api.router)
    app.include_router(telemed_api.router)
    app.include_router(telemed_pathology_api.router)
    app.include_router(telemed_files_api.router)  # a case's ECG tracings and imaging studies
    app.include_router(telemed_imaging_api.router)
    app.include_router(records_family_api.router)
    app.include_router(records_chronic_api.router)
    app.include_router(reporting_api.router)  # the bulletin's publication profile
    app.include_router(records_api.router)
    app.include_router(records_api.operators)
    apidocs.install(app)
    web_pages.install(app)  # the pages, /static, and the redirect of anonymous visits to /login
    return app
