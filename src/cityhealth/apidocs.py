"""The API's interactive docs at /docs, with Swagger UI served by the platform itself (no CDN), and the
OpenAPI document's error contract: every status a route can answer, with its problem document."""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
# Swagger UI 5 (it renders OpenAPI 3.1, which FastAPI writes), as the fastapi-offline package ships it: its
# files only; the page below is ours, so that its one inline script carries the response's CSP nonce.
_SWAGGER_UI_FILES = str(resources.files("fastapi_offline") / "static")


def install(app: FastAPI) -> None:
    """Mount Swagger UI's files and the /docs page; create the app with docs_url=None."""
    app.mount(ASSETS, StaticFiles(directory=_SWAGGER_UI_FILES), name="docs-assets")
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the document

    async def docs(request: Request) -> HTMLResponse:
        # The page's one inline script carries the nonce the security headers put in this response's
        # Content-Security-Policy; no other inline script or style may run.
        nonce = html.escape(getattr(request.state, "csp_nonce", ""), quote=True)
        return HTMLResponse(_PAGE.format(
            title=html.escape(f"{app.title} API"), assets=ASSETS, nonce=nonce,
            openapi_url=json.dumps(app.openapi_url or "/openapi.json")))

    app.add_api_route("/docs", docs, include_in_schema=False, response_class=HTMLResponse)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" href="{assets}/favicon.png">
<title>{title}</title>
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script nonce="{nonce}">
SwaggerUIBundle({{url: {openapi_url}, dom_id: "#swagger-ui", layout: "BaseLayout", deepLinking: true,
                  presets: [SwaggerUIBundle.presets.apis]}});
</script>
</body>
</html>
"""


PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document (observability.problem_body renders every error this way).",
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "code": {"type": "string", "description": "stable, machine-readable"},
        "detail": {"type": "string"},
        "field": {"type": "string", "description": "the parameter or body field at fault"},
        "value": {"description": "the value at fault, ID and phone numbers masked"},
        "rule": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
        "request_id": {"type": "string", "description": "quote it to the operator"},
    },
}
_REASONS = {
    400: "The body could not be read as its Content-Type says (a broken form, say)",
    401: "Not authenticated, or the credentials were refused",
    403: "Authenticated, without the scope this route requires",
    404: "No such object — or not yours, which answers the same",
    409: "Conflicts with the current state (a duplicate, a full session, a deadline passed)",
    413: "Request body larger than the limit",
    422: "A parameter or the body fails validation (or is not RFC 8259 JSON); `field`, `value` and `rule` say which",
    429: "Too many attempts; retry after the Retry-After header's seconds",
    500: "Unexpected error; quote the request_id",
}
_WRITES = frozenset({"post", "put", "patch", "delete"})
_METHODS = frozenset({"get", "head", "options", "trace", *_WRITES})


def problem_statuses(method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer, read from its shape rather than listed by hand: the
    platform's middleware, dependencies and handlers answer them the same way on every route."""
    # 429 on every route: the audit middleware refuses any request from an address that failed
    # authentication too often, before it is routed (a public route's answer included).
    statuses = {429, 500}
    parameters = operation.get("parameters", [])
    authenticated = bool(operation.get("security"))
    if authenticated or "authentication" in operation.get("tags", ()):  # bearer auth, or a login/token route
        statuses.add(401)
    if authenticated:  # a scope missing; a rule about the caller (only a resident lists their bookings)
        statuses |= {403, 422}
    if any(parameter.get("in") == "path" for parameter in parameters):
        statuses |= {404, 422}
    if parameters:
        statuses.add(422)
    if "requestBody" in operation:
        statuses |= {400, 413, 422}
    if method in _WRITES:
        statuses.add(409)
    return statuses


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Add every derived error status to every operation, each as a problem document (a route's own
    declaration of a status, and its content, are kept; the problem type is added beside it)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    reference = {"schema": {"$ref": "#/components/schemas/Problem"}}
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            declared = {int(status) for status in responses if status.isdigit() and int(status) >= 400}
            for status in sorted(problem_statuses(method, operation) | declared):
                response = responses.setdefault(str(status), {"description": _REASONS.get(status, "Error")})
                content = response.setdefault("content", {})
                if status == 422:  # FastAPI's default 422 shape, never sent
                    content.pop("application/json", None)
                content[PROBLEM_MEDIA_TYPE] = reference
            operation["responses"] = dict(sorted(responses.items()))
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document
