"""The people plan's arithmetic: the bound shared by largest remainder, and the altered names and phones that put a
patient in the linkage's review band or make a conflict, never equal to the resident's own."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from cityhealth.simulation.people import (
    CONFLICT_EVERY,
    GIVEN,
    NO_ID_NUMBER,
    SURNAMES,
    _other_given,
    _other_surname,
    _shares,
    identities,
    plan_people,
)
from cityhealth.simulation.scenario import bundled_scenario, load_scenario

AREA = st.text(alphabet="0123456789", min_size=6, max_size=6)
WANTED = st.dictionaries(AREA, st.integers(0, 10**6), max_size=12)


@st.composite
def within_the_bound(draw: st.DrawFn) -> tuple[dict[str, int], int]:
    """Wanted counts and a bound at or above their total (the total itself included)."""
    wanted = draw(WANTED)
    return wanted, sum(wanted.values()) + draw(st.integers(0, 5000))


@st.composite
def above_the_bound(draw: st.DrawFn) -> tuple[dict[str, int], int]:
    """Wanted counts and a bound below their total (down to 0)."""
    wanted = draw(st.dictionaries(AREA, st.integers(0, 10**6), min_size=1, max_size=12).filter(
        lambda counts: any(counts.values())))
    return wanted, draw(st.integers(0, sum(wanted.values()) - 1))


@given(within_the_bound())
def test_within_the_bound_every_share_is_as_wanted(case: tuple[dict[str, int], int]) -> None:
    wanted, bound = case
    assert _shares(wanted, bound) == wanted


@given(above_the_bound())
def test_above_the_bound_the_shares_add_up_to_it_each_within_one_of_its_exact_part(
        case: tuple[dict[str, int], int]) -> None:
    wanted, bound = case
    total = sum(wanted.values())
    shares = _shares(wanted, bound)
    assert sum(shares.values()) == bound
    for key, value in wanted.items():
        exact = Decimal(value) * bound / total
        assert exact - 1 < shares[key] < exact + 1
        assert shares[key] >= 0


def test_another_surname_and_given_name_always_differ_and_stay_in_their_lists() -> None:
    for surname in SURNAMES:
        assert _other_surname(surname) != surname
        assert _other_surname(surname) in SURNAMES
    for char in GIVEN:
        assert _other_given(char) != char
    assert _other_given("㐀") == GIVEN[0]  # a character outside the list still gives a different one


def test_the_review_band_patient_keeps_the_surname_and_birth_date_but_not_the_given_name_or_phone() -> None:
    plan = plan_people(load_scenario(bundled_scenario("nanjing-2022-06")), Decimal("0.01"), 3)
    by_index = {resident.index: resident for resident in plan.residents}
    doubtful = [p for p in identities(plan)
                if int(p.patient_id[1:]) % CONFLICT_EVERY == NO_ID_NUMBER]
    assert doubtful
    for patient in doubtful:
        resident = by_index[int(patient.patient_id[1:])]
        assert patient.document is not None
        assert patient.name[0] == resident.name[0]
        assert patient.name != resident.name
        assert patient.phone != resident.phone
        assert (patient.birth_date, patient.sex) == (resident.birth_date, resident.sex)
