"""Structured JSON logs without personal data, request ids, Prometheus metrics, RFC 9457 problem details."""

from __future__ import annotations

import inspect
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityhealth import personal_numbers
from cityhealth.errors import DomainError, PayloadTooLarge
from cityhealth.request_vars import client_address_var, request_id_var

logger = logging.getLogger("cityhealth")

# Defence in depth: whatever a careless message carries, an ID number or phone never reaches the log.
# (`scrub` masks anything shaped like an ID or mobile number; the one recogniser lives in personal_numbers.)
scrub = personal_numbers.scrub


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and the record's `extra` fields."""

    _STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        standard = self._STANDARD
        for key, value in vars(record).items():
            if key not in standard and key[0] != "_":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json_line(entry)


def json_line(entry: dict[str, Any]) -> str:
    """A log entry as its scrubbed JSON line (without the line end)."""
    try:  # one line per request on the server: orjson takes a fifth of the json module's time
        line = orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # what orjson refuses (a lone surrogate, a huge integer) the json module writes
        line = json.dumps(entry, ensure_ascii=False, default=str)
    return scrub(line)


_PLAIN_STREAMS = (logging.StreamHandler, logging.FileHandler)


def _json_streams() -> list[logging.StreamHandler[Any]] | None:
    """The handlers an INFO record of `logger` reaches, when each is a plain open stream with the
    JsonFormatter and nothing filters on the way; None when anything else is there (a filter, a test's
    capturing handler, another formatter), and the record must go through the logging module."""
    if logger.disabled or logger.filters:
        return None
    found: list[logging.StreamHandler[Any]] = []
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if handler.level > logging.INFO:
                continue
            if (type(handler) not in _PLAIN_STREAMS or handler.filters or type(handler.formatter) is not JsonFormatter
                    or getattr(handler, "stream", None) is None):
                return None
            found.append(handler)  # type: ignore[arg-type]  # its exact type was checked above
        if not current.propagate:
            break
        current = current.parent
    return found


def access_log(method: str, route: str, status: int, duration_ms: float) -> None:
    """The request's JSON access line (INFO "request" with method, route, status and duration_ms).

    The line the logging module would write, written straight to the handlers' streams when they are plain
    JSON streams, as the server's are: the record, the handler chain and the formatter's walk over the
    record's attributes cost more than the request's own routing (docs/decisions/request-path-cpu.md).
    """
    if not logger.isEnabledFor(logging.INFO):
        return
    streams = _json_streams()
    fields = {"method": method, "route": route, "status": status, "duration_ms": duration_ms}
    if streams is None:
        logger.info("request", extra=fields)
        return
    entry: dict[str, Any] = {"time": datetime.fromtimestamp(time.time(), UTC).isoformat(), "level": "INFO",
                             "logger": logger.name, "message": "request"}
    request_id = request_id_var.get()
    if request_id:
        entry["request_id"] = request_id
    entry.update(fields)
    line = json_line(entry)
    for handler in streams:
        handler.acquire()
        try:
            handler.stream.write(line + handler.terminator)
            handler.flush()
        except Exception:  # as StreamHandler.emit: a failed write is reported, never raised into the request
            handler.handleError(logging.makeLogRecord({"name": logger.name, "msg": "request", "levelno": logging.INFO,
                                                       "levelname": "INFO"}))
        finally:
            handler.release()


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):  # our own access log replaces it
        logging.getLogger(noisy).handlers[:] = []
        logging.getLogger(noisy).propagate = False


class Metrics:
    """The Prometheus collectors of one app (a registry per app keeps tests independent)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cityhealth_http_requests_total", "HTTP requests", ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "cityhealth_http_request_duration_seconds", "HTTP request latency", ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class ResponseStart:
    """An ASGI `send` that notes when the response starts (and its status) before passing each message on.

    The middlewares that must know whether a response is already under way (to answer an error themselves,
    or not) share it; `on_start`, if given, runs on the start message first (to add headers, or to write
    what must be written before the caller sees anything).
    """

    __slots__ = ("_on_start", "_send", "status")

    def __init__(self, send: Send, on_start: Callable[[Message], Awaitable[None]] | None = None) -> None:
        self._send = send
        self._on_start = on_start
        self.status: int | None = None

    @property
    def started(self) -> bool:
        return self.status is not None

    async def __call__(self, message: Message) -> None:
        if self.status is None and message["type"] == "http.response.start":
            self.status = int(message["status"])
            if self._on_start is not None:
                await self._on_start(message)
        await self._send(message)


async def answer_errors(app: ASGIApp, scope: Scope, receive: Receive, send: Send,
                        answer: Callable[[Scope, Exception], Response | None]) -> None:
    """Run `app`; an error it raises before its response has started is answered with `answer(scope, error)`
    instead (None: the error is raised on). Once part of a response is out, nothing sound can be sent: it is
    raised on.

    The middlewares that turn errors into responses (the body limit's 413, the database's 503, the platform's
    500) all answer this way, each with a method of its own: nothing is built per request for the answer.
    """
    watch = ResponseStart(send)
    try:
        await app(scope, receive, watch)
    except Exception as exc:
        response = None if watch.started else answer(scope, exc)
        if response is None:
            raise
        await response(scope, receive, send)


def header(scope: Scope, name: bytes) -> bytes | None:
    """A request header's value (`name` in lower case, as ASGI servers give them); the last one if repeated."""
    found = None
    for key, value in scope.get("headers") or ():
        if key == name:
            found = value
    return None if found is None else bytes(found)


