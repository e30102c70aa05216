"""Helpers of the work-order tests: organizations in the registry, the 12345 systems and the hotline's staff as
callers, pushes in each system's shape, a recording 12345 gateway and the steps of an order's life."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from cityhealth.hotline.work_order_outbox import GATEWAY
from cityhealth.registry import service as registry_service
from cityhealth.security.principals import Role, Scope
from tests.factories.registry import organization_payload, seed_areas
from tests.factories.security import headers_for, machine, staff

ORDERS = "/api/hotline/work-orders"
CITY_PUSH = f"{ORDERS}/intake/city-12345"
PROVINCE_PUSH = f"{ORDERS}/intake/province-12345"


async def organizations(app: FastAPI, *codes: str) -> dict[str, int]:
    """Hospitals with these registry codes; their ids by code."""
    await seed_areas(app.state.database, app.state.clock)
    found = {}
    async with app.state.database.transaction() as session:
        for code in codes:
            row = await registry_service.insert_organization(session, app.state.clock,
                                                              organization_payload(code=code))
            found[code] = row.id
    return found


async def city(app: FastAPI) -> dict[str, str]:
    return await headers_for(app, machine(Scope.HOTLINE_12345_CITY, client_id="nj-12345"))


async def province(app: FastAPI) -> dict[str, str]:
    return await headers_for(app, machine(Scope.HOTLINE_12345_PROVINCE, client_id="js-12345"))


async def agent(app: FastAPI, user_id: int = 11) -> dict[str, str]:
    return await headers_for(app, staff(Role.HOTLINE_AGENT, user_id=user_id))


async def supervisor(app: FastAPI, user_id: int = 12) -> dict[str, str]:
    return await headers_for(app, staff(Role.HOTLINE_SUPERVISOR, user_id=user_id))


async def handler(app: FastAPI, organization_id: int, user_id: int = 13) -> dict[str, str]:
    """A member of an organization's staff who answers its work orders."""
    return await headers_for(app, staff(Role.WORK_ORDER_HANDLER, organization_id=organization_id, user_id=user_id))


def city_push(order_id: str = "NJ-2022-0001", **overrides: Any) -> dict[str, Any]:
    return {"gdbh": order_id, "gdlx": "ts", "bt": "挂号排队时间过长", "nr": "来电反映门诊挂号窗口排队超过一小时。",
            "cbdw": "NJH-A", "slsj": "2022-06-15T09:00:00+08:00"} | overrides


def province_push(order_id: str = "JS-2022-0001", **overrides: Any) -> dict[str, Any]:
    return {"orderNo": order_id, "orderType": "CONSULT", "title": "疫苗接种时间咨询",
            "content": "来电咨询社区卫生服务中心的疫苗接种时间。", "handleOrgCode": "NJH-A",
            "acceptTime": "2022-06-15T09:10:00+08:00"} | overrides


@dataclass
class Recorder:
    """Keeps the results it is given; `down` makes every send fail, as an unreachable 12345 system would."""

    down: bool = False
    sent: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    calls: int = 0

    async def send(self, source: str, order_id: str, reference: str, result: dict[str, Any]) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("12345 unreachable")
        self.sent.append((source, order_id, reference, result))


def install(app: FastAPI, recorder: Recorder) -> Recorder:
    app.state.tasks.resources[GATEWAY] = recorder
    return recorder


class Steps:
    """An order's steps over HTTP, each with a fresh request key unless one is given."""

    def __init__(self, client: httpx.AsyncClient, order_id: int) -> None:
        self.client = client
        self.order_id = order_id
        self.n = 0

    def _key(self, key: str | None) -> str:
        self.n += 1
        return key or f"step-{self.order_id}-{self.n}"

    async def post(self, step: str, headers: dict[str, str], key: str | None = None,
                   **body: Any) -> httpx.Response:
        return await self.client.post(f"{ORDERS}/{self.order_id}/{step}", headers=headers,
                                      json={"request_key": self._key(key), **body})
