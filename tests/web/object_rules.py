"""Object rules of the web pages: the operator's page of records, and the resident's page of bookings."""

from __future__ import annotations

from fastapi import FastAPI
from tests.booking.object_rules import _owners_with_a_booking
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
