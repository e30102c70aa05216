"""Remote diagnosis use cases: the networks, their members and designated reading centres, coverage per area.

The room's other use cases sit beside this module (cases.py: submission, routing and the reading workflow;
reading.py: claim and report; consultations.py). Other rooms reach the room through this module only. The
registry is reached through registry.service only (pyproject's import contracts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock, business_date
from cityhealth.errors import Conflict, NotFound, ValidationFailed
from cityhealth.registry import service as registry
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal
from cityhealth.telemed import repository
from cityhealth.telemed.models import Member
from cityhealth.telemed.schemas import (
    AreaCoverage,
    CoverageRead,
    DesignationIn,
    MemberJoin,
    MemberLeave,
    MemberRead,
    NetworkRead,
    TargetRead,
)

COVERAGE_LEVELS = ("district", "reporting_unit")


async def list_networks(session: AsyncSession, clock: Clock) -> list[NetworkRead]:
    """The five networks, their turnaround targets and today's members."""
    today = business_date(clock.now())
    targets = await repository.targets(session)
    counts = await repository.member_counts(session, today)
    return [
        NetworkRead(
            code=n.code,
            name=n.name,
            case_types=n.case_types,
            targets=[
                TargetRead(priority=p, minutes=m)
                for p, m in sorted(targets.get(n.code, {}).items(), key=lambda t: t[1])
            ],
            active_members=counts.get(n.code, (0, 0))[0],
            reading_centres=counts.get(n.code, (0, 0))[1],
        )
        for n in await repository.networks(session)
    ]


async def require_network(session: AsyncSession, code: str) -> None:
    if await repository.network(session, code) is None:
        raise NotFound(f"no network {code}", field="network_code", value=code, rule="telemed.network.known")


async def _member_reads(session: AsyncSession, found: list[Member]) -> list[MemberRead]:
    names = await registry.organization_names(session, {m.organization_id for m in found})
    designated = await repository.designations_of(session, [m.id for m in found])
    return [
        MemberRead(
            id=m.id,
            network_code=m.network_code,
            organization_id=m.organization_id,
            organization_name=names.get(m.organization_id, ""),
            city_code=m.city_code,
            area_code=m.area_code,
            kind=m.kind,
            role=m.role,
            reads_case_types=m.reads_case_types,
            reads_modalities=m.reads_modalities,
            joined_on=m.joined_on,
            left_on=m.left_on,
            designated_centre_ids=designated[m.id],
        )
        for m in found
    ]


async def list_members(
    session: AsyncSession, clock: Clock, network_code: str, *, on: date | None = None, every: bool = False
) -> list[MemberRead]:
    """A network's members on a day (today by default), or every membership it ever had."""
    await require_network(session, network_code)
    day = None if every else (on or business_date(clock.now()))
    return await _member_reads(session, await repository.members(session, network_code, on=day))


async def get_member(session: AsyncSession, member_id: int) -> MemberRead:
    found = await repository.member(session, member_id)
    if found is None:
        raise NotFound(f"no member {member_id}", field="member_id", value=member_id)
    return (await _member_reads(session, [found]))[0]


@dataclass(frozen=True)
class _Area:
    code: str
    level: str
    parent_code: str | None


async def _area(session: AsyncSession, code: str, field: str) -> _Area:
    """The area named by `field`, or 422 naming it (a reference in a request body, not a missing resource)."""
    try:
        found = await registry.get_area(session, code)
        return _Area(found.code, found.level, found.parent_code)
    except NotFound:
        raise ValidationFailed(
            f"{field}: no area has code {code}", field=field, value=code, rule="area.unknown"
        ) from None


async def _city(session: AsyncSession, code: str, field: str, rule: str) -> None:
    """Refuse with 422 naming `field` when no area has the code or the area is not a city."""
    area = await _area(session, code, field)
    if area.level != "city":
        raise ValidationFailed(f"{field}: {code} is a {area.level}, not a city", field=field, value=code, rule=rule)


