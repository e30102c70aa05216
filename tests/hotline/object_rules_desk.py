"""Object rules of the agent desk's read endpoints (docs/security.md, 'Adding an endpoint')."""

from __future__ import annotations

from fastapi import FastAPI

from cityhealth.hotline import reporting
from cityhealth.hotline.repository import held_calls
from cityhealth.hotline.schemas import CallEventReport
from cityhealth.security.principals import Scope
from tests.factories.security import machine
from tests.hotline.calls_support import add_line, agent, call_events
from tests.security.objects import Owner, not_object_scoped, object_endpoint
from tests.web.object_rules import as_cookie


async def agents_on_a_call(app: FastAPI, owners: int) -> list[tuple[dict[str, str], int]]:
    """`owners` agents, each on a call they answered that has not ended; (headers, call id)."""
    database, clock, settings = app.state.database, app.state.clock, app.state.settings
    await add_line(app)
    found = []
    for n in range(owners):
        headers, subject = await agent(app, 950 + n)
        telephony_id = f"desk-rules-{n}-{subject}"
        async with database.transaction() as session:
            await reporting.report_events(session, clock, settings, machine(Scope.HOTLINE_TELEPHONY),
                                          CallEventReport.model_validate({"events": call_events(
                                              telephony_id, clock.now(), agent=subject)[:4]}))
            found.append((headers, (await held_calls(session, [telephony_id]))[telephony_id].id))
    return found


@object_endpoint("GET", "/api/hotline/desk/calls", kind="list",
                 rule="an agent's desk lists only the open calls they answered")
async def desk_calls(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(headers, marker=f'"id":{call_id},') for headers, call_id in await agents_on_a_call(app, owners)]


@object_endpoint("GET", "/hotline/desk", kind="list",
                 rule="the desk page lists only the signed-in agent's own open calls",
                 unscoped="a cookie-authenticated page: the harness re-issues bearer headers, not cookies; its "
                          "guard demands hotline.calls, which tests/web/test_hotline_desk_pages.py checks")
async def desk_pages(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(as_cookie(headers), marker=f'href="/hotline/desk?call_id={call_id}"')
            for headers, call_id in await agents_on_a_call(app, owners)]


not_object_scoped("GET", "/api/hotline/desk/kb", "the published knowledge base, the same for every agent")
not_object_scoped("GET", "/api/hotline/desk/callbacks",
                  "the hotline works the suspended clinics' call-back list together; names and numbers masked, "
                  "each list audited per resident")
not_object_scoped("GET", "/api/hotline/desk/supervisor", "supervisors only: the whole hotline's queues and agents")
not_object_scoped("GET", "/api/hotline/desk/reconciliation", "supervisors only: counts and ids over a period")
not_object_scoped("GET", "/hotline/supervisor", "supervisors only: the whole hotline's queues and agents")
