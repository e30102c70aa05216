"""The bulletin's 远程医疗系统数据统计: each network's month for a city, from maintained aggregates only.

Members, kinds, cities and coverage come from the members table (hundreds of rows) on the month's last day;
the volumes and top uploaders from `telemed_month_volumes`, kept as cases, consultations, lab messages and
imaging reports and studies are written; the cumulative consultations add the months up to this one and the
opening balances. docs/decisions/telemed-statistics.md defines every figure; nothing here reads a case, a
report or a message of the month.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock, month_bounds
from cityhealth.errors import Conflict, ValidationFailed
from cityhealth.registry import service as registry
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal
from cityhealth.telemed import repository
from cityhealth.telemed import statistics_repository as figures
from cityhealth.telemed.models import Member
from cityhealth.telemed.service import COVERAGE_LEVELS, require_network
from cityhealth.telemed.statistics_schemas import (
    NetworkMonth,
    OpeningBalanceIn,
    OpeningBalanceRead,
    TelemedMonth,
    TopUploader,
)

TOP = 3
# The format's network keys and the networks they print.
NETWORKS = {"consultation": "teleconsultation", "ecg": "ecg", "lab": "lab", "imaging": "imaging"}
# members_by_kind: the keys each paragraph names, in its order.
KIND_KEYS = {
    "consultation": ("nanjing_secondary_plus", "community", "metro_city", "aid", "other"),
    "ecg": ("nanjing_tertiary", "metro_city"),
    "lab": ("nanjing_secondary_plus",),
    "imaging": ("nanjing_secondary_plus",),
}
# Each key: the member kinds it counts, and whether the member must be in the bulletin's city.
KIND_RULES: dict[str, tuple[frozenset[str], bool]] = {
    "nanjing_tertiary": (frozenset({"tertiary"}), True),
    "nanjing_secondary_plus": (frozenset({"tertiary", "secondary_or_above"}), True),
    "community": (frozenset({"community_health_centre"}), True),
    "metro_city": (frozenset({"metro_city"}), False),
    "aid": (frozenset({"aid"}), False),
    "other": (frozenset({"other"}), False),
}
# The volume a network ranks its uploaders by.
UPLOADS = {"ecg": "cases_submitted", "lab": "reports_uploaded", "imaging": "reports_uploaded"}
# Networks whose paragraph prints a cumulative figure an opening balance may carry over.
CUMULATIVE_NETWORKS = ("teleconsultation",)


def kinds_of(members: Sequence[Member], city_code: str, keys: Sequence[str]) -> dict[str, int]:
    """members_by_kind: each key's count of `members` (docs/decisions/telemed-statistics.md's table)."""
    return {key: _count_kind(members, city_code, key) for key in keys}


def _count_kind(members: Sequence[Member], city_code: str, key: str) -> int:
    kinds, in_city = KIND_RULES[key]
    return sum(1 for m in members if m.kind in kinds and (not in_city or m.city_code == city_code))


def top_uploaders(rows: Sequence[dict[str, Any]], column: str, names: dict[int, str]) -> list[TopUploader]:
    """The three largest counts, largest first, ties to the lower organization id; zero counts never."""
    ranked = sorted((row for row in rows if row[column] > 0), key=lambda row: (-row[column], row["organization_id"]))
    return [TopUploader(hospital=names.get(row["organization_id"], ""), count=row[column]) for row in ranked[:TOP]]


async def _city_areas(session: AsyncSession, city_code: str) -> list[str]:
    page = await registry.list_areas(session, parent_code=city_code, active=True, limit=1000)
    return sorted(area.code for area in page.items if area.level in COVERAGE_LEVELS)


async def _cities(session: AsyncSession, members: Sequence[Member], city_code: str) -> list[str]:
    """The members' cities by name: the bulletin's city first, then each in the order of its first membership."""
    order = [city_code] if any(m.city_code == city_code for m in members) else []
    for m in sorted(members, key=lambda m: (m.joined_on, m.id)):
        if m.city_code not in order:
            order.append(m.city_code)
    return [(await registry.get_area(session, code)).name for code in order]


async def month_statistics(session: AsyncSession, month: str, city_code: str) -> TelemedMonth:
    """The four networks' month for the city (the pathology room gives pathology's cumulative counts)."""
    first, last = month_bounds(month)
    areas = await _city_areas(session, city_code)
    volumes = await figures.month_rows(session, first)
    names = await registry.organization_names(
        session, {row["organization_id"] for rows in volumes.values() for row in rows}
    )
    result: dict[str, NetworkMonth] = {}
    for key, network_code in NETWORKS.items():
        members = await repository.members(session, network_code, on=last)
        named = {m.area_code for m in members if m.area_code is not None}
        rows = volumes.get(network_code, [])

        def total(column: str, rows: list[dict[str, Any]] = rows) -> int:
            return sum(row[column] for row in rows)

        values: dict[str, Any] = {
            "members": len(members),
            "members_by_kind": kinds_of(members, city_code, KIND_KEYS[key]),
            "areas_not_covered": [code for code in areas if code not in named],
            "areas_covered": sum(1 for code in areas if code in named),
            "members_counted": len(members),
        }
        values |= await _volumes(session, key, network_code, first, last, total)
        if key == "consultation":
            del values["members"]  # the format carries its members by kind only
        if key == "ecg":
            values["cities"] = await _cities(session, members, city_code)
        if key in UPLOADS:
            values["top_uploaders"] = top_uploaders(rows, UPLOADS[key], names)
        result[key] = NetworkMonth(**values)
    return TelemedMonth(month=month, city_code=city_code, **result)


async def _volumes(
    session: AsyncSession, key: str, network_code: str, first: date, last: date, total: Callable[[str], int]
) -> dict[str, int]:
    """The month's volumes the network's paragraph prints."""
    if key == "consultation":
        held = await figures.consultations_until(session, network_code, first)
        return {"consultations_cumulative": held + await figures.opening_until(session, network_code, last)}
    if key == "ecg":
        return {"cases_month": total("cases_submitted"), "consultations_month": total("consultations")}
    if key == "lab":
        return {"reports_month": total("reports_uploaded"), "specimens_routed_month": total("specimens_routed")}
    return {
        "reports_month": total("reports_uploaded"),
        "images_month": total("images"),
        "consultations_month": total("consultations"),
    }


def _read(balance: Any) -> OpeningBalanceRead:
    return OpeningBalanceRead(
        network_code=balance.network_code,
        as_of=balance.as_of,
        consultations=balance.consultations,
        note=balance.note,
        recorded_by=balance.recorded_by,
        recorded_at=balance.recorded_at,
    )


async def record_opening_balance(
    session: AsyncSession,
    clock: Clock,
    principal: Principal | None,
    network_code: str,
    data: OpeningBalanceIn,
    *,
    operator: str | None = None,
) -> OpeningBalanceRead:
    """Carry a network's consultations over from an older platform, counted in every month ending on or after
    `as_of`. One balance per network and day: the same one again is that balance, another figure is 409."""
    await require_network(session, network_code)
    if network_code not in CUMULATIVE_NETWORKS:
        raise ValidationFailed(
            f"network_code: the {network_code} network prints no cumulative figure to carry a balance into "
            f"(only {', '.join(CUMULATIVE_NETWORKS)})",
            field="network_code",
            value=network_code,
            rule="telemed.opening_balance.network",
        )
    await figures.insert_opening_balance(
        session,
        {
            "network_code": network_code,
            "as_of": data.as_of,
            "consultations": data.consultations,
            "note": data.note,
            "recorded_by": principal.subject if principal is not None else (operator or "operator"),
            "recorded_at": clock.now(),
        },
    )
    held = await figures.opening_balance(session, network_code, data.as_of)
    if held is None:  # pragma: no cover - inserted above, or there before
        raise RuntimeError("the opening balance vanished after its insert")
    if held.consultations != data.consultations:
        raise Conflict(
            f"an opening balance of {held.consultations} consultations is recorded for {network_code} as of "
            f"{data.as_of} already",
            field="consultations",
            value=data.consultations,
            rule="telemed.opening_balance.once",
        )
    record(
        session,
        clock,
        principal,
        Action.UPDATE,
        "telemed_opening_balance",
        resource_id=None,
        detail=f"{network_code} as of {data.as_of}: {data.consultations} consultations",
        actor=operator,
        actor_kind="operator" if operator else None,
    )
    return _read(held)


async def opening_balances(session: AsyncSession) -> list[OpeningBalanceRead]:
    return [_read(balance) for balance in await figures.opening_balances(session, CUMULATIVE_NETWORKS)]
