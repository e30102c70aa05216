"""Chinese full-text search over published articles: jieba terms, synonyms, a custom dictionary, BM25F ranking.

The index lives in the process (one per worker), built from the published versions and rebuilt when the
set of published articles changes; docs/decisions/hotline-knowledge.md says why it is not the database's.
"""

from __future__ import annotations

import heapq
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

from cityhealth.hotline.knowledge_confidence import (
    IDF_POWER,
    Evidence,
    Phrasings,
    calibrated,
    phrasing_match,
    softened,
    whole_words,
)
from cityhealth.hotline.knowledge_query import (
    BIGRAM_FACTOR,
    BIGRAM_MARK,
    HOMOPHONE_FACTOR,
    Query,
    bigrams,
    homophones,
    sounds_of,
    without_fillers,
)

# Field weights (title, questions, body): a word of the title or of a phrasing says more than one of the answer.
TITLE_WEIGHT, QUESTIONS_WEIGHT, BODY_WEIGHT = 3.0, 2.0, 1.0
K1, B = 1.2, 0.75
# A question naming a hospital is about that hospital: its name counts this many times over in the ranking
# (the confidence still weighs it once), so the hospital's own article comes before a general one.
ENTITY_BOOST = 3.0
# How many of a term's best documents a search takes as candidates (docs/decisions/hotline-knowledge.md).
CHAMPIONS = 600
# A character pair only backs words up: fewer of its best documents are candidates (common pairs such as 医院
# sit in most articles, and their lists were half of a search's time at 20,000 articles).
PAIR_CHAMPIONS = 150
# The best candidates by score are ranked again by their score relative to the best one plus this many times
# how closely the question matches their nearest phrasing (knowledge_confidence.phrasing_match): a caller's
# question is usually worded like one of the ways its article is asked. RERANKED candidates at least, so that
# the first hits do not depend on how many are asked for (up to a third of it).
PHRASING_RANK, RERANKED = 1.0, 30
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
        self.entities: set[str] = set()  # terms that name one organization
        self.add_words(dictionary)
        self.add_words(self.synonyms)  # a variant must come out of the cut whole to be folded
        self.add_words(set(self.synonyms.values()))

    def add_words(self, words: Iterable[str]) -> None:
        for word in words:
            word = unicodedata.normalize("NFKC", word).lower().strip()
            if len(word) > 1 and word not in _added:
                self._tokenizer.add_word(word, freq=200_000)  # wins over the general dictionary's splits
                _added.add(word)

    def remove_words(self, words: Iterable[str]) -> None:
        """Words an editor took out of the dictionary: the segmenter no longer keeps them whole."""
        for word in words:
            if word in _added:
                self._tokenizer.del_word(word)
                _added.discard(word)

    def add_entities(self, names: Iterable[str]) -> None:
        """Organizations' names (their short names fold into them as synonyms): words that name what a
        question is about."""
        names = [unicodedata.normalize("NFKC", name).lower().strip() for name in names]
        self.add_words(names)
        self.entities.update(name for name in names if len(name) > 1)

    def query_words(self, text: str) -> list[str]:
        """A caller's question's words: as `terms`, its spoken fillers cut out first."""
        return self.terms(without_fillers(text))

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
    key: str = ""

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_until is None
                                                                        or day <= self.valid_until)


@dataclass(frozen=True)
class Hit:
    article_id: int
    score: float  # the ranking: BM25F relative to the best candidate plus the nearest phrasing's match
    confidence: float  # the chance that the article answers the question, 0..1 (knowledge_confidence)
    evidence: Evidence  # what the confidence was made of


