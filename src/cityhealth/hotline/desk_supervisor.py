"""The supervisor's view: the queues (calls waiting, the longest wait), each agent's state (on a call, idle
since, calls today) and today's figures, all derived from the call projection of the telephony's events;
the month's figures are the bulletin's (statistics.call_statistics)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock, business_date
from cityhealth.hotline import desk_repository
from cityhealth.hotline.desk_schemas import AgentState, QueueState, SupervisorView, TodayFigures
from cityhealth.hotline.models import CATEGORIES
from cityhealth.hotline.statistics import UNCATEGORIZED, call_statistics
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal


async def supervisor_view(session: AsyncSession, clock: Clock, principal: Principal) -> SupervisorView:
    now = clock.now()
    today = business_date(now)
    queues = [QueueState(queue=queue, waiting=waiting,
                         longest_wait_s=max(0, int((now - since).total_seconds())) if since else 0)
              for queue, waiting, since in await desk_repository.waiting_queues(session)]
    agents: dict[str, AgentState] = {}
    for agent, call_id, state, day, ended_at in await desk_repository.agents_today(session, today):
        seen = agents.setdefault(agent, AgentState(agent=agent, on_call=False, call_id=None, idle_since=None,
                                                   calls_today=0))
        if day == today:
            seen.calls_today += 1
        if state == desk_repository.OPEN:
            seen.on_call, seen.call_id = True, call_id
        elif ended_at is not None and (seen.idle_since is None or ended_at > seen.idle_since):
            seen.idle_since = ended_at
    for seen in agents.values():
        if seen.on_call:
            seen.idle_since = None
    by_category = dict.fromkeys(CATEGORIES, 0)
    calls = answered = ended = abandoned = 0
    for state, category, outcome, was_answered, count in await desk_repository.day_figures(session, today):
        calls += count
        key = category or UNCATEGORIZED
        by_category[key] = by_category.get(key, 0) + count
        answered += count if was_answered else 0
        ended += count if state == "ended" else 0
        abandoned += count if outcome == "abandoned" else 0
    month = await call_statistics(session, today.strftime("%Y-%m"))
    record(session, clock, principal, Action.READ, "hotline_supervisor", detail=f"day={today.isoformat()}")
    return SupervisorView(
        at=now, queues=queues, agents=sorted(agents.values(), key=lambda item: item.agent),
        today=TodayFigures(day=today, calls=calls, answered=answered, ended=ended, abandoned=abandoned,
                           by_category=by_category),
        month=month)
