"""How sure the knowledge base is that its best article answers a question: a calibrated probability.

The evidence about an article is what share of the question's weight it covers; a logistic model turns that
into the chance that it is the right answer (fitted on the labelled questions, checked on the held-out set:
docs/decisions/hotline-knowledge.md). A confidence of 0.8 then means that about four answers in five given
at it are right, and the self-service threshold reads as a chance. (The score's lead over the next article
and the share of words no article holds were tried as further features: they separated no better.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cityhealth.hotline.knowledge_query import HOMOPHONE_FACTOR, Query, bigrams, sound

# A part of a word, or the word's character pairs, earn it this share at most of its weight.
PART_CREDIT = 0.5
# A word's weight in the coverage is its IDF to this power: one rare word the answer lacks (胳膊, 公交) should
# not outweigh the rest of the question; 1 (plain IDF) and 0.5 did worse on the labelled set.
IDF_POWER = 0.75
# The logistic model: intercept and slope on the coverage, fitted (maximum likelihood) on the labelled set's
# best hits, right or not (off-topic questions count as not right).
COEFFICIENTS = (-1.316, 6.544)


@dataclass(frozen=True)
class Evidence:
    """What speaks for one article as the answer to one question."""

    coverage: float  # the share of the question's weight that the article holds, 0..1

    @classmethod
    def of(cls, query: Query, held: Mapping[str, float], weight: Callable[[str], float]) -> Evidence:
        """Each word of the question weighs its IDF (softened; a word no article holds weighs as the rarest
        could); the article earns a word's weight by holding it, part of it by a part, its character pairs or
        its sound (knowledge_query)."""
        words = list(query.words)
        # Search mode also yields a long word's parts (身份 of 身份证): each word of the question counts once,
        # at its longest.
        whole = [word for word in words if not any(word != other and word in other for other in words)]
        weights = {word: weight(word) ** IDF_POWER for word in whole}
        total = sum(weights.values())
        if total <= 0:
            return cls(0.0)
        heard = [term for term, factor in query.factors.items() if factor == HOMOPHONE_FACTOR and term in held]
        covered = sum(weights[word] * _credit(word, words, held, heard) for word in whole)
        return cls(min(1.0, covered / total))


def calibrated(evidence: Evidence) -> float:
    """The chance, 0..1, that the article the evidence is about answers the question."""
    intercept, slope = COEFFICIENTS
    return 1.0 / (1.0 + math.exp(-(intercept + slope * evidence.coverage)))


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
