"""Object rules of the reading pages (web/telemed_worklist.py): a reading centre's doctor sees a case only while
it is routed to the centre, a requester's staff only their hospital's cases; another's case is not found."""

from __future__ import annotations

from fastapi import FastAPI
from tests.factories.security import headers_for
from tests.security.objects import Owner, object_endpoint
from tests.telemed.object_rules_files import cases_with_files
from tests.web.object_rules import as_cookie

_COOKIE_PAGE = ("a cookie-authenticated page: the harness re-issues bearer headers, not cookies; its guard demands "
                "telemed.read (the worklist) or telemed.request (the requests), which "
                "tests/web/test_telemed_pages.py checks")


async def _owners(app: FastAPI, owners: int, *, as_reader: bool) -> list[Owner]:
    found = []
    for held in await cases_with_files(app, owners):
        headers = as_cookie(await headers_for(app, held.reader if as_reader else held.requester))
        found.append(Owner(headers, path={"case_id": held.case_id, "tracing_id": held.tracing_id},
                           marker=f'id="case-{held.case_id}"'))
    return found


@object_endpoint("GET", "/telemed/worklist", kind="list", unscoped=_COOKIE_PAGE,
                 rule="a reading centre's worklist lists only the cases routed to it")
async def worklist_pages(app: FastAPI, owners: int) -> list[Owner]:
    return await _owners(app, owners, as_reader=True)


@object_endpoint("GET", "/telemed/worklist/cases/{case_id}", kind="read", unscoped=_COOKIE_PAGE,
                 rule="a reading centre's doctor opens a case only while it is routed to the centre")
async def worklist_case_pages(app: FastAPI, owners: int) -> list[Owner]:
    return await _owners(app, owners, as_reader=True)


@object_endpoint("GET", "/telemed/worklist/cases/{case_id}/ecg/{tracing_id}/svg", kind="read",
                 unscoped=_COOKIE_PAGE, rule="a case's ECG drawing, to the centre it is routed to")
async def worklist_ecg_drawings(app: FastAPI, owners: int) -> list[Owner]:
    return await _owners(app, owners, as_reader=True)


@object_endpoint("GET", "/telemed/requests", kind="list", unscoped=_COOKIE_PAGE,
                 rule="a requester's staff list only their hospital's cases")
async def request_pages(app: FastAPI, owners: int) -> list[Owner]:
    return await _owners(app, owners, as_reader=False)


@object_endpoint("GET", "/telemed/requests/cases/{case_id}", kind="read", unscoped=_COOKIE_PAGE,
                 rule="a requester's staff open only their hospital's cases")
async def request_case_pages(app: FastAPI, owners: int) -> list[Owner]:
    return await _owners(app, owners, as_reader=False)


@object_endpoint("GET", "/telemed/requests/cases/{case_id}/ecg/{tracing_id}/svg", kind="read",
                 unscoped=_COOKIE_PAGE, rule="a case's ECG drawing, to its requester")
async def request_ecg_drawings(app: FastAPI, owners: int) -> list[Owner]:
    return await _owners(app, owners, as_reader=False)
