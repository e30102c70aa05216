"""The telemed section's checks: figures that cannot all be true, reported to the editor, never corrected.

Each finding is (code, table, row, message); checks.py makes it a TableWarning like every other table's."""

from __future__ import annotations

from collections.abc import Iterator

from cityhealth.reporting.model import BulletinData, TelemedNetwork, TelemedSection

Finding = tuple[str, str, str | None, str]

# The volume each network's top uploaders rank.
RANKED = {"ecg": "cases_month", "lab": "reports_month", "imaging": "reports_month"}


def telemed_checks(data: BulletinData, section: TelemedSection) -> Iterator[Finding]:
    """Warnings about the section's networks, in the paragraphs' order."""
    for key in ("consultation", "ecg", "lab", "imaging"):
        network: TelemedNetwork | None = getattr(section, key)
        if network is not None:
            yield from _network(data, f"telemed.{key}", key, network)


def _network(data: BulletinData, table: str, key: str, network: TelemedNetwork) -> Iterator[Finding]:
    kinds = sum((network.members_by_kind or {}).values())
    if network.members is not None and kinds > network.members:
        yield ("kinds_exceed_members", table, None,
               f"members by kind add up to {kinds}, more than the {network.members} members")
    if network.members is None and network.members_counted is not None and kinds != network.members_counted:
        yield ("kinds_not_members", table, None,
               f"members by kind add up to {kinds}, not to the {network.members_counted} members counted")
    if network.areas_covered is not None and data.areas:
        shown = network.areas_covered + len(network.areas_not_covered or [])
        if shown != len(data.areas):
            yield ("areas_not_all", table, None,
                   f"{network.areas_covered} areas covered and {len(network.areas_not_covered or [])} not "
                   f"covered make {shown}, not the bulletin's {len(data.areas)} areas")
    known = {area.code for area in data.areas}
    for code in network.areas_not_covered or []:
        if known and code not in known:
            yield ("unknown_area", table, code, f"area {code} is not among the bulletin's areas")
    ranked = RANKED.get(key)
    volume = getattr(network, ranked) if ranked is not None else None
    if network.top_uploaders and volume is not None:
        top = sum(row.count for row in network.top_uploaders)
        if top > volume:
            yield ("top_exceed_volume", table, None,
                   f"the top uploaders add up to {top}, more than the month's {volume}")
        counts = [row.count for row in network.top_uploaders]
        if counts != sorted(counts, reverse=True):
            yield ("top_out_of_order", table, None, f"the top uploaders are not largest first: {counts}")
    if (network.members_total or 0) > 0 and network.areas_covered == 0 and data.areas:
        yield ("members_cover_nothing", table, None,
               f"{network.members_total} members, yet none of the city's areas is covered")