@dataclass
class SearchIndex:
    """An inverted index of BM25F impacts: term -> the documents holding it and each one's share of the score.

    Impacts are computed when the index is built, so a search only adds them up. A search takes as candidates
    each term's CHAMPIONS highest-impact documents (a term in most articles says little about any one of them),
    then scores the best candidates exactly over every term of the question.
    """

    analyzer: Analyzer
    documents: list[Document] = field(default_factory=list)
    postings: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    impacts: list[dict[str, float]] = field(default_factory=list)  # per document: term -> impact
    phrasings: list[Phrasings] = field(default_factory=list)  # per document: how it is asked
    weights: dict[str, float] = field(default_factory=dict)  # per term: its IDF (halved for a lone character)
    restricted: frozenset[int] = frozenset()  # documents with validity dates, checked at search time
    sounds: dict[str, tuple[str, ...]] = field(default_factory=dict)  # pinyin -> indexed words that sound so
    _by_article: dict[int, Document] = field(default_factory=dict)
    # Terms of (article, version) already cut: a rebuild cuts only what changed.
    _cut: dict[tuple[int, int], tuple[dict[str, float], tuple[frozenset[str], ...]]] = field(default_factory=dict)

    @classmethod
    def build(cls, analyzer: Analyzer, documents: Sequence[Document],
              previous: SearchIndex | None = None) -> SearchIndex:
        index = cls(analyzer)
        cut = previous._cut if previous is not None else {}
        frequencies: list[dict[str, float]] = []
        asked: list[tuple[frozenset[str], ...]] = []
        found_in: dict[str, int] = defaultdict(int)
        for document in documents:
            key = (document.article_id, document.version_no)
            terms = cut.get(key) or index._terms(document)
            index._cut[key] = terms
            frequency, phrasings = terms
            index.documents.append(document)
            asked.append(phrasings)
            frequencies.append(frequency)
            for term in frequency:
                found_in[term] += 1
        n = len(documents)
        index.weights = {term: math.log(1 + (n - found + 0.5) / (found + 0.5)) * (0.5 if len(term) == 1 else 1.0)
                         for term, found in found_in.items()}
        # Length is counted in words: the character pairs follow the text's length anyway.
        lengths = [sum(tf for term, tf in frequency.items() if term[0] != BIGRAM_MARK) for frequency in frequencies]
        average = (sum(lengths) / n) if n else 1.0
        postings: dict[str, tuple[list[int], list[float]]] = {}
        for position, frequency in enumerate(frequencies):
            norm = K1 * (1 - B + B * lengths[position] / average)
            own: dict[str, float] = {}
            for term, tf in frequency.items():
                impact = index.weights[term] * tf * (K1 + 1) / (tf + norm)
                own[term] = impact
                ids, values = postings.setdefault(term, ([], []))
                ids.append(position)
                values.append(impact)
            index.impacts.append(own)
        for term, (ids, values) in postings.items():  # highest impact first: the champions lead each list
            ranked = sorted(range(len(ids)), key=lambda i: -values[i])
            postings[term] = ([ids[i] for i in ranked], [values[i] for i in ranked])
        index.postings = postings
        index.phrasings = [Phrasings.of(phrasings, index.weight) for phrasings in asked]
        # A synonym's variant is heard too (a hospital's short name misrecognised: 古楼医院), and searches for
        # the word it folds into.
        index.sounds = sounds_of([term for term in postings if term[0] != BIGRAM_MARK]
                                 + [variant for variant, word in analyzer.synonyms.items() if word in postings])
        index._by_article = {d.article_id: d for d in documents}
        index.restricted = frozenset(p for p, d in enumerate(documents) if d.valid_from or d.valid_until)
        return index

    def _terms(self, document: Document) -> tuple[dict[str, float], tuple[frozenset[str], ...]]:
        """(each term's weighted frequency over the fields, the whole words of the title and of each phrasing)."""
        weights: dict[str, float] = defaultdict(float)
        phrasings = []
        texts = [(document.title, TITLE_WEIGHT, True), (document.body, BODY_WEIGHT, False)]
        texts += [(line, QUESTIONS_WEIGHT, True) for line in document.questions.splitlines()]
        for text, weight, asked in texts:
            terms = self.analyzer.terms(text)
            for term in terms:
                weights[term] += weight
            for pair in bigrams(text.lower()):
                weights[pair] += weight
            if asked and terms:
                phrasings.append(frozenset(whole_words(terms)))
        return dict(weights), tuple(phrasings)

    def weight(self, term: str) -> float:
        """A query term's IDF; one no article holds weighs as the rarest could."""
        known = self.weights.get(term)
        if known is not None:
            return known
        n = len(self.documents)
        return math.log(1 + (n + 0.5) / 0.5) * (0.5 if len(term) == 1 else 1.0)

    def document(self, article_id: int) -> Document | None:
        """The indexed (published) article, as it was when the index was built."""
        return self._by_article.get(article_id)

    def _admits(self, position: int, today: date, category: str | None) -> bool:
        document = self.documents[position]
        return (category is None or document.category == category) and (
            position not in self.restricted or document.valid_on(today))

    def query(self, text: str) -> Query:
        """What `text` searches for: its words, the indexed words it sounds like, and its character pairs."""
        words = tuple(dict.fromkeys(self.analyzer.query_words(text)))
        factors = dict.fromkeys(words, 1.0)
        spoken = without_fillers(text)
        for word in homophones(spoken, self.postings, self.sounds):
            factors.setdefault(self.analyzer.synonyms.get(word, word), HOMOPHONE_FACTOR)
        for pair in bigrams(spoken):
            factors.setdefault(pair, BIGRAM_FACTOR)
        return Query(words, factors)

    def search(self, text: str, *, today: date, category: str | None = None, limit: int = 10) -> list[Hit]:
        """The best `limit` articles valid `today` for `text`, best first; confidence as in Hit."""
        query = self.query(text)
        if not query.factors or not self.documents:
            return []
        present = [term for term in query.factors if term in self.postings]
        # Candidates come from each term's champion list (its highest impacts), unless a category narrows
        # the search; the best of them are then scored exactly over every term.
        depth = CHAMPIONS if category is None else len(self.documents)
        found: dict[int, float] = {}
        plain = category is None and not self.restricted
        factor = {term: query.factors[term] * (ENTITY_BOOST if term in self.analyzer.entities else 1.0)
                  for term in present}
        for term in present:
            ids, values = self.postings[term]
            times = factor[term]
            take = min(depth, PAIR_CHAMPIONS) if term[0] == BIGRAM_MARK and category is None else depth
            for position, impact in zip(ids[:take], values[:take], strict=True):
                if position in found:
                    found[position] += impact * times
                elif plain or self._admits(position, today, category):
                    found[position] = impact * times
        shortlist = heapq.nlargest(max(limit * 3, RERANKED), found, key=found.__getitem__)
        exact = {p: sum(self.impacts[p].get(term, 0.0) * factor[term] for term in present) for p in shortlist}
        top = max(exact.values(), default=0.0) or 1.0
        words = softened(whole_words(query.words), self.weight)
        for term, times in query.factors.items():  # a word heard by its sound (古楼医院) counts as in BM25F
            if times == HOMOPHONE_FACTOR and term not in words:
                words[term] = self.weight(term) ** IDF_POWER * times
        named = {word: ENTITY_BOOST for word in words if word in self.analyzer.entities}
        # Ranked again best score first: once a candidate's score could not lift it into the best `need` even
        # with a perfect phrasing match, neither could any after it.
        need = max(limit, 2)  # the first hit's lead is over the second
        ranked: dict[int, float] = {}
        matched: dict[int, tuple[float, float]] = {}
        best: list[float] = []  # the best `need` ranking scores so far, lowest first
        for p in sorted(exact, key=lambda p: -exact[p]):
            relative = exact[p] / top
            if len(best) == need and relative + PHRASING_RANK < best[0]:
                break
            matched[p] = phrasing_match(words, self.phrasings[p], named)
            ranked[p] = relative + PHRASING_RANK * matched[p][0]
            (heapq.heappush if len(best) < need else heapq.heappushpop)(best, ranked[p])
        order = sorted(ranked, key=lambda p: (-ranked[p], self.documents[p].article_id))
        hits = []
        for p in order[:limit]:
            others = [ranked[q] for q in order[:2] if q != p]
            evidence = Evidence.of(query, self.impacts[p], self.weight, matched[p][1],
                                   ranked[p] - (others[0] if others else 0.0),
                                   any(name in self.impacts[p] for name in named))
            hits.append(Hit(self.documents[p].article_id, round(ranked[p], 4), round(calibrated(evidence), 4),
                            evidence))
        return hits
