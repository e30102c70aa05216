"""How a caller's recognised speech is read: fillers cut, character pairs as backoff, homophones heard, and a
confidence that is a chance, rising with what the article covers."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from cityhealth.hotline.knowledge_confidence import Evidence, calibrated
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
