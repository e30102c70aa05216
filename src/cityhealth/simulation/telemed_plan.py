"""The scenario's `telemed` section as a month of activity: who is a member of which network, as what and
where, and who uploads how much on which day (docs/decisions/telemed-statistics.md defines each figure).

Structure is kept at any scale (members, kinds, areas, cities, pathology); volumes scale (expected()). Each
network's volume goes first to its top uploaders, their scaled counts exactly; the rest is spread evenly
over a few other members, each kept below the third uploader's count so that the top three stay the top
three. Every count is spread over the month's days evenly, as the other sections are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from cityhealth.errors import ValidationFailed
from cityhealth.simulation.plan import spread
from cityhealth.simulation.scenario import PathologyTotals, Scenario, TelemedNetwork, scaled

# The scenario's network keys and the platform's network codes.
NETWORKS = {"consultation": "teleconsultation", "ecg": "ecg", "lab": "lab", "imaging": "imaging"}
# members_by_kind keys (telemed-statistics.md) and the member kind the simulator gives them. A
# `nanjing_secondary_plus` hospital joins as `secondary_or_above`, so that it is never also `nanjing_tertiary`.
KINDS = {"nanjing_tertiary": "tertiary", "nanjing_secondary_plus": "secondary_or_above",
         "community": "community_health_centre", "metro_city": "metro_city", "aid": "aid", "other": "other"}
HOSPITAL_KINDS = ("tertiary", "secondary_or_above")
# Members beyond those the kinds name: community health centres of the city's covered districts.
REST_KIND = "community_health_centre"
# How many members beside the top three carry the rest of a network's volume (each one uploader to play).
OTHER_UPLOADERS = 12
# The region's neighbours that join as metro-area cities, when no city is named (the teleconsultation network).
DEFAULT_METRO_CITY = "镇江市"


@dataclass(frozen=True)
class MemberPlan:
    organization: str
    kind: str  # the platform's member kind
    city: str  # city name: the region's, or a metro-area city's
    area: str | None  # the district or reporting unit covered; None: city-level (covers no district)
    role: str  # requester | reading_centre | both
    hospital: bool  # a hospital (else a community health centre)


@dataclass(frozen=True)
class NetworkPlan:
    key: str  # the scenario's key (consultation, ecg, lab, imaging)
    code: str  # the platform's network code
    members: tuple[MemberPlan, ...]
    uploads: dict[str, int]  # organization -> the month's volume it uploads (cases, or reports); tops first
    images: tuple[int, ...]  # imaging: images of each study of the month, in upload order
    specimens_routed: dict[str, int]  # lab: organization -> specimens it ships in the month
    consultations: int  # scheduled in the month
    consultations_opening: int  # teleconsultation: the opening balance before the month

    @property
    def volume(self) -> int:
        return sum(self.uploads.values())


@dataclass(frozen=True)
class TelemedPlan:
    networks: tuple[NetworkPlan, ...]
    pathology: PathologyTotals | None

    def network(self, key: str) -> NetworkPlan | None:
        return next((network for network in self.networks if network.key == key), None)


def daily(count: int, days: int) -> list[int]:
    """`count` over `days` days as evenly as whole numbers go, the extra ones spaced out over the month."""
    return [(day + 1) * count // days - day * count // days for day in range(days)]


def scenario_hospitals(scenario: Scenario) -> list[str]:
    """The region's hospitals the scenario's other sections name (collection, then booking), repeats kept."""
    hospitals = [row.hospital for row in scenario.collection.hospitals] if scenario.collection else []
    return hospitals + ([row.hospital for row in scenario.booking.by_hospital] if scenario.booking else [])


def _hospital_names(pool: list[str], taken: set[str], region: str) -> Iterator[str]:
    """The region's hospitals for members that the scenario does not name: those the scenario's other sections
    name first, then generated ones (the same names in every network, so an organization joins several)."""
    yield from (name for name in dict.fromkeys(pool) if name not in taken)
    index = 0
    while True:
        index += 1
        yield f"{region}远程医疗协作医院{index:02d}"


def _members(key: str, section: TelemedNetwork, region: str, areas: dict[str, str],
             hospitals: list[str]) -> list[MemberPlan]:
    """The network's members: the named uploaders first (hospitals of the region, at city level), then each
    kind's count, then community health centres up to `members`, spread over the covered areas so that each
    has one."""
    covered = [code for code in sorted(areas) if code not in section.areas_not_covered]
    if len(covered) != section.areas_covered:
        raise ValidationFailed(
            f"telemed.{key}: {len(areas)} areas less {len(section.areas_not_covered)} not covered is "
            f"{len(covered)}, not {section.areas_covered}", field=f"telemed.{key}.areas_covered",
            value=section.areas_covered, rule="scenario.infeasible")
    by_kind = dict(section.members_by_kind)
    unknown = set(by_kind) - set(KINDS)
    if unknown:
        raise ValidationFailed(f"telemed.{key}: unknown member kinds {sorted(unknown)}",
                               field=f"telemed.{key}.members_by_kind", rule="scenario.format")
    total = section.members if section.members is not None else sum(by_kind.values())
    hospital_kind = next((kind for kind in ("nanjing_tertiary", "nanjing_secondary_plus") if by_kind.get(kind)),
                         "nanjing_secondary_plus")
    names = _hospital_names(hospitals, {uploader.hospital for uploader in section.top_uploaders}, region)
    members: list[MemberPlan] = []
    for uploader in section.top_uploaders:
        if by_kind.get(hospital_kind, 0) > 0:
            by_kind[hospital_kind] -= 1
        members.append(MemberPlan(uploader.hospital, KINDS[hospital_kind], region, None, "both", True))
    metro_cities = section.cities[1:] or [DEFAULT_METRO_CITY]
    per_area: dict[str, int] = {}

    def centre(area: str) -> MemberPlan:
        per_area[area] = per_area.get(area, 0) + 1
        return MemberPlan(f"{areas[area]}社区卫生服务中心{per_area[area]:02d}", REST_KIND, region, area, "requester",
                          False)

    for kind, count in by_kind.items():
        for index in range(count):
            if kind == "metro_city":
                city = metro_cities[index * len(metro_cities) // count]
                number = sum(1 for m in members if m.city == city) + 1
                members.append(MemberPlan(f"{city}远程医疗协作医院{number:02d}", "metro_city", city, None,
                                          "requester", True))
            elif kind == "community":
                members.append(centre(covered[index % len(covered)]))
            elif kind in ("aid", "other"):
                label = "对口支援医院" if kind == "aid" else "远程医疗协作机构"
                members.append(MemberPlan(f"{region}{label}{index + 1:02d}", kind, region, None, "requester", True))
            else:
                members.append(MemberPlan(next(names), KINDS[kind], region, None, "both", True))
    rest = total - len(members)
    if rest < 0:
        raise ValidationFailed(f"telemed.{key}: the kinds and named uploaders make {len(members)} members, more "
                               f"than {total}", field=f"telemed.{key}.members", value=total, rule="scenario.infeasible")
    missing = [code for code in covered if code not in per_area]
    if len(missing) > rest or (rest and not covered):
        raise ValidationFailed(f"telemed.{key}: {len(missing)} covered areas have no member and {rest} members "
                               "are left to place", field=f"telemed.{key}.areas_covered", rule="scenario.infeasible")
    for index in range(rest):
        members.append(centre(missing[index] if index < len(missing) else covered[index % len(covered)]))
    return members


def _uploads(key: str, section: TelemedNetwork, volume: int, scale: Decimal, region: str,
             members: list[MemberPlan]) -> dict[str, int]:
    tops = {uploader.hospital: scaled(uploader.count, scale) for uploader in section.top_uploaders}
    rest = volume - sum(tops.values())
    if rest < 0:
        raise ValidationFailed(f"telemed.{key}: the top uploaders upload more than the month's volume",
                               field=f"telemed.{key}.top_uploaders", rule="scenario.infeasible")
    others = [m.organization for m in members if m.organization not in tops and m.city == region]
    if not tops:
        return dict(zip(others, spread(volume, len(others)), strict=False)) if others else {}
    ceiling = min(tops.values())
    needed = OTHER_UPLOADERS
    if rest and ceiling > 1:
        needed = max(needed, -(-rest // (ceiling - 1)))
    chosen = others[:needed]
    shares = spread(rest, len(chosen)) if chosen else []
    if (rest and not chosen) or (shares and shares[0] >= ceiling > 0 and rest):
        raise ValidationFailed(f"telemed.{key}: the rest of the volume ({rest}) cannot be spread below the third "
                               f"uploader's {ceiling}", field=f"telemed.{key}.top_uploaders",
                               rule="scenario.infeasible")
    return {**tops, **{name: share for name, share in zip(chosen, shares, strict=True) if share}}


def _images(studies: int, images: int) -> tuple[int, ...]:
    """`images` over `studies` studies: varied (a CT series or two against a handful of radiographs), each ≥ 1."""
    if studies == 0:
        if images:
            raise ValidationFailed("telemed.imaging: images without any study", field="telemed.imaging.images_month",
                                   value=images, rule="scenario.infeasible")
        return ()
    if images < studies:
        raise ValidationFailed("telemed.imaging: fewer images than studies", field="telemed.imaging.images_month",
                               value=images, rule="scenario.infeasible")
    weights = [1 + (index * 7919) % 13 for index in range(studies)]  # a fixed, uneven pattern
    extra = images - studies
    total = sum(weights)
    counts = [1 + extra * weight // total for weight in weights]
    for index in range(images - sum(counts)):  # what the floors left, one each
        counts[index % studies] += 1
    return tuple(counts)


def plan_network(key: str, section: TelemedNetwork, scale: Decimal, region: str, areas: dict[str, str],
                 hospitals: list[str] | None = None) -> NetworkPlan:
    """One network's month; `areas` the region's districts and reporting units (code -> name), `hospitals` the
    region's hospitals known from the scenario's other sections."""
    members = _members(key, section, region, areas, hospitals or [])
    volume = scaled(section.cases_month if key == "ecg" else section.reports_month, scale)
    uploads = _uploads(key, section, volume, scale, region, members) if key != "consultation" else {}
    routed: dict[str, int] = {}
    if section.specimens_routed_month:
        senders = list(uploads)
        routed = {name: share for name, share in zip(
            senders, spread(scaled(section.specimens_routed_month, scale), len(senders)), strict=True) if share}
        if any(count > uploads[name] for name, count in routed.items()):  # a routed specimen's result is a report
            raise ValidationFailed(f"telemed.{key}: more specimens routed than reports to carry their results",
                                   field=f"telemed.{key}.specimens_routed_month", rule="scenario.infeasible")
    cumulative = scaled(section.consultations_cumulative, scale)
    in_month = scaled(section.consultations_month, scale) if key != "consultation" else cumulative - cumulative * 3 // 4
    return NetworkPlan(
        key=key, code=NETWORKS[key], members=tuple(members), uploads=uploads,
        images=_images(volume, scaled(section.images_month, scale)) if key == "imaging" else (),
        specimens_routed=routed, consultations=in_month,
        consultations_opening=cumulative - in_month if key == "consultation" else 0)


def plan_telemed(scenario: Scenario, scale: Decimal) -> TelemedPlan | None:
    section = scenario.telemed
    if section is None:
        return None
    region = scenario.region.name
    areas = {area.code: area.name for area in scenario.areas}
    hospitals = scenario_hospitals(scenario)
    networks = tuple(plan_network(key, network, scale, region, areas, hospitals)
                     for key in NETWORKS if (network := getattr(section, key)) is not None)
    return TelemedPlan(networks, section.pathology)
