"""What a simulated month did: its counts, and where its time went."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from cityhealth.simulation.work_orders import WorkOrderTally


@dataclass
class SimulationResult:
    month: str
    scale: Decimal
    uploaded: int = 0
    accepted_expected: int = 0
    bookings: int = 0
    calls: int = 0
    work_orders: WorkOrderTally = field(default_factory=WorkOrderTally)
    elapsed_s: float = 0.0
    upload_s: float = 0.0
    # Where upload_s went, by phase of the day: bookings, real-time uploads, sending bulk bodies, waiting for
    # the body writer and waiting for the platform's jobs. Waiting for jobs taking most of it means the month
    # ran as fast as the platform ingests.
    phases_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cpu_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # the process's CPU, same phases
    notes: list[str] = field(default_factory=list)
    # Authentications of the run: staff logins (password and TOTP) and staff token refreshes.
    staff_logins: int = 0
    staff_refreshes: int = 0
    telemed_cases: int = 0  # ECG cases submitted
    lab_messages: int = 0  # HL7 messages sent over MLLP and acknowledged AA
    residents: int = 0  # registered in the master index
    contracts: int = 0  # family doctor contracts signed
    followups: int = 0  # chronic disease follow-ups recorded

    @property
    def records_per_s(self) -> float:
        return self.uploaded / self.upload_s if self.upload_s else 0.0
