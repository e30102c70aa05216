"""Jinja2 pages in the site layout: autoescaped templates from web/templates, cookies applied on the way out."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from cityhealth.config import Settings
from cityhealth.web.session import CSRF_FIELD, apply_cookies, form_token

NOT_MEASURED = "/"  # as the bulletin prints a rate that is not measured


def percent(value: Decimal | None) -> str:
    return NOT_MEASURED if value is None else f"{value:.2f}%"


def count(value: int | None) -> str:
    return NOT_MEASURED if value is None else f"{value:,}"


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("cityhealth.web", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,  # a misspelt name fails the test that renders it, not the reader
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["percent"] = percent
    env.filters["count"] = count
    return env


def page(request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render `template` (forms call `csrf_token()`), then set the cookies the request decided on."""
    settings: Settings = request.app.state.settings
    principal = getattr(request.state, "principal", None)
    html = environment().get_template(template).render(
        principal=principal, csrf_field=CSRF_FIELD, csrf_token=lambda: form_token(request, settings),
        path=request.url.path, loading=getattr(request.state, "month_loads", ()), **context)
    # A page shown to a logged-in operator may carry record ids: no cache keeps it.
    private = {"Cache-Control": "no-store"} if principal is not None else None
    response = HTMLResponse(html, status_code=status_code, headers=private)
    apply_cookies(request, response, settings)
    return response
