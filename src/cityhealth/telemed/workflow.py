"""A case's states (FHIR Task status) and the steps each allows. Pure: no database.

requested ─receive→ received ─accept→ accepted ─claim→ in-progress ─sign→ completed
    │                  │                 │  ↖─release─┘ (draft: stays in-progress)
    └──────────────────┴─reject──────────┴→ requested at the next centre (re-routed), or rejected
requested, received, accepted ─cancel→ cancelled (by the requester)
"""

from __future__ import annotations

from dataclasses import dataclass

from cityhealth.errors import Conflict

# Each step: the statuses it is allowed in.
ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "receive": ("requested",),
    "accept": ("requested", "received"),
    "reject": ("requested", "received", "accepted"),
    "claim": ("accepted",),
    "release": ("in-progress",),
    "draft": ("in-progress",),
    "sign": ("in-progress",),
    "cancel": ("requested", "received", "accepted"),
}
# The statuses in which a case waits on a reading centre: its load, and what can become overdue.
OPEN_STATUSES = ("requested", "received", "accepted", "in-progress")
TERMINAL_STATUSES = ("rejected", "completed", "cancelled")


@dataclass(frozen=True)
class Outcome:
    """Where a step leaves the case: its status and business status (FHIR Task.businessStatus)."""

    status: str
    business_status: str


# What each step leaves behind (reject is decided by the routing: re-routed or no centre left).
OUTCOMES: dict[str, Outcome] = {
    "receive": Outcome("received", "received-by-centre"),
    "accept": Outcome("accepted", "in-queue"),
    "claim": Outcome("in-progress", "claimed"),
    "release": Outcome("accepted", "in-queue"),
    "draft": Outcome("in-progress", "report-drafted"),
    "sign": Outcome("completed", "report-returned"),
    "cancel": Outcome("cancelled", "cancelled-by-requester"),
}
REROUTED = Outcome("requested", "rerouted")
UNROUTABLE = Outcome("rejected", "no-centre-available")
ROUTED = Outcome("requested", "awaiting-centre")


def check_step(step: str, status: str, case_id: int) -> None:
    """Nothing when `step` may be taken in `status`; else 409 naming the state and the step."""
    if status not in ALLOWED_FROM[step]:
        allowed = ", ".join(ALLOWED_FROM[step])
        raise Conflict(
            f"case {case_id} is {status}: the step '{step}' is allowed only when it is {allowed}",
            code="illegal_transition",
            field="status",
            value=status,
            rule=f"telemed.case.{step}",
        )
