"""Which reading centre a case goes to. Pure: the caller gathers the candidates and their loads.

The rules, in order: the centre must be an active reading centre of the case's network, other than the
requester, that reads the case's type and modality and has not rejected this case; among those, the
requester's designated centres come first, in their rank; otherwise the least loaded (fewest open cases),
the older membership breaking a tie.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Centre:
    member_id: int
    organization_id: int
    reads_case_types: Sequence[str] | None
    reads_modalities: Sequence[str] | None
    open_cases: int


def reads(centre: Centre, case_type: str, modality: str | None) -> bool:
    """Whether the centre reads this type (and, when the case names one, this modality)."""
    if centre.reads_case_types is not None and case_type not in centre.reads_case_types:
        return False
    if modality is None or centre.reads_modalities is None:
        return True
    return modality.upper() in {m.upper() for m in centre.reads_modalities}


def choose(
    centres: Sequence[Centre],
    *,
    case_type: str,
    modality: str | None,
    requester_organization_id: int,
    designated: Mapping[int, int],
    excluded: Collection[int],
) -> Centre | None:
    """The centre the case goes to, or None when no centre may take it. `designated`: member id -> rank."""
    eligible = [
        c
        for c in centres
        if c.organization_id != requester_organization_id
        and c.member_id not in excluded
        and reads(c, case_type, modality)
    ]
    preferred = sorted((c for c in eligible if c.member_id in designated), key=lambda c: designated[c.member_id])
    if preferred:
        return preferred[0]
    return min(eligible, key=lambda c: (c.open_cases, c.member_id), default=None)
