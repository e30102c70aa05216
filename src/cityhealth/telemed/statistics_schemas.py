"""Shapes of the telemed statistics: a network's month in the scenario format's keys, and opening balances."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from cityhealth.db.types import Int64


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TopUploader(_Strict):
    hospital: str
    count: int


class NetworkMonth(_Strict):
    """One network's month; only the keys the network's paragraph carries are set (scenario-format order)."""

    members: int | None = None
    cities: list[str] | None = None
    members_by_kind: dict[str, int] | None = None
    areas_not_covered: list[str] | None = None
    areas_covered: int | None = None
    cases_month: int | None = None
    reports_month: int | None = None
    specimens_routed_month: int | None = None
    images_month: int | None = None
    consultations_month: int | None = None
    consultations_cumulative: int | None = None
    top_uploaders: list[TopUploader] | None = None
    # The members counted, also where the format carries members by kind only (the teleconsultation network).
    members_counted: int = 0


class TelemedMonth(_Strict):
    """The month of the four networks with monthly figures, keyed as the scenario format's `telemed`."""

    month: str
    city_code: str
    consultation: NetworkMonth
    ecg: NetworkMonth
    lab: NetworkMonth
    imaging: NetworkMonth

    @property
    def is_empty(self) -> bool:
        """No member and no volume in any network: the platform has no telemed month to print."""
        counts = ("members_counted", "cases_month", "reports_month", "specimens_routed_month", "images_month",
                  "consultations_month", "consultations_cumulative")
        networks = (self.consultation, self.ecg, self.lab, self.imaging)
        return not any(getattr(network, name) for network in networks for name in counts)


class OpeningBalanceIn(_Strict):
    """Consultations held on an older platform before `as_of` (inclusive), carried into the cumulative figure."""

    as_of: date
    consultations: Int64 = Field(ge=0)
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


class OpeningBalanceRead(_Strict):
    network_code: str
    as_of: date
    consultations: int
    note: str | None
    recorded_by: str
    recorded_at: datetime