_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


class RequestContextMiddleware:
    """Request id (honouring a well-formed X-Request-ID), access log and metrics."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # (method, route, status) -> the labelled collectors: `labels()` validates and locks on every call.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = (header(scope, b"x-request-id") or b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        client = scope.get("client")
        address_token = client_address_var.set(client[0] if client else None)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        id_header = (b"x-request-id", request_id.encode())

        async def add_id(message: Message) -> None:
            message["headers"] = [*message.get("headers", ()), id_header]

        watch = ResponseStart(send, add_id)
        try:
            await self.app(scope, receive, watch)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_path = getattr(route, "path", None) or "unmatched"
            status = watch.status or 500
            method = scope["method"]
            series = self._series.get((method, route_path, status))
            if series is None:
                series = self._series[(method, route_path, status)] = (
                    self.metrics.requests.labels(method, route_path, str(status)),
                    self.metrics.latency.labels(method, route_path),
                )
            series[0].inc()
            series[1].observe(elapsed)
            access_log(method, route_path, status, round(elapsed * 1000, 2))
            request_id_var.reset(token)
            client_address_var.reset(address_token)


class BodyLimitMiddleware:
    """Refuses a body over the limit with a 413: at once when its Content-Length says so, else as soon as
    the bytes read pass it. Inside the security headers and the request id, so the 413 carries both."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, large_body_paths: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # Bulk upload endpoints stream bodies of any size and enforce their own limits.
        self.large_body_paths = large_body_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.large_body_paths and scope["path"].startswith(self.large_body_paths)):
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        request_id = scope.get("state", {}).get("request_id")
        declared = header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = problem_response(PayloadTooLarge(
                f"request body of {int(declared)} bytes exceeds the limit of {limit} bytes",
                field="body", value=int(declared), rule="max_request_bytes"), request_id)
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(received, limit)
            return message

        await answer_errors(self.app, scope, limited_receive, send, self.too_large)

    @staticmethod
    def too_large(scope: Scope, exc: Exception) -> Response | None:
        """The 413 of a body that went past the limit as it was read."""
        if not isinstance(exc, _BodyTooLarge):
            return None
        return problem_response(PayloadTooLarge(
            f"request body exceeds the limit of {exc.limit} bytes",
            field="body", value=exc.received, rule="max_request_bytes"), scope.get("state", {}).get("request_id"))


class _BodyTooLarge(Exception):
    def __init__(self, received: int, limit: int) -> None:
        self.received = received
        self.limit = limit


def problem_body(error: DomainError, request_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"https://cityhealth.dev/problems/{error.code}",
        "title": error.title,
        "status": error.status,
        "code": error.code,
        "detail": personal_numbers.scrub_json(error.message),
    }
    if error.field is not None:
        body["field"] = personal_numbers.scrub_json(error.field)
    if error.value is not None:
        body["value"] = personal_numbers.scrub_json(error.value)
    if error.rule is not None:
        body["rule"] = error.rule
    if error.errors:
        body["errors"] = personal_numbers.scrub_json(error.errors)
    if request_id:
        body["request_id"] = request_id
    return body


def problem_response(error: DomainError, request_id: str | None,
                     headers: dict[str, str] | None = None) -> Response:
    return Response(_rendered_problem(error, request_id), status_code=error.status,
                    media_type="application/problem+json", headers=headers)


# The body without its request id, by what it is made of: a release's refusals (sold out, say) repeat the same
# few, and each costs a masking of every field and a json.dumps. Only flat, hashable values (a bool's type is
# in the key: True and 1 are equal keys but render differently); bounded, as messages may carry values.
_RENDERED: dict[tuple[Any, ...], bytes] = {}
_RENDERED_MAX = 512
_FLAT_VALUES = (type(None), str, int, bool)


