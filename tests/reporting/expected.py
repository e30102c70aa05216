"""expected(scenario, scale): what the bulletin's JSON export must be after simulate(scenario, scale).

Written from the rules of docs/scenario-format.md ("`expected(scenario, scale)`"), on plain
JSON values, independently of cityhealth.reporting, so that it can judge the platform's output:

1. volumes scale to r(value × scale); structure does not;
2. sums stay sums (phone_booking, the region city's calls, self_received);
3. rates are recomputed on the scaled basis;
4. a unit's uploaded_records is at least its upload_days, realtime_forms and the sum of its scaled bases.

r() rounds half up, in exact decimal arithmetic (never float).
"""

from __future__ import annotations

import copy
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

HUNDRED = Decimal(100)
CENT = Decimal("0.01")
# Telemed network keys that describe structure, not volume (rule 1); every other count in a network scales.
TELEMED_STRUCTURE = {"members", "members_by_kind", "areas_covered", "areas_not_covered", "cities", "top_uploaders"}
COLLECTION_VOLUMES = ("uploaded_records", "outpatient_visits", "discharges")
RATE_GROUPS = ("outpatient", "discharge")


def r(value: Decimal) -> int:
    """Round half up to an integer."""
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def expected(scenario: dict[str, Any], scale: Decimal | str | float | int) -> dict[str, Any]:
    """The scenario as the bulletin must export it after a simulation at `scale` (0 < scale ≤ 1)."""
    factor = Decimal(str(scale))
    if not Decimal(0) < factor <= 1:
        raise ValueError(f"scale must be in (0, 1], not {scale}")

    def scaled(count: int) -> int:
        return r(Decimal(count) * factor)

    result = copy.deepcopy(scenario)
    if "booking" in result:
        _booking(result["booking"], scaled)
    if "hotline" in result:
        _hotline(result, scaled)
    if "telemed" in result:
        _telemed(result["telemed"], scaled)
    if "collection" in result:
        _collection(result["collection"], scaled, factor)
    return result


def _booking(booking: dict[str, Any], scaled: Any) -> None:
    for row in booking["by_hospital"]:
        for channel in ("online_12320", "phone", "clinic", "third_party"):
            row[channel] = scaled(row[channel])
    for row in booking["by_app"]:
        row["bookings"] = scaled(row["bookings"])
    booking["cumulative_at_month_end"] = scaled(booking["cumulative_at_month_end"])


def _hotline(result: dict[str, Any], scaled: Any) -> None:
    hotline = result["hotline"]
    categories = hotline["calls_by_category"]
    for key in categories:
        categories[key] = scaled(categories[key])
    if "booking" in result:  # rule 2: phone bookings are the booking table's phone column (already scaled)
        categories["phone_booking"] = sum(row["phone"] for row in result["booking"]["by_hospital"])
    region_code = result["region"]["code"]
    for city in hotline["calls_by_city"]:
        if city["city"] == region_code:
            city["calls"] = sum(categories.values())
        else:
            city["calls"] = scaled(city["calls"])
    orders = hotline["work_orders"]
    orders["city_12345"] = scaled(orders["city_12345"])
    orders["province_12345"] = scaled(orders["province_12345"])
    orders["self_received"] = categories["complaint"]


def _telemed(telemed: dict[str, Any], scaled: Any) -> None:
    for name, network in telemed.items():
        if name == "pathology":
            continue  # cumulative structure counts: unscaled
        for key, value in network.items():
            if key not in TELEMED_STRUCTURE and isinstance(value, int):
                network[key] = scaled(value)
        for uploader in network.get("top_uploaders", []):
            uploader["count"] = scaled(uploader["count"])


def _rate(pct: str | None, basis: int | None, factor: Decimal) -> tuple[str | None, int | None]:
    if pct is None and basis is None:
        return None, None
    if pct is None or basis is None:
        raise ValueError(f"a rate and its basis are null together (rate {pct}, basis {basis})")
    new_basis = max(1, r(Decimal(basis) * factor))
    conforming = r(Decimal(new_basis) * Decimal(pct) / HUNDRED)
    new_pct = (HUNDRED * conforming / new_basis).quantize(CENT, rounding=ROUND_HALF_UP)
    return f"{new_pct:.2f}", new_basis


def _collection(collection: dict[str, Any], scaled: Any, factor: Decimal) -> None:
    for unit in [*collection["districts"], *collection["hospitals"]]:
        for key in COLLECTION_VOLUMES:
            unit[key] = scaled(unit[key])
        if "health_records_cumulative" in unit:
            records = unit["health_records_cumulative"]
            for key in records:
                records[key] = scaled(records[key])
        bases = 0
        for group in RATE_GROUPS:
            pct, basis = _rate(unit[f"{group}_conformance_pct"], unit[f"{group}_conformance_basis"], factor)
            unit[f"{group}_conformance_pct"], unit[f"{group}_conformance_basis"] = pct, basis
            bases += basis or 0
        unit["uploaded_records"] = max(unit["uploaded_records"], unit["upload_days"], unit["realtime_forms"], bases)
    collection["cumulative_accepted_at_month_end"] = scaled(collection["cumulative_accepted_at_month_end"])
