"""Fit the knowledge base's confidence model (knowledge_confidence.COEFFICIENTS) and show the threshold's trade.

The starter set is indexed as the service indexes it; each question of the labelled set (knowledge_questions.json)
and of the held-out, fresh and first two blind sets (benchmarks/data/) is searched, and its best hit's evidence
(Evidence.features: the coverage, the share of a phrasing it holds, its lead ...) is paired with whether that hit is
the question's article (an off-topic question's best hit never is). A logistic model is fitted on those pairs by
maximum likelihood (Newton's method); printed: the coefficients, each set's log-likelihood under them and under
the coefficients in force, and for thresholds from 0.3 to 0.9 on each set the top-1 answered, the off-topic
questions refused and the answers' net worth (right answers less wrong ones, per question: a wrong answer costs
the caller as much as a right one saves; a question not answered goes to an agent).

The third blind set (knowledge_blind3.json) is left out on purpose: it is the one figure never fitted or chosen
on, and benchmarks/hotline.py reports it at the threshold in force.

    .venv/bin/python benchmarks/hotline_confidence.py
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.hotline import benchmark_questions

from cityhealth.hotline import knowledge_confidence
from cityhealth.hotline.knowledge_answers import ANSWER_THRESHOLD
from cityhealth.hotline.knowledge_confidence import Evidence
from cityhealth.hotline.knowledge_index import starter_analyzer
from cityhealth.hotline.knowledge_search import Document, SearchIndex
from cityhealth.hotline.knowledge_starter import LabelledQuestion, labelled_questions, starter_articles

TODAY = date(2022, 6, 15)


@dataclass(frozen=True)
class Case:
    features: tuple[float, ...]  # Evidence.features
    right: bool
    off_topic: bool


def starter_index() -> tuple[SearchIndex, list[str]]:
    """The starter set indexed as knowledge_index builds it before the registry is read; the articles' keys."""
    articles = starter_articles()
    documents = [Document(n, 1, a.category, a.title, "\n".join(a.questions), a.body, key=a.key)
                 for n, a in enumerate(articles)]
    return SearchIndex.build(starter_analyzer(), documents), [a.key for a in articles]


def cases(index: SearchIndex, keys: list[str], questions: list[LabelledQuestion]) -> list[Case]:
    found = []
    for question in questions:
        hits = index.search(question.question, today=TODAY, limit=1)
        right = bool(hits) and keys[hits[0].article_id] == question.article_key
        features = hits[0].evidence.features if hits else Evidence(0.0).features
        found.append(Case(features, right, question.article_key is None))
    return found


def _chance(beta: tuple[float, ...], case: Case) -> float:
    return 1.0 / (1.0 + math.exp(-sum(b * x for b, x in zip(beta, case.features, strict=True))))


def fit(data: list[Case], rounds: int = 50) -> tuple[float, ...]:
    """Maximum-likelihood logistic coefficients (Newton's method, a touch of ridge to keep it defined)."""
    k = len(data[0].features)
    beta = [0.0] * k
    for _ in range(rounds):
        gradient = [0.0] * k
        hessian = [[1e-6 if i == j else 0.0 for j in range(k)] for i in range(k)]
        for case in data:
            p = _chance(tuple(beta), case)
            for i in range(k):
                gradient[i] += (case.right - p) * case.features[i]
                for j in range(k):
                    hessian[i][j] += p * (1 - p) * case.features[i] * case.features[j]
        beta = [b + d for b, d in zip(beta, _solve(hessian, gradient), strict=True)]
    return tuple(beta)


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Gauss-Jordan elimination with partial pivoting."""
    k = len(vector)
    rows = [[*matrix[i][:], vector[i]] for i in range(k)]
    for i in range(k):
        pivot = max(range(i, k), key=lambda r: abs(rows[r][i]))
        rows[i], rows[pivot] = rows[pivot], rows[i]
        lead = rows[i][i]
        rows[i] = [value / lead for value in rows[i]]
        for r in range(k):
            if r != i:
                factor = rows[r][i]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[i], strict=True)]
    return [rows[i][k] for i in range(k)]


def log_likelihood(beta: tuple[float, ...], data: list[Case]) -> float:
    return sum(math.log(max(1e-12, _chance(beta, c) if c.right else 1 - _chance(beta, c))) for c in data) / len(data)


def trade(beta: tuple[float, ...], data: list[Case], threshold: float) -> str:
    """Top-1 answered, off-topic refused, and the answers' net worth: (right - wrong answers) per question."""
    positives = [c for c in data if not c.off_topic]
    negatives = [c for c in data if c.off_topic]
    top1 = sum(c.right and _chance(beta, c) >= threshold for c in positives) / len(positives)
    refused = sum(_chance(beta, c) < threshold for c in negatives)
    answered = [c for c in data if _chance(beta, c) >= threshold]
    net = (sum(c.right for c in answered) - sum(not c.right for c in answered)) / len(data)
    return f"{top1:.3f} / {refused} of {len(negatives)} / {net:+.3f}"


def main() -> None:
    index, keys = starter_index()
    sets = {"labelled": cases(index, keys, labelled_questions()),
            **{name: cases(index, keys, benchmark_questions(f"knowledge_{name.replace('-', '')}.json"))
               for name in ("held-out", "fresh", "blind", "blind2")}}
    beta = fit([case for data in sets.values() for case in data])
    current = tuple(knowledge_confidence.COEFFICIENTS)
    print("fitted coefficients (intercept, coverage, phrasing held, lead, named, log words):",
          ", ".join(f"{b:.3f}" for b in beta))
    print("in force:", ", ".join(f"{b:.3f}" for b in current), f"threshold {ANSWER_THRESHOLD}")
    for name, data in sets.items():
        print(f"{name}: mean log-likelihood fitted {log_likelihood(beta, data):.4f}, "
              f"in force {log_likelihood(current, data):.4f}")
    print("threshold | top-1 answered / off-topic refused / (right - wrong answers) per question, fitted "
          "coefficients: " + " | ".join(sets))
    for threshold in (0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9):
        print(f"{threshold:.2f} | " + " | ".join(trade(beta, data, threshold) for data in sets.values()))


if __name__ == "__main__":
    main()
