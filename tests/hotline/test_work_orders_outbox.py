"""The result of a closed 12345 order goes back to its system through the outbox: sent after the close commits,
retried with a growing pause while the system is down, never lost, each send carrying one reference."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth import queue
from cityhealth.hotline import tasks, work_order_outbox
from cityhealth.hotline.work_order_models import WorkOrderResult
from tests.booking.outbox import until
from tests.hotline.work_orders_support import (
    CITY_PUSH,
    ORDERS,
    PROVINCE_PUSH,
    Recorder,
    Steps,
    agent,
    city,
    city_push,
    handler,
    install,
    organizations,
    province,
    province_push,
)


async def _closed(app: FastAPI, client: httpx.AsyncClient, *, province_order: bool = False) -> Steps:
    ids = await organizations(app, "NJH-A")
    if province_order:
        pushed = await client.post(PROVINCE_PUSH, headers=await province(app), json=province_push())
    else:
        pushed = await client.post(CITY_PUSH, headers=await city(app), json=city_push())
    order = Steps(client, pushed.json()["work_order_id"])
    hotline = await agent(app)
    await order.post("dispatch", hotline)
    await order.post("reply", await handler(app, ids["NJH-A"]), reply="已处理完毕。")
    closed = await order.post("close", hotline, note="办结")
    assert closed.status_code == 200, closed.text
    return order


async def _results(app: FastAPI) -> list[WorkOrderResult]:
    async with app.state.database.transaction() as session:
        return list((await session.scalars(select(WorkOrderResult).order_by(WorkOrderResult.id))).all())


async def test_a_closed_order_returns_its_result_once_with_a_reference(app: FastAPI,
                                                                        client: httpx.AsyncClient) -> None:
    recorder = install(app, Recorder())
    order = await _closed(app, client)
    assert await until(lambda: _sent(recorder, 1))
    source, order_id, reference, result = recorder.sent[0]
    assert (source, order_id, reference) == ("city_12345", "NJ-2022-0001", "NJ-2022-0001#4")
    assert result["reply"] == "已处理完毕。"
    assert result["note"] == "办结"
    assert await until(lambda: _returned(app, client, order))
    # Another sending run (the periodic safety net) finds nothing left to send.
    sent = await work_order_outbox.send_due(app.state.database, app.state.clock, recorder)
    assert (sent.sent, recorder.calls) == (0, 1)
    assert [row.status for row in await _results(app)] == ["sent"]


async def test_a_province_order_goes_back_to_the_provincial_system(app: FastAPI, client: httpx.AsyncClient) -> None:
    recorder = install(app, Recorder())
    await _closed(app, client, province_order=True)
    assert await until(lambda: _sent(recorder, 1))
    assert recorder.sent[0][:2] == ("province_12345", "JS-2022-0001")


async def test_a_self_received_order_owes_no_12345_system_a_result(app: FastAPI, client: httpx.AsyncClient) -> None:
    recorder = install(app, Recorder())
    ids = await organizations(app, "NJH-A")
    hotline = await agent(app)
    created = await client.post(ORDERS, headers=hotline, json={
        "request_key": "own-1", "category": "complaint", "title": "t", "content": "c",
        "organization_id": ids["NJH-A"]})
    order = Steps(client, created.json()["work_order_id"])
    await order.post("dispatch", hotline)
    await order.post("reply", await handler(app, ids["NJH-A"]), reply="答复")
    assert (await order.post("close", hotline)).status_code == 200
    assert await _results(app) == []
    assert recorder.calls == 0


async def test_a_result_is_retried_with_a_growing_pause_until_sent(app: FastAPI, client: httpx.AsyncClient) -> None:
    recorder = install(app, Recorder(down=True))
    await _closed(app, client)
    assert await until(lambda: _calls(recorder, 1))
    database, clock = app.state.database, app.state.clock
    assert await until(lambda: _attempts(app, 1))
    (row,) = await _results(app)
    assert (row.status, row.last_error) == ("pending", "ConnectionError")
    assert row.next_attempt_at == clock.now() + timedelta(seconds=30)
    # Not yet due: a run now sends nothing.
    assert (await work_order_outbox.send_due(database, clock, recorder)).failed == 0
    clock.advance(timedelta(seconds=31))
    assert (await work_order_outbox.send_due(database, clock, recorder)).failed == 1
    (row,) = await _results(app)
    assert row.next_attempt_at == clock.now() + timedelta(minutes=1)
    recorder.down = False
    clock.advance(timedelta(minutes=2))
    assert (await work_order_outbox.send_due(database, clock, recorder)).sent == 1
    (row,) = await _results(app)
    assert (row.status, row.attempts) == ("sent", 3)
    assert len(recorder.sent) == 1


def test_the_pause_doubles_up_to_an_hour() -> None:
    pauses = [work_order_outbox.retry_pause(n) for n in (1, 2, 3, 8, 20)]
    assert pauses == [timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=2), timedelta(hours=1),
                      timedelta(hours=1)]


async def test_a_reopened_order_closed_again_returns_a_second_result(app: FastAPI,
                                                                      client: httpx.AsyncClient) -> None:
    recorder = install(app, Recorder())
    order = await _closed(app, client)
    assert await until(lambda: _sent(recorder, 1))
    hotline = await agent(app)
    await order.post("callback", hotline, satisfaction="dissatisfied")
    await order.post("dispatch", hotline)
    organization_id = (await client.get(f"{ORDERS}/{order.order_id}", headers=hotline)).json()["organization_id"]
    await order.post("reply", await handler(app, organization_id), reply="再次答复。")
    await order.post("close", hotline)
    assert await until(lambda: _sent(recorder, 2))
    assert [reference for _, _, reference, _ in recorder.sent] == ["NJ-2022-0001#4", "NJ-2022-0001#10"]
    assert recorder.sent[1][3]["reply"] == "再次答复。"


async def _sent(recorder: Recorder, n: int) -> bool:
    return len(recorder.sent) >= n


async def _calls(recorder: Recorder, n: int) -> bool:
    return recorder.calls >= n


async def _attempts(app: FastAPI, n: int) -> bool:
    rows = await _results(app)
    return bool(rows) and rows[0].attempts >= n


async def _returned(app: FastAPI, client: httpx.AsyncClient, order: Steps) -> bool:
    detail = (await client.get(f"{ORDERS}/{order.order_id}", headers=await agent(app))).json()
    return any(event["kind"] == "result_returned" for event in detail["events"])


async def test_a_result_left_pending_is_found_when_the_server_starts(app: FastAPI, client: httpx.AsyncClient) -> None:
    install(app, Recorder(down=True))
    await _closed(app, client)
    assert await until(lambda: _attempts(app, 1))
    assert await work_order_outbox.unsent(app.state.tasks) == [{"outbox": "12345"}]


@dataclass
class SlowRecorder(Recorder):
    """Takes a while per send, so that two sending runs overlap."""

    async def send(self, source: str, order_id: str, reference: str, result: dict[str, Any]) -> None:
        await asyncio.sleep(0.2)
        await super().send(source, order_id, reference, result)


async def test_two_sending_runs_at_once_send_a_result_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    install(app, Recorder(down=True))  # the close's own task fails: the result waits for the runs below
    await _closed(app, client)
    assert await until(lambda: _attempts(app, 1))
    app.state.clock.advance(timedelta(minutes=1))
    slow = SlowRecorder()
    database, clock = app.state.database, app.state.clock
    runs = await asyncio.gather(work_order_outbox.send_due(database, clock, slow),
                                work_order_outbox.send_due(database, clock, slow), return_exceptions=True)
    assert sum(run.sent for run in runs if isinstance(run, work_order_outbox.SendResult)) == 1
    assert slow.calls == 1


def test_the_reminder_and_the_retries_are_periodic_tasks_of_the_queue() -> None:
    assert queue.PERIODIC["hotline.remind_work_orders"].every_s == tasks.REMIND_EVERY_S
    assert queue.PERIODIC["hotline.retry_work_order_results"].every_s == tasks.SEND_RESULTS_EVERY_S
    assert work_order_outbox.SEND_TASK in queue.TASKS
