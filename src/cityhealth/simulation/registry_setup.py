"""Registering what the scenario names before its month: the areas, and reading the registry's paged lists."""

from __future__ import annotations

from typing import Any

from cityhealth.registry.identifiers import province_of
from cityhealth.simulation.actors import Actor, SimulationError
from cityhealth.simulation.scenario import Scenario


async def all_rows(actor: Actor, path: str) -> list[dict[str, Any]]:
    """Every row of a paged listing."""
    items: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = (await actor.call("GET", path, params={"limit": 500, "offset": offset})).json()
        items.extend(page["items"])
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return items


async def register_province(operator: Actor, known: set[str], province: tuple[str, str]) -> None:
    """The province (code, name) registered unless `known` has it; `known` then has it."""
    if province[0] not in known:
        await operator.call("POST", "/api/registry/areas",
                            json={"code": province[0], "name": province[1], "level": "province"})
        known.add(province[0])


async def register_areas(operator: Actor, scenario: Scenario) -> None:
    """The scenario's province, region and areas, registered where the registry lacks them."""
    existing = {row["code"] for row in await all_rows(operator, "/api/registry/areas")}
    region = scenario.region
    province = province_of(region.code)
    if province is None:
        raise SimulationError(f"region {region.code} is not a GB/T 2260 city code", field="region.code",
                              value=region.code, rule="scenario.region")
    await register_province(operator, existing, province)
    if region.code not in existing:
        await operator.call("POST", "/api/registry/areas", json={
            "code": region.code, "name": region.name, "level": "city", "parent_code": province[0]})
    for area in scenario.areas:
        if area.code in existing:
            continue
        level = "district" if area.code.isdigit() else "reporting_unit"
        await operator.call("POST", "/api/registry/areas", json={
            "code": area.code, "name": area.name, "level": level, "parent_code": region.code})
