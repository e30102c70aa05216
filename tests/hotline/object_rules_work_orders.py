"""Object rules of the work-order routes: an organization's staff see only their organization's orders."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from tests.hotline.work_orders_support import CITY_PUSH, city, city_push, handler, organizations
from tests.security.objects import Owner, not_object_scoped, object_endpoint


async def organizations_with_an_order(app: FastAPI, owners: int) -> list[tuple[dict[str, str], int, str]]:
    """`owners` organizations, each with one order and one member of staff; (headers, order id, order's title)."""
    codes = [f"OBJ-WO-{n}" for n in range(owners)]
    ids = await organizations(app, *codes)
    found = []
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as client:
        for n, code in enumerate(codes):
            title = f"object-rules-order-{n}"
            pushed = await client.post(CITY_PUSH, headers=await city(app),
                                       json=city_push(f"OBJ-{n}", cbdw=code, bt=title))
            found.append((await handler(app, ids[code], user_id=950 + n), pushed.json()["work_order_id"], title))
    return found


@object_endpoint("GET", "/api/hotline/work-orders/{work_order_id}", kind="read",
                 rule="an organization's staff see only their organization's orders; another's looks like not found")
async def work_orders(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(headers, path={"work_order_id": order_id})
            for headers, order_id, _ in await organizations_with_an_order(app, owners)]


@object_endpoint("GET", "/api/hotline/work-orders", kind="list",
                 rule="an organization's staff list only their organization's orders")
async def work_order_lists(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(headers, marker=f'"title":"{title}"')
            for headers, _, title in await organizations_with_an_order(app, owners)]


not_object_scoped("GET", "/api/hotline/holidays/{year}", "reference data: the country's public holiday calendar")
