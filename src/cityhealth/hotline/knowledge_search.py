"""Chinese full-text search over published articles: jieba terms, synonyms, a custom dictionary, BM25F ranking.

The index lives in the process (one per worker), built from the published versions and rebuilt when the
set of published articles changes; docs/decisions/hotline-knowledge.md says why it is not the database's.
"""

from __future__ import annotations

import json
import logging
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

import jieba  # type: ignore[import-untyped]

# Field weights (title, questions, body): a word of the title or of a phrasing says more than one of the answer.
TITLE_WEIGHT, QUESTIONS_WEIGHT, BODY_WEIGHT = 3.0, 2.0, 1.0
K1, B = 1.2, 0.75
_PUNCTUATION = re.compile(r"[\s\W_]+", re.UNICODE)


@cache
def _data(name: str) -> Any:
    return json.loads(resources.files("cityhealth.hotline").joinpath("data", name).read_text("utf-8"))


def stop_words() -> frozenset[str]:
    """Words that carry no subject in a caller's question; kept out of both the index and the query."""
    return frozenset(_data("knowledge_stop_words.json"))


def starter_dictionary() -> list[str]:
    """The shipped custom words: departments, vaccines, insurance and booking terms jieba would split."""
    words: list[str] = _data("knowledge_dictionary.json")
    return words


def starter_synonyms() -> dict[str, str]:
    """Each variant -> its canonical term, from the shipped synonym groups (first word of a group is canonical)."""
    groups: list[list[str]] = _data("knowledge_synonyms.json")
    return {variant: group[0] for group in groups for variant in group[1:]}


class Analyzer:
    """Text -> search terms: NFKC, lower case, jieba's search-mode cut, stop words out, synonyms folded."""

    def __init__(self, dictionary: Iterable[str] = (), synonyms: dict[str, str] | None = None) -> None:
        logging.getLogger("jieba").setLevel(logging.WARNING)  # its start-up chatter is not ours to log
        self._tokenizer = _tokenizer()
        self._stop_words = stop_words()
        self.synonyms = dict(synonyms or {})
        self.add_words(dictionary)
        self.add_words(self.synonyms)  # a variant must come out of the cut whole to be folded
        self.add_words(set(self.synonyms.values()))

    def add_words(self, words: Iterable[str]) -> None:
        for word in words:
            word = unicodedata.normalize("NFKC", word).lower().strip()
            if len(word) > 1 and word not in _added:
                self._tokenizer.add_word(word, freq=200_000)  # wins over the general dictionary's splits
                _added.add(word)

    def terms(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFKC", text).lower()
        found = []
        for piece in _PUNCTUATION.split(text):
            if not piece:
                continue
            for word in self._tokenizer.cut_for_search(piece, HMM=True):
                word = self.synonyms.get(word, word)
                if word and word not in self._stop_words and not _PUNCTUATION.fullmatch(word):
                    found.append(word)
        return found


_added: set[str] = set()


@cache
def _tokenizer() -> Any:
    """One jieba tokenizer per process: its dictionary takes a second to load, and added words are shared."""
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


@dataclass(frozen=True)
class Document:
    """A published article as the index sees it."""

    article_id: int
    version_no: int
    category: str
    title: str
    questions: str
    body: str
    valid_from: date | None = None
    valid_until: date | None = None

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_until is None
                                                                        or day <= self.valid_until)


@dataclass(frozen=True)
class Hit:
    article_id: int
    score: float
    confidence: float  # the share of the question's weight (IDF) that the article covers, 0..1


@dataclass
class SearchIndex:
    """An inverted index: term -> [(document, weighted term frequency)], with BM25F's statistics."""

    analyzer: Analyzer
    documents: list[Document] = field(default_factory=list)
    postings: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    lengths: list[float] = field(default_factory=list)
    average_length: float = 1.0
    # Terms of (article, version) already cut: a rebuild cuts only what changed.
    _cut: dict[tuple[int, int], dict[str, float]] = field(default_factory=dict)

    @classmethod
    def build(cls, analyzer: Analyzer, documents: Sequence[Document],
              previous: SearchIndex | None = None) -> SearchIndex:
        index = cls(analyzer)
        cut = previous._cut if previous is not None else {}
        postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for position, document in enumerate(documents):
            key = (document.article_id, document.version_no)
            weights = cut.get(key)
            if weights is None:
                weights = index._weights(document)
            index._cut[key] = weights
            index.documents.append(document)
            index.lengths.append(sum(weights.values()))
            for term, weight in weights.items():
                postings[term].append((position, weight))
        index.postings = dict(postings)
        index.average_length = (sum(index.lengths) / len(index.lengths)) if index.lengths else 1.0
        return index

    def _weights(self, document: Document) -> dict[str, float]:
        weights: dict[str, float] = defaultdict(float)
        for text, weight in ((document.title, TITLE_WEIGHT), (document.questions, QUESTIONS_WEIGHT),
                             (document.body, BODY_WEIGHT)):
            for term in self.analyzer.terms(text):
                weights[term] += weight
        return dict(weights)

    def idf(self, term: str) -> float:
        n = len(self.documents)
        found = len(self.postings.get(term, ()))
        return math.log(1 + (n - found + 0.5) / (found + 0.5))

    def search(self, text: str, *, today: date, category: str | None = None, limit: int = 10) -> list[Hit]:
        """The best `limit` articles valid `today` for `text`, best first; confidence as in Hit."""
        terms = list(dict.fromkeys(self.analyzer.terms(text)))
        if not terms or not self.documents:
            return []
        # A lone character says less about the subject than a word: half its IDF, in the score and the confidence.
        weights = {term: self.idf(term) * (0.5 if len(term) == 1 else 1.0) for term in terms}
        # Search mode also yields the parts of a long word (身份 of 身份证): the confidence counts each word of
        # the question once, at its longest; a part that matched earns its whole word half the credit.
        whole = [term for term in terms if not any(term != other and term in other for other in terms)]
        total = sum(weights[term] for term in whole)
        scores: dict[int, float] = defaultdict(float)
        matched: dict[int, set[str]] = defaultdict(set)
        for term, idf in weights.items():
            for position, tf in self.postings.get(term, ()):
                norm = K1 * (1 - B + B * self.lengths[position] / self.average_length)
                scores[position] += idf * tf * (K1 + 1) / (tf + norm)
                matched[position].add(term)
        ranked = sorted(scores, key=lambda p: (-scores[p], self.documents[p].article_id))
        hits: list[Hit] = []
        for position in ranked:
            document = self.documents[position]
            if not document.valid_on(today) or (category is not None and document.category != category):
                continue
            hits.append(Hit(document.article_id, round(scores[position], 4),
                            round(min(1.0, _covered(whole, matched[position], weights) / total), 4)))
            if len(hits) == limit:
                break
        return hits


def _covered(whole: list[str], matched: set[str], weights: dict[str, float]) -> float:
    """The IDF weight of the question's words an article holds: whole words fully, words by a part half."""
    found = 0.0
    for term in whole:
        if term in matched:
            found += weights[term]
        elif any(part in term for part in matched):
            found += weights[term] / 2
    return found
