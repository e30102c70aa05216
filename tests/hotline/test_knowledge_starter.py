"""The starter knowledge base: loaded once by its command, found by its labelled questions, in callers' words."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from cityhealth.cli import app as cli_app
from cityhealth.hotline.knowledge_answers import ANSWER_THRESHOLD
from cityhealth.hotline.knowledge_index import starter_analyzer
from cityhealth.hotline.knowledge_search import Analyzer, Document, SearchIndex, starter_dictionary, starter_synonyms
from cityhealth.hotline.knowledge_starter import (
    hospitals,
    labelled_questions,
    name_synonyms,
    organization_synonyms,
    spoken_names,
    starter_articles,
)
from tests.hotline.knowledge_support import BASE, ivr

runner = CliRunner()


def test_the_starter_set_has_a_few_hundred_articles_with_unique_keys() -> None:
    articles = starter_articles()
    assert len(articles) >= 200
    assert len({a.key for a in articles}) == len(articles)
    assert {a.category for a in articles} >= {"booking", "hours", "vaccination", "insurance"}


def test_every_labelled_question_names_an_article_of_the_set() -> None:
    keys = {a.key for a in starter_articles()}
    questions = labelled_questions()
    assert len(questions) >= 100
    assert all(q.article_key in keys for q in questions if q.article_key is not None)
    # Questions are the callers' own words, never an article's listed phrasing.
    phrasings = {p for a in starter_articles() for p in a.questions}
    assert not [q.question for q in questions if q.question in phrasings]


def test_the_benchmark_sets_name_articles_of_the_set_and_share_no_question_with_the_tuned_one() -> None:
    # The held-out, fresh and blind sets measure how well the ranking generalises: a question shared with the labelled
    # set (tuned on) or an article key gone stale would make their figures mean something else.
    keys = {a.key for a in starter_articles()}
    tuned = {q.question for q in labelled_questions()}
    seen: set[str] = set()
    for name in ("knowledge_heldout.json", "knowledge_fresh.json", "knowledge_blind.json", "knowledge_blind2.json",
                 "knowledge_blind3.json"):
        rows = json.loads((Path(__file__).parents[2] / "benchmarks" / "data" / name).read_text("utf-8"))
        assert len(rows) >= 150
        assert [r["article"] for r in rows if r["article"] is not None and r["article"] not in keys] == []
        assert [r["question"] for r in rows if r["question"] in tuned | seen] == []
        assert any(r["article"] is None for r in rows)  # off-topic questions, to be refused
        seen |= {r["question"] for r in rows}


def test_hospital_names_are_kept_whole_and_short_names_fold_into_full_ones() -> None:
    analyzer = Analyzer(starter_dictionary() + [h["name"] for h in hospitals()],
                        starter_synonyms() | organization_synonyms())
    assert "南京鼓楼医院" in analyzer.terms("鼓楼医院几点开门")
    assert "门诊时间" in analyzer.terms("鼓楼医院几点开门")  # 几点开门 is a synonym of 门诊时间
    assert "心血管内科" in analyzer.terms("我想挂心血管内科的号")


def test_the_labelled_questions_find_their_articles_at_the_target_accuracy() -> None:
    articles = starter_articles()
    index = SearchIndex.build(starter_analyzer(), [Document(n, 1, a.category, a.title, "\n".join(a.questions), a.body)
                                         for n, a in enumerate(articles)])
    positives = [q for q in labelled_questions() if q.article_key is not None]
    top1 = 0
    for question in positives:
        hits = index.search(question.question, today=date(2022, 6, 15), limit=1)
        top1 += bool(hits) and articles[hits[0].article_id].key == question.article_key \
            and hits[0].confidence >= ANSWER_THRESHOLD
    assert top1 / len(positives) >= 0.85


def test_the_load_command_loads_the_starter_set_once(database_url: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", database_url)
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(tmp_path / "var"))
    first = runner.invoke(cli_app, ["knowledge", "load-starter"])
    assert first.exit_code == 0, first.output
    assert f"{len(starter_articles())} starter articles loaded" in first.output
    again = runner.invoke(cli_app, ["knowledge", "load-starter"])
    assert "0 starter articles loaded" in again.output


async def test_self_service_answers_from_the_loaded_starter_set(client: httpx.AsyncClient, app: FastAPI) -> None:
    from cityhealth.hotline import knowledge
    from cityhealth.hotline.knowledge_cli import starter_set

    async with app.state.database.transaction() as session:
        await knowledge.load_articles(session, app.state.clock, starter_set())
    answer = (await client.post(f"{BASE}/self-service", json={"utterance_id": "s-1", "text": "爽约以后多久能恢复预约"},
                                headers=await ivr(app))).json()
    assert answer["answered"] is True
    assert answer["title"] == "被限制预约后什么时候恢复"


def test_callers_shortened_names_fold_into_the_full_name_unless_two_organizations_share_them() -> None:
    assert spoken_names("南京市第一医院") >= {"市第一医院", "市一医院"}
    assert spoken_names("江苏省人民医院") >= {"省人民医院", "省人医"}
    assert spoken_names("南京仁品耳鼻喉专科医院") >= {"仁品耳鼻喉专科医院", "仁品耳鼻喉医院"}
    assert "医科大学附属逸夫医院" not in spoken_names("南京医科大学附属逸夫医院")  # a university keeps its city
    assert spoken_names("南京市江宁医院（湖山路）") == {"南京市江宁医院（湖山路）"}
    synonyms = name_synonyms([("南京市第一医院", "市第一医院"), ("南京市江宁医院", "江宁医院"),
                              ("南京江宁医院", None)])
    assert synonyms["市一医院"] == synonyms["市第一医院"] == "南京市第一医院"
    assert "江宁医院" not in synonyms  # both 江宁 hospitals are called so: it names neither
    assert spoken_names("江苏省人民医院") >= {"人民医院"}
    found = name_synonyms([("江苏省人民医院", "省人民医院"), ("南京江北人民医院", None), ("南京鼓楼医院", "鼓楼医院"),
                           ("泰康仙林鼓楼医院", None)])
    assert "人民医院" not in found  # made up, and another's name holds it
    assert found["鼓楼医院"] == "南京鼓楼医院"  # the short name the registry gives stands all the same
    assert organization_synonyms()["省人医"] == "江苏省人民医院"