def _render(body: Any) -> bytes:
    """As JSONResponse renders its content."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


def _rendered_problem(error: DomainError, request_id: str | None) -> bytes:
    """problem_body(error, request_id) rendered; the same bytes JSONResponse would send."""
    if error.errors or type(error.value) not in _FLAT_VALUES:
        return _render(problem_body(error, request_id))
    key = (error.code, error.title, error.status, error.message, error.field, type(error.value), error.value,
           error.rule)
    rendered = _RENDERED.get(key)
    if rendered is None:
        if len(_RENDERED) >= _RENDERED_MAX:
            _RENDERED.clear()
        rendered = _RENDERED[key] = _render(problem_body(error, None))
    if not request_id:
        return rendered
    # The request id is the body's last member (problem_body adds it last).
    return rendered[:-1] + b',"request_id":' + _render(request_id) + b"}"


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as application/problem+json with a stable code."""

    async def on_domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)  # noqa: S101 - registered for DomainError only
        headers = getattr(exc, "headers", None)
        return problem_response(exc, _request_id(request), headers)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this type only
        errors = []
        for item in exc.errors():
            location = [str(part) for part in item.get("loc", ()) if part not in ("body",)]
            value = item.get("input")
            errors.append({
                "field": ".".join(location) or "body",
                "rule": item.get("type", "invalid"),
                "message": item.get("msg", "invalid"),
                "value": value if isinstance(value, str | int | float | bool) or value is None else None,
            })
        first = errors[0] if errors else {"field": "body", "rule": "invalid", "value": None}
        error = DomainError(
            f"{first['field']}: {errors[0]['message'] if errors else 'invalid request'}",
            code="validation_failed", field=str(first["field"]), value=first.get("value"),
            rule=str(first["rule"]), errors=errors,
        )
        error.status, error.title = 422, "Unprocessable content"
        return problem_response(error, _request_id(request))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for this type only
        error = DomainError(str(exc.detail), code=_HTTP_CODES.get(exc.status_code, "http_error"))
        error.status, error.title = exc.status_code, str(exc.detail)
        return problem_response(error, _request_id(request), dict(exc.headers or {}))

    # The platform's own middleware answers unexpected errors (inside the security headers and the request
    # id); this handler, run by Starlette outside every middleware, is only the last resort for a failure
    # in the middleware itself.
    async def on_unexpected(request: Request, exc: Exception) -> Response:
        return _internal_error(_request_id(request), exc)

    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
    # Added first, so innermost of the platform's middleware: its 500 passes through the security headers,
    # the audit and the request id on its way out.
    app.add_middleware(UnhandledErrorMiddleware)


async def answer_error(request: Request, error: Exception) -> Response:
    """The response the app's exception handler for `error` gives (found as Starlette finds it: by the
    error's class, then its bases), for a route answered past the router; raised on when the app has none."""
    handlers: dict[Any, Any] = request.app.exception_handlers
    # Exception's handler (with 500's) is Starlette's last resort, outside every middleware: not this one's.
    handler = next((handlers[cls] for cls in type(error).__mro__ if cls in handlers and cls is not Exception), None)
    if handler is None or not inspect.iscoroutinefunction(handler):
        raise error
    response: Response = await handler(request, error)
    return response


async def answer_in_lane(scope: Scope, receive: Receive, send: Send, route: Any, endpoint: Any,
                         path_params: dict[str, Any],
                         answer: Callable[[Request], Awaitable[Response]]) -> None:
    """Answer one request past the router (a lane of the hot path): the scope names the route, endpoint and
    path parameters as routing would; an error the app has a handler for is answered by that handler
    (`answer_error`), any other error goes on up to the platform's middleware."""
    scope["route"], scope["endpoint"], scope["path_params"] = route, endpoint, path_params
    request = Request(scope, receive, send)
    try:
        response = await answer(request)
    except Exception as error:  # answered by the app's handler for it, or raised on
        response = await answer_error(request, error)
    await response(scope, receive, send)


def _internal_error(request_id: str | None, exc: Exception) -> Response:
    logger.error("unhandled error", exc_info=exc, extra={"request_id": request_id, "error_type": type(exc).__name__})
    error = DomainError("internal error; quote the request id to the operator", code="internal_error")
    error.status, error.title = 500, "Internal server error"
    return problem_response(error, request_id)


class UnhandledErrorMiddleware:
    """Turns an exception no handler claimed into a 500 problem document naming the request id, and logs it
    with that id (the exception's type and traceback; its message is scrubbed like every log line)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await answer_errors(self.app, scope, receive, send, self.internal_error)

    @staticmethod
    def internal_error(scope: Scope, exc: Exception) -> Response | None:
        if isinstance(exc, _BodyTooLarge):
            return None  # BodyLimitMiddleware answers it with a 413
        return _internal_error(scope.get("state", {}).get("request_id") or request_id_var.get(), exc)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated", 403: "forbidden"}


AsyncHandler = Callable[[Request], Awaitable[Response]]
