"""The probabilistic match score (Fellegi–Sunter): a patient identity without a usable ID number against one
candidate resident, field by field. docs/decisions/records-linkage.md gives the m and u probabilities and why.

Each compared field adds log2(m/u) when it agrees and log2((1-m)/(1-u)) when it disagrees; a field missing on
either side adds nothing. The sum is compared with two thresholds: at or above LINK_AT the link is made, from
REVIEW_AT up to it the pair goes to an operator's review queue, below REVIEW_AT nothing happens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Agreement(StrEnum):
    AGREE = "agree"
    PARTIAL = "partial"
    DISAGREE = "disagree"
    MISSING = "missing"


@dataclass(frozen=True)
class FieldModel:
    m: float  # P(agree | same person): how often a true match carries the same value (typing errors, moves)
    u: float  # P(agree | different people) among the candidates blocking brings up
    partial_m: float = 0.0  # P(partial agreement | same person), for the fields that have one
    partial_u: float = 0.0

    def weight(self, agreement: Agreement) -> float:
        if agreement is Agreement.AGREE:
            return math.log2(self.m / self.u)
        if agreement is Agreement.PARTIAL and self.partial_u > 0:
            return math.log2(self.partial_m / self.partial_u)
        if agreement is Agreement.DISAGREE:
            return math.log2((1 - self.m - self.partial_m) / (1 - self.u - self.partial_u))
        return 0.0


MODEL: dict[str, FieldModel] = {
    "name": FieldModel(m=0.92, u=0.002, partial_m=0.05, partial_u=0.02),  # partial: same surname
    "sex": FieldModel(m=0.98, u=0.5),
    "birth_date": FieldModel(m=0.93, u=0.0005, partial_m=0.05, partial_u=0.01),  # partial: one of y/m/d differs
    "phone": FieldModel(m=0.75, u=0.0002),
    "address_area": FieldModel(m=0.80, u=0.12, partial_m=0.12, partial_u=0.3),  # partial: same city
}
LINK_AT = 20.0
REVIEW_AT = 8.0


@dataclass(frozen=True)
class Traits:
    """What is compared, on either side."""

    name: str | None
    sex: int | None
    birth_date: date | None
    phone_hash: str | None  # the master index's keyed hash of the phone number
    address_area: str | None


@dataclass(frozen=True)
class Score:
    total: float
    agreements: dict[str, Agreement]

    @property
    def decision(self) -> str:
        """"link", "review" or "none"."""
        if self.total >= LINK_AT:
            return "link"
        return "review" if self.total >= REVIEW_AT else "none"


def compare(record: Traits, resident: Traits) -> Score:
    """The pair's agreements and their summed weight."""
    agreements = {
        "name": _name(record.name, resident.name),
        "sex": _equal(record.sex if record.sex in (1, 2) else None, resident.sex if resident.sex in (1, 2) else None),
        "birth_date": _birth(record.birth_date, resident.birth_date),
        "phone": _equal(record.phone_hash, resident.phone_hash),
        "address_area": _area(record.address_area, resident.address_area),
    }
    total = sum(MODEL[field].weight(agreement) for field, agreement in agreements.items())
    return Score(round(total, 3), agreements)


def _equal(left: object, right: object) -> Agreement:
    if left is None or right is None:
        return Agreement.MISSING
    return Agreement.AGREE if left == right else Agreement.DISAGREE


def _name(left: str | None, right: str | None) -> Agreement:
    left, right = _clean(left), _clean(right)
    if not left or not right:
        return Agreement.MISSING
    if left == right:
        return Agreement.AGREE
    return Agreement.PARTIAL if left[0] == right[0] else Agreement.DISAGREE  # a Chinese surname is its first character


def _clean(name: str | None) -> str:
    return "".join((name or "").split()).replace("·", "").replace("•", "")


def _birth(left: date | None, right: date | None) -> Agreement:
    if left is None or right is None:
        return Agreement.MISSING
    if left == right:
        return Agreement.AGREE
    same = (left.year == right.year) + (left.month == right.month) + (left.day == right.day)
    # A swapped month and day is the commonest transcription error of a date.
    swapped = left.year == right.year and left.month == right.day and left.day == right.month
    return Agreement.PARTIAL if same == 2 or swapped else Agreement.DISAGREE


def _area(left: str | None, right: str | None) -> Agreement:
    if not left or not right:
        return Agreement.MISSING
    if left == right:
        return Agreement.AGREE
    return Agreement.PARTIAL if left[:4] == right[:4] else Agreement.DISAGREE
