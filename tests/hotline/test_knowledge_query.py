"""How a caller's recognised speech is read: fillers cut, character pairs as backoff, homophones heard, and a
confidence that is a chance, rising with what the article covers."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityhealth.hotline import knowledge_search
from cityhealth.hotline.knowledge_confidence import Evidence, Phrasings, calibrated, phrasing_match
from cityhealth.hotline.knowledge_query import BIGRAM_MARK, bigrams, homophones, sounds_of, without_fillers
from cityhealth.hotline.knowledge_search import Analyzer, Document, SearchIndex

TODAY = date(2022, 6, 15)


def _index() -> SearchIndex:
    documents = [
        Document(1, 1, "insurance", "看病怎么用医保", "医保卡怎么用", "在定点医院出示医保卡或电子医保凭证即可结算。"),
        Document(2, 1, "booking", "预约挂号有哪些渠道", "怎么挂号", "可以拨打12320或在客户端预约挂号。"),
        Document(3, 1, "vaccination", "流感疫苗什么时候打", "", "每年九月到十一月接种流感疫苗。"),
    ]
    return SearchIndex.build(Analyzer(["医保卡"], {"约号": "挂号"}), documents)


def test_spoken_fillers_are_cut_before_the_question_is_segmented() -> None:
    assert without_fillers("喂你好我想问一下那个医保卡怎么用").split() == ["医保卡怎么用"]
    # a filler inside a longer phrase is cut too, leaving a break, not a new word across it
    assert without_fillers("请问挂号") == " 挂号"


def test_character_pairs_are_marked_apart_from_words() -> None:
    assert bigrams("医保卡a号") == [BIGRAM_MARK + "医保", BIGRAM_MARK + "保卡"]


def test_a_misrecognised_word_is_heard_by_its_sound_but_a_word_written_right_is_not_doubled() -> None:
    vocabulary = {"医保": 1, "挂号": 1, "疫苗": 1}
    sounds = sounds_of(vocabulary)
    assert homophones("一保怎么报销", vocabulary, sounds) == ["医保"]
    assert homophones("挂好了吗", vocabulary, sounds) == ["挂号"]
    assert homophones("医保怎么报销", vocabulary, sounds) == []


def test_a_homophone_question_finds_the_article_the_right_word_finds() -> None:
    index = _index()
    heard = index.search("一保卡怎么刷", today=TODAY, limit=3)
    assert heard
    assert heard[0].article_id == 1
    written = index.search("医保卡怎么刷", today=TODAY, limit=3)
    assert written[0].article_id == 1
    assert written[0].confidence >= heard[0].confidence


def test_fillers_do_not_lower_the_confidence() -> None:
    index = _index()
    plain = index.search("流感疫苗几月打", today=TODAY, limit=1)[0]
    spoken = index.search("喂你好我想问一下那个流感疫苗几月打", today=TODAY, limit=1)[0]
    assert spoken.article_id == plain.article_id == 3
    assert spoken.confidence == plain.confidence


@given(st.floats(0, 1), st.floats(0, 1))
def test_the_confidence_is_a_chance_that_rises_with_the_coverage(low: float, high: float) -> None:
    low, high = sorted((low, high))
    assert 0 < calibrated(Evidence(low)) <= calibrated(Evidence(high)) < 1


def test_the_phrasing_match_is_one_for_the_same_words_and_zero_for_none_shared() -> None:
    def asked(*words: str) -> dict[str, float]:
        return dict.fromkeys(words, 2.0)

    # Each word weighs 2 once softened (IDF ** 0.75).
    phrasings = Phrasings.of([frozenset({"医保卡", "丢"}), frozenset({"医保卡", "补办", "地方"})],
                             lambda word: 2.0 ** (4 / 3))
    assert phrasing_match(asked("医保卡", "丢"), phrasings) == (1.0, 1.0)
    assert phrasing_match(asked("疫苗", "几月"), phrasings) == (0.0, 0.0)
    dice, held = phrasing_match(asked("医保卡", "补办"), phrasings)
    assert dice == pytest.approx(0.8)  # two of the second phrasing's three words: Dice 4/5
    assert held == pytest.approx(2 / 3)
    assert (dice, held) == phrasing_match(asked("补办", "医保卡"), phrasings)
    # A rambling question that says a whole phrasing among other things holds all of it, matching it loosely.
    dice, held = phrasing_match(asked("孩子", "昨天", "医保卡", "丢", "商场", "怎么办"), phrasings)
    assert held == 1.0
    assert dice == pytest.approx(0.5)


def test_a_question_worded_as_an_article_is_asked_ranks_that_article_first(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first article's answer holds more of the question's words, more often, but is not asked that way; the
    # second lists a phrasing close to the caller's question.
    documents = [
        Document(1, 1, "vaccination", "接种须知", "",
                 "孩子打疫苗请带接种证，孩子发烧时暂缓打疫苗，孩子退烧了再打疫苗，打完疫苗留观半小时。"),
        Document(2, 1, "vaccination", "接种后的反应", "打完疫苗发烧了怎么办", "接种后出现低热多为正常反应，多喝水。"),
        Document(3, 1, "booking", "预约挂号", "怎么挂号", "拨打12320。"),
    ]
    index = SearchIndex.build(Analyzer(), documents)
    question = "孩子打完疫苗发烧了怎么办"
    hits = index.search(question, today=TODAY, limit=2)
    assert [hit.article_id for hit in hits] == [2, 1]
    assert hits[0].score > hits[1].score
    assert hits[0].confidence > hits[1].confidence
    monkeypatch.setattr(knowledge_search, "PHRASING_RANK", 0.0)  # by the BM25F score alone, the other way round
    assert [hit.article_id for hit in index.search(question, today=TODAY, limit=2)] == [1, 2]


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(-1, 1), st.floats(-1, 1))
def test_the_confidence_rises_with_the_phrasing_held_and_the_lead(coverage: float, low: float, high: float,
                                                                    behind: float, ahead: float) -> None:
    low, high = sorted((low, high))
    behind, ahead = sorted((behind, ahead))
    assert 0 < calibrated(Evidence(coverage, low, behind)) <= calibrated(Evidence(coverage, high, behind)) < 1
    assert calibrated(Evidence(coverage, low, behind)) <= calibrated(Evidence(coverage, low, ahead))


def test_numbers_said_digit_by_digit_are_written_in_digits() -> None:
    assert without_fillers("喂幺二三二零能办啥").split() == ["12320能办啥"]
    assert without_fillers("打幺二零") == "打120"
    assert without_fillers("一二三四五") == "12345"
    assert without_fillers("三四天以后打第三针") == "三四天以后打第三针"  # words, not a number read out


def test_a_misheard_short_name_finds_the_organization_it_sounds_like() -> None:
    documents = [Document(1, 1, "hospital", "南京鼓楼医院的门诊时间", "", "南京鼓楼医院周一至周五上午8:00开诊。"),
                 Document(2, 1, "hospital", "鼓楼区的社区医院", "", "鼓楼区有十几家社区卫生服务中心。")]
    analyzer = Analyzer([], {"鼓楼医院": "南京鼓楼医院"})
    analyzer.add_entities(["南京鼓楼医院"])
    index = SearchIndex.build(analyzer, documents)
    assert "南京鼓楼医院" in index.query("古楼医院几点开门").factors  # heard as the short name, folded into the full
    assert index.search("古楼医院几点开门", today=TODAY, limit=1)[0].article_id == 1


@given(st.floats(0, 1), st.floats(0, 1), st.floats(-1, 1), st.integers(0, 40))
def test_naming_the_organization_the_article_holds_raises_the_confidence(coverage: float, held: float, lead: float,
                                                                         words: int) -> None:
    unnamed, named = (calibrated(Evidence(coverage, held, lead, holds, words)) for holds in (0.0, 1.0))
    assert unnamed <= named


def test_the_evidence_says_whether_the_article_holds_the_organization_named() -> None:
    analyzer = Analyzer([], {"鼓楼医院": "南京鼓楼医院"})
    analyzer.add_entities(["南京鼓楼医院", "南京市儿童医院"])
    index = SearchIndex.build(analyzer, [
        Document(1, 1, "hospital", "南京鼓楼医院的门诊时间", "", "南京鼓楼医院周一至周五上午8:00开诊。"),
        Document(2, 1, "hours", "门诊时间", "", "各医院门诊一般上午8:00开诊。")])
    named, general = index.search("鼓楼医院几点开诊", today=TODAY, limit=2)
    assert (named.article_id, named.evidence.named) == (1, 1.0)
    assert (general.article_id, general.evidence.named) == (2, 0.0)
    assert named.evidence.words == len(index.query("鼓楼医院几点开诊").words)
