"""How sure the knowledge base is that its best article answers a question: a calibrated probability.

The evidence about an article is what share of the question's weight it covers, how much of one of the ways
the article is asked (its title and listed phrasings) the question holds, its lead over the next candidate,
whether it holds the organization the question names, and how long the question is; a logistic model turns
them into the chance that it is the right answer (fitted on five labelled sets:
docs/decisions/hotline-knowledge.md). A confidence of 0.8 then means that about four answers
in five given at it are right, and the self-service threshold reads as a chance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from cityhealth.hotline.knowledge_query import HOMOPHONE_FACTOR, Query, bigrams, sound

# A part of a word, or the word's character pairs, earn it this share at most of its weight.
PART_CREDIT = 0.5
# A word's weight in the coverage is its IDF to this power: one rare word the answer lacks (胳膊, 公交) should
# not outweigh the rest of the question; 1 (plain IDF) and 0.5 did worse on the labelled set.
IDF_POWER = 0.75
# The logistic model: intercept and slopes on the coverage, on how much of the nearest phrasing the question
# holds, on the article's lead over the next, on the question naming an organization the article holds, and on
# the logarithm of the question's length in words (with the coverage, a long question says more than the answer
# covers); fitted (maximum likelihood, benchmarks/hotline_confidence.py) on the labelled, held-out, fresh and the
# first two blind sets' best hits, right or not (off-topic questions count as not right).
COEFFICIENTS = (-5.860, 4.495, 2.327, 3.859, 1.706, 1.033)


def whole_words(words: Sequence[str]) -> list[str]:
    """The words of a text counted once each, at their longest: search mode also yields a long word's parts
    (身份 of 身份证)."""
    return [word for word in dict.fromkeys(words) if not any(word != other and word in other for other in words)]


def softened(words: Iterable[str], weight: Callable[[str], float]) -> dict[str, float]:
    """Each word's weight in the evidence: its IDF to the power IDF_POWER."""
    return {word: weight(word) ** IDF_POWER for word in words}


@dataclass(frozen=True)
class Phrasings:
    """The ways an article is asked (its title and listed phrasings), as whole words: each one's softened weight
    in all, and for each word the phrasings that hold it."""

    weights: tuple[float, ...]
    holding: dict[str, tuple[int, ...]]

    @classmethod
    def of(cls, phrasings: Sequence[frozenset[str]], weight: Callable[[str], float]) -> Phrasings:
        holding: dict[str, list[int]] = {}
        for n, words in enumerate(phrasings):
            for word in words:
                holding.setdefault(word, []).append(n)
        return cls(tuple(sum(softened(words, weight).values()) for words in phrasings),
                   {word: tuple(found) for word, found in holding.items()})


def phrasing_match(asked: Mapping[str, float], phrasings: Phrasings, times: Mapping[str, float] | None = None
                   ) -> tuple[float, float]:
    """How the question's whole words (`asked`: each with its softened weight) meet an article's phrasings:
    (the nearest phrasing's Dice match, twice the weight shared over both weights, a word counted `times` over
    if given (a named organization); the most any phrasing is held by the question, the share of its weight the
    question holds), each 0..1. Dice ranks (a long question matches no short phrasing closely); the share held
    speaks for a rambling question that says one phrasing among other things."""
    times = times or {}
    shared: dict[int, float] = {}
    counted: dict[int, float] = {}
    for word, value in asked.items():
        extra = (times.get(word, 1.0) - 1.0) * value
        for n in phrasings.holding.get(word, ()):
            shared[n] = shared.get(n, 0.0) + value
            counted[n] = counted.get(n, 0.0) + value + extra
    if not shared:
        return 0.0, 0.0
    total = sum(value * times.get(word, 1.0) for word, value in asked.items())
    own = phrasings.weights
    extras = {n: counted[n] - shared[n] for n in shared}  # the phrasing holds the counted words as often
    return (max(2 * counted[n] / (total + own[n] + extras[n]) for n in shared),
            max(value / own[n] for n, value in shared.items()))


@dataclass(frozen=True)
class Evidence:
    """What speaks for one article as the answer to one question."""

    coverage: float  # the share of the question's weight that the article holds, 0..1
    contained: float = 0.0  # how much of one of the article's phrasings the question holds, at most, 0..1
    lead: float = 0.0  # the article's ranking score less the best other candidate's (negative when behind)
    named: float = 0.0  # 1 when the question names an organization and the article holds its name
    words: int = 0  # how many words the question was cut into

    @classmethod
    def of(cls, query: Query, held: Mapping[str, float], weight: Callable[[str], float], contained: float = 0.0,
           lead: float = 0.0, named: bool = False) -> Evidence:
        """Each word of the question weighs its IDF (softened; a word no article holds weighs as the rarest
        could); the article earns a word's weight by holding it, part of it by a part, its character pairs or
        its sound (knowledge_query). `contained`, `lead` and `named`: as the fields, from the search."""
        words = list(query.words)
        whole = whole_words(words)
        weights = softened(whole, weight)
        total = sum(weights.values())
        if total <= 0:
            return cls(0.0, contained, lead, float(named), len(words))
        heard = [term for term, factor in query.factors.items() if factor == HOMOPHONE_FACTOR and term in held]
        covered = sum(weights[word] * _credit(word, words, held, heard) for word in whole)
        return cls(min(1.0, covered / total), contained, lead, float(named), len(words))

    @property
    def features(self) -> tuple[float, ...]:
        """The model's inputs, the constant first; a question's length in words counts by its logarithm."""
        return 1.0, self.coverage, self.contained, self.lead, self.named, math.log1p(self.words)


def calibrated(evidence: Evidence) -> float:
    """The chance, 0..1, that the article the evidence is about answers the question."""
    z = sum(b * x for b, x in zip(COEFFICIENTS, evidence.features, strict=True))
    return 1.0 / (1.0 + math.exp(-z))


def _credit(word: str, words: list[str], held: Mapping[str, float], heard: list[str]) -> float:
    """How much of one question word the article holds: all of it, or a part, its pairs, or its sound."""
    if word in held:
        return 1.0
    credit = 0.0
    if any(part != word and part in word and part in held for part in words):
        credit = PART_CREDIT
    pairs = bigrams(word)
    if pairs:
        credit = max(credit, PART_CREDIT * sum(pair in held for pair in pairs) / len(pairs))
    spoken = sound(word)
    if any(sound(term) in spoken or spoken in sound(term) for term in heard):
        credit = max(credit, HOMOPHONE_FACTOR)
    return credit
