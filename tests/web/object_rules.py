"""Object rules of the web pages: the operator's page of records, and the resident's page of bookings."""

from __future__ import annotations

from fastapi import FastAPI
from tests.booking.object_rules import _owners_with_a_booking
from tests.hotline.object_rules_work_orders import organizations_with_an_order
from tests.security.objects import Owner, not_object_scoped, object_endpoint

from cityhealth.web.session import SESSION_COOKIE

not_object_scoped(
    "GET", "/dashboard/quality/units/{organization_id}/rejections",
    "collection.read is platform-wide: a data-quality operator sees every unit's rejected records, as "
    "GET /api/collection/jobs/{job_id}/rejections shows any job's to a collection reader",
)


@object_endpoint("GET", "/booking/mine", kind="list",
                 rule="a resident's booking page lists only the signed-in resident's own bookings",
                 unscoped="a cookie-authenticated page: the harness re-issues bearer headers, not cookies; its "
                          "guard demands booking.read, which tests/web/test_booking_pages.py checks")
async def my_booking_pages(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(as_cookie(headers), marker=f'id="booking-{booking_id}"')
            for headers, booking_id in await _owners_with_a_booking(app, owners)]


def as_cookie(headers: dict[str, str]) -> dict[str, str]:
    """A resident's bearer headers as the browser's session cookie (the same access token)."""
    return {"Cookie": f"{SESSION_COOKIE}={headers['Authorization'].removeprefix('Bearer ')}"}


not_object_scoped("GET", "/hotline/work-orders",
                  "hotline.work_orders is hotline-wide: agents and supervisors work every order, as "
                  "GET /api/hotline/work-orders shows them every one")
not_object_scoped("GET", "/hotline/work-orders/new", "a blank form: no object")
not_object_scoped("GET", "/hotline/work-orders/{order_id}",
                  "hotline.work_orders is hotline-wide, as GET /api/hotline/work-orders/{work_order_id} is")

_COOKIE_PAGE = ("a cookie-authenticated page: the harness re-issues bearer headers, not cookies; its guard demands "
                "hotline.work_orders.handle, which tests/hotline/test_work_orders_pages.py checks")


@object_endpoint("GET", "/hotline/organization-orders", kind="list", unscoped=_COOKIE_PAGE,
                 rule="an organization's staff see only their organization's orders")
async def organization_order_pages(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(as_cookie(headers), marker=f">{title}<")
            for headers, _, title in await organizations_with_an_order(app, owners)]


@object_endpoint("GET", "/hotline/organization-orders/{order_id}", kind="read", unscoped=_COOKIE_PAGE,
                 rule="an organization's staff open only their organization's orders; another's is not found")
async def organization_order_page(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(as_cookie(headers), path={"order_id": order_id})
            for headers, order_id, _ in await organizations_with_an_order(app, owners)]


import tests.web.object_rules_app  # noqa: E402 - the resident app declares its own pages
import tests.web.object_rules_telemed  # noqa: E402,F401 - the reading pages declare their own routes

not_object_scoped("GET", "/editor/bulletin", "bulletin editors only (bulletin.edit): the city's issue register")
not_object_scoped("GET", "/editor/bulletin/issues/{issue_id}",
                  "bulletin editors only (bulletin.edit): any issue of the city's bulletin, drafts included")
not_object_scoped("GET", "/editor/bulletin/issues/{issue_id}/preview.{extension}",
                  "bulletin editors only (bulletin.edit): a draft's preview in each edition")
