"""The telemed plan: every figure of the scenario's `telemed` section reproduced by the members and uploads planned."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cityhealth.errors import ValidationFailed
from cityhealth.simulation.scenario import TelemedNetwork, bundled_scenario, load_scenario, scaled
from cityhealth.simulation.telemed_plan import KINDS, NetworkPlan, daily, plan_network, plan_telemed

NANJING = load_scenario(bundled_scenario("nanjing-2022-06"))
SCALES = ("0.001", "0.01", "0.37", "1")
AREAS = {area.code: area.name for area in NANJING.areas}


def _kinds(network: NetworkPlan, region: str) -> dict[str, int]:
    """members_by_kind as telemed-statistics.md counts it."""
    counts = dict.fromkeys(KINDS, 0)
    for member in network.members:
        in_city = member.city == region
        counts["nanjing_tertiary"] += member.kind == "tertiary" and in_city
        counts["nanjing_secondary_plus"] += member.kind in ("tertiary", "secondary_or_above") and in_city
        counts["community"] += member.kind == "community_health_centre" and in_city
        for kind in ("metro_city", "aid", "other"):
            counts[kind] += member.kind == kind
    return counts


@pytest.mark.parametrize("scale", SCALES)
def test_each_network_keeps_its_structure_and_scales_its_volumes(scale: str) -> None:
    factor = Decimal(scale)
    plan = plan_telemed(NANJING, factor)
    assert plan is not None
    assert NANJING.telemed is not None
    region = NANJING.region.name
    for network in plan.networks:
        section: TelemedNetwork = getattr(NANJING.telemed, network.key)
        if section.members is not None:
            assert len(network.members) == section.members
        else:
            assert len(network.members) == sum(section.members_by_kind.values())
        assert len({m.organization for m in network.members}) == len(network.members)  # one membership each
        kinds = _kinds(network, region)
        assert {kind: kinds[kind] for kind in section.members_by_kind} == section.members_by_kind
        covered = {m.area for m in network.members if m.area is not None}
        assert covered == set(AREAS) - set(section.areas_not_covered)
        assert len(covered) == section.areas_covered
        if section.cities:
            cities = list(dict.fromkeys(m.city for m in network.members))
            assert [region, *[c for c in cities if c != region]] == section.cities
        volume = section.cases_month if network.key == "ecg" else section.reports_month
        assert network.volume == scaled(volume, factor)


@pytest.mark.parametrize("scale", SCALES)
def test_the_top_uploaders_are_the_scenarios_scaled_and_every_other_stays_below_the_third(scale: str) -> None:
    factor = Decimal(scale)
    plan = plan_telemed(NANJING, factor)
    assert plan is not None
    assert NANJING.telemed is not None
    for network in plan.networks:
        section: TelemedNetwork = getattr(NANJING.telemed, network.key)
        if not section.top_uploaders:
            continue
        ranked = sorted(network.uploads.items(), key=lambda item: -item[1])
        wanted = [(u.hospital, scaled(u.count, factor)) for u in section.top_uploaders]
        assert ranked[:3] == wanted
        assert all(count < wanted[-1][1] for _, count in ranked[3:])
        assert all(count > 0 for count in network.uploads.values())
        assert set(network.uploads) <= {m.organization for m in network.members}


@pytest.mark.parametrize("scale", SCALES)
def test_images_specimens_and_consultations_add_up_to_the_scaled_figures(scale: str) -> None:
    factor = Decimal(scale)
    plan = plan_telemed(NANJING, factor)
    assert plan is not None
    assert NANJING.telemed is not None
    imaging, lab = plan.network("imaging"), plan.network("lab")
    assert imaging is not None
    assert lab is not None
    assert NANJING.telemed.imaging
    assert NANJING.telemed.lab
    assert len(imaging.images) == imaging.volume  # one study per report
    assert sum(imaging.images) == scaled(NANJING.telemed.imaging.images_month, factor)
    assert min(imaging.images) >= 1
    assert max(imaging.images) > min(imaging.images)
    assert sum(lab.specimens_routed.values()) == scaled(NANJING.telemed.lab.specimens_routed_month, factor)
    assert all(lab.uploads[name] >= count for name, count in lab.specimens_routed.items())
    for key in ("ecg", "imaging"):
        network = plan.network(key)
        assert network is not None
        assert network.consultations == scaled(getattr(NANJING.telemed, key).consultations_month, factor)
    consultation = plan.network("consultation")
    assert consultation is not None
    assert NANJING.telemed.consultation
    assert consultation.consultations + consultation.consultations_opening == scaled(
        NANJING.telemed.consultation.consultations_cumulative, factor)
    assert plan.pathology == NANJING.telemed.pathology  # cumulative structure: never scaled


@pytest.mark.parametrize(("count", "days"), [(0, 30), (1, 30), (7, 30), (30, 30), (31, 30), (9835, 30), (5, 28)])
def test_a_count_is_spread_evenly_over_the_month(count: int, days: int) -> None:
    shares = daily(count, days)
    assert len(shares) == days
    assert sum(shares) == count
    assert max(shares) - min(shares) <= 1


def _network(**changes: Any) -> TelemedNetwork:
    base: dict[str, Any] = {
        "members": 20, "members_by_kind": {"nanjing_secondary_plus": 4}, "areas_not_covered": ["320104"],
        "areas_covered": 11, "reports_month": 1000,
        "top_uploaders": [{"hospital": "甲医院", "count": 400}, {"hospital": "乙医院", "count": 300},
                          {"hospital": "丙医院", "count": 200}]}
    return TelemedNetwork.model_validate(base | changes)


def test_top_uploaders_beyond_the_volume_are_refused() -> None:
    with pytest.raises(ValidationFailed) as refused:
        plan_network("lab", _network(reports_month=800), Decimal(1), "南京市", AREAS)
    assert refused.value.field == "telemed.lab.top_uploaders"


def test_areas_covered_that_do_not_match_the_areas_are_refused() -> None:
    with pytest.raises(ValidationFailed) as refused:
        plan_network("lab", _network(areas_covered=10), Decimal(1), "南京市", AREAS)
    assert refused.value.field == "telemed.lab.areas_covered"


def test_kinds_beyond_the_members_are_refused() -> None:
    with pytest.raises(ValidationFailed) as refused:
        plan_network("lab", _network(members=3), Decimal(1), "南京市", AREAS)
    assert refused.value.field == "telemed.lab.members"


def test_a_rest_too_large_to_stay_below_the_third_uploader_is_refused() -> None:
    # 100 left over 16 other members: 7 each would still be below 200; with the third at 5, it cannot be.
    network = _network(reports_month=1000, top_uploaders=[{"hospital": "甲医院", "count": 600},
                                                          {"hospital": "乙医院", "count": 300},
                                                          {"hospital": "丙医院", "count": 5}])
    with pytest.raises(ValidationFailed) as refused:
        plan_network("lab", network, Decimal(1), "南京市", AREAS)
    assert refused.value.rule == "scenario.infeasible"