async def _city_and_area(
    session: AsyncSession, organization_area: str | None, data: MemberJoin
) -> tuple[str, str | None]:
    """The member's city and covered area: as given (checked), else from its organization's area."""
    area_code = data.area_code or organization_area
    area = await _area(session, area_code, "area_code") if area_code is not None else None
    if area is not None and area.level not in (*COVERAGE_LEVELS, "city"):
        raise ValidationFailed(
            f"area_code: {area_code} is a {area.level}, not a district or a city",
            field="area_code",
            value=area_code,
            rule="telemed.member.area_level",
        )
    city_code = data.city_code
    if city_code is None and area is not None:
        city_code = area.code if area.level == "city" else area.parent_code
    if city_code is None:
        raise ValidationFailed(
            "city_code: the organization has no area to take its city from; name the city",
            field="city_code",
            value=None,
            rule="telemed.member.city_required",
        )
    await _city(session, city_code, "city_code", "telemed.member.city_level")
    if area is not None and area.level != "city" and area.parent_code != city_code:
        raise ValidationFailed(
            f"area_code: {area_code} does not lie in city {city_code}",
            field="area_code",
            value=area_code,
            rule="telemed.member.area_in_city",
        )
    return city_code, (area.code if area is not None and area.level != "city" else None)


async def join(
    session: AsyncSession,
    clock: Clock,
    principal: Principal | None,
    network_code: str,
    data: MemberJoin,
    *,
    operator: str | None = None,
) -> MemberRead:
    """An organization joins a network; the same join again is the same membership (natural key: network,
    organization, joining day), a different one while it is still a member is refused."""
    network = await repository.network(session, network_code)
    if network is None:
        raise NotFound(
            f"no network {network_code}", field="network_code", value=network_code, rule="telemed.network.known"
        )
    for case_type in data.reads_case_types or ():
        if case_type not in network.case_types:
            raise ValidationFailed(
                f"reads_case_types: the {network_code} network carries no {case_type}",
                field="reads_case_types",
                value=case_type,
                rule="telemed.member.reads",
            )
    organization = await registry.organization_by_id(session, data.organization_id)
    if organization is None:
        raise ValidationFailed(
            f"organization_id: no organization {data.organization_id}",
            field="organization_id",
            value=data.organization_id,
            rule="organization.unknown",
        )
    area_of = (await registry.get_organization(session, data.organization_id)).area_code
    city_code, area_code = await _city_and_area(session, area_of, data)
    values = {
        "network_code": network_code,
        "organization_id": data.organization_id,
        "city_code": city_code,
        "area_code": area_code,
        "kind": data.kind,
        "role": data.role,
        "reads_case_types": data.reads_case_types,
        "reads_modalities": data.reads_modalities,
    }
    held = await repository.member_by_key(session, network_code, data.organization_id, data.joined_on)
    if held is not None:
        if any(getattr(held, name) != value for name, value in values.items()):
            raise Conflict(
                f"organization {data.organization_id} joined {network_code} on {data.joined_on} with other details",
                field="organization_id",
                value=data.organization_id,
                rule="telemed.member.same_join",
            )
        return await get_member(session, held.id)
    for other in await repository.memberships_of(session, network_code, data.organization_id):
        if other.left_on is None or other.left_on > data.joined_on:
            raise Conflict(
                f"organization {data.organization_id} is a member of {network_code} since "
                f"{other.joined_on} (member {other.id}); it must leave before joining again",
                field="organization_id",
                value=data.organization_id,
                rule="telemed.member.one_at_a_time",
            )
    member_id = await repository.insert_member(
        session,
        values
        | {
            "joined_on": data.joined_on,
            "left_on": None,
            "created_at": clock.now(),
            "created_by": principal.subject if principal is not None else (operator or "operator"),
        },
    )
    if member_id is None:  # a concurrent identical join won the natural key
        raise Conflict(
            "the same join is being made concurrently; retry",
            field="organization_id",
            value=data.organization_id,
            rule="telemed.member.same_join",
        )
    record(
        session,
        clock,
        principal,
        Action.CREATE,
        "telemed_member",
        resource_id=member_id,
        detail=f"{network_code} organization={data.organization_id}",
        actor=operator,
        actor_kind="operator" if operator else None,
    )
    return await get_member(session, member_id)


