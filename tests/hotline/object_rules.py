"""Object rules of the hotline room's read endpoints (docs/security.md, 'Adding an endpoint')."""

from __future__ import annotations

from fastapi import FastAPI

from cityhealth.hotline import reporting
from cityhealth.hotline.repository import held_calls
from cityhealth.hotline.schemas import CallEventReport
from cityhealth.security.principals import Scope
from tests.factories.security import machine
from tests.hotline.calls_support import add_line, agent, call_events
from tests.security.objects import Owner, not_object_scoped, object_endpoint


async def _agents_with_a_call(app: FastAPI, owners: int) -> list[tuple[dict[str, str], int, str]]:
    """`owners` agents, each having answered one call; (headers, call id, telephony call id)."""
    database, clock, settings = app.state.database, app.state.clock, app.state.settings
    await add_line(app)  # the same line again changes nothing
    found = []
    for n in range(owners):
        headers, subject = await agent(app, 900 + n)
        telephony_id = f"object-rules-{n}-{subject}"
        async with database.transaction() as session:
            await reporting.report_events(session, clock, settings, machine(Scope.HOTLINE_TELEPHONY),
                                          CallEventReport.model_validate({"events": call_events(
                                              telephony_id, clock.now(), agent=subject)}))
            call_id = (await held_calls(session, [telephony_id]))[telephony_id].id
        found.append((headers, call_id, telephony_id))
    return found


@object_endpoint("GET", "/api/hotline/calls/{call_id}", kind="read",
                 rule="an agent sees only the calls they answered; another's looks like not found")
async def calls(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(headers, path={"call_id": call_id}) for headers, call_id, _ in await _agents_with_a_call(app, owners)]


@object_endpoint("GET", "/api/hotline/calls", kind="list", rule="an agent lists only the calls they answered")
async def call_lists(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(headers, marker=f'"telephony_call_id":"{telephony_id}"')
            for headers, _, telephony_id in await _agents_with_a_call(app, owners)]


not_object_scoped("GET", "/api/hotline/lines", "reference data: the province's city lines")
not_object_scoped("POST", "/api/hotline/calls/search",
                  "supervisors only: they oversee every call of the hotline, each search audited")
not_object_scoped("GET", "/api/hotline/crisis-follow-ups",
                  "the crisis team works every follow-up together; its own scope is the rule")
not_object_scoped("GET", "/api/hotline/crisis-follow-ups/{follow_up_id}",
                  "the crisis team works every follow-up together; its own scope is the rule")


import tests.hotline.object_rules_desk  # noqa: E402 - the agent desk declares its own routes
import tests.hotline.object_rules_knowledge  # noqa: E402 - the knowledge base declares its own routes
import tests.hotline.object_rules_work_orders  # noqa: E402, F401 - the work orders declare their own routes