async def leave(
    session: AsyncSession,
    clock: Clock,
    principal: Principal | None,
    member_id: int,
    data: MemberLeave,
    *,
    operator: str | None = None,
) -> MemberRead:
    """The member leaves on a day (the first it is no longer one); leaving again on that day changes nothing."""
    held = await repository.member(session, member_id)
    if held is None:
        raise NotFound(f"no member {member_id}", field="member_id", value=member_id)
    if held.left_on is not None and held.left_on != data.left_on:
        raise Conflict(
            f"member {member_id} left on {held.left_on} already",
            field="left_on",
            value=str(data.left_on),
            rule="telemed.member.left_once",
        )
    if data.left_on < held.joined_on:
        raise ValidationFailed(
            f"left_on: {data.left_on} is before the member joined ({held.joined_on})",
            field="left_on",
            value=str(data.left_on),
            rule="telemed.member.dates",
        )
    if held.left_on is None:
        await repository.set_left(session, member_id, data.left_on)
        record(
            session,
            clock,
            principal,
            Action.UPDATE,
            "telemed_member",
            resource_id=member_id,
            detail=f"left on {data.left_on}",
            actor=operator,
            actor_kind="operator" if operator else None,
        )
    session.expire(held)
    return await get_member(session, member_id)


async def designate(
    session: AsyncSession, clock: Clock, principal: Principal | None, member_id: int, data: DesignationIn
) -> MemberRead:
    """Set a requester's designated reading centres (the same list again is the same state)."""
    requester = await repository.member(session, member_id)
    if requester is None:
        raise NotFound(f"no member {member_id}", field="member_id", value=member_id)
    if requester.role not in repository.REQUESTING_ROLES:
        raise ValidationFailed(
            f"member {member_id} is a reading centre only: it submits no cases",
            field="member_id",
            value=member_id,
            rule="telemed.designation.requester",
        )
    if len(set(data.centre_member_ids)) != len(data.centre_member_ids):
        raise ValidationFailed(
            "centre_member_ids: a centre is named twice",
            field="centre_member_ids",
            value=data.centre_member_ids,
            rule="telemed.designation.distinct",
        )
    centres = await repository.members_by_id(session, data.centre_member_ids)
    for centre_id in data.centre_member_ids:
        centre = centres.get(centre_id)
        if (
            centre is None
            or centre.network_code != requester.network_code
            or centre.role not in repository.READING_ROLES
            or centre.id == requester.id
        ):
            raise ValidationFailed(
                f"centre_member_ids: member {centre_id} is not a reading centre of {requester.network_code}",
                field="centre_member_ids",
                value=centre_id,
                rule="telemed.designation.centre",
            )
    await repository.replace_designations(session, member_id, data.centre_member_ids, clock.now())
    record(
        session,
        clock,
        principal,
        Action.UPDATE,
        "telemed_member",
        resource_id=member_id,
        detail=f"designated centres {data.centre_member_ids}",
    )
    return await get_member(session, member_id)


async def coverage(
    session: AsyncSession, clock: Clock, network_code: str, city_code: str, on: date | None = None
) -> CoverageRead:
    """Which districts and reporting units of a city have an active member of the network on a day: counted
    from the members each time, never stored, so a join or a leave shows at once."""
    await require_network(session, network_code)
    day = on or business_date(clock.now())
    await _city(session, city_code, "city", "telemed.coverage.city")
    areas = [
        a
        for a in (await registry.list_areas(session, parent_code=city_code, active=True, limit=1000)).items
        if a.level in COVERAGE_LEVELS
    ]
    per_area: dict[str, int] = {}
    for m in await repository.members(session, network_code, on=day):
        if m.area_code is not None:
            per_area[m.area_code] = per_area.get(m.area_code, 0) + 1
    rows = [
        AreaCoverage(code=a.code, name=a.name, covered=per_area.get(a.code, 0) > 0, members=per_area.get(a.code, 0))
        for a in sorted(areas, key=lambda a: a.code)
    ]
    covered = sum(1 for row in rows if row.covered)
    return CoverageRead(
        network_code=network_code,
        city_code=city_code,
        on=day,
        areas=rows,
        covered=covered,
        not_covered=len(rows) - covered,
    )
