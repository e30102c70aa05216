"""A caller's question as the index reads it: spoken filler out, words, their character pairs, their homophones.

Recognised speech differs from an article's text in three general ways, each met here without rules about
particular questions:
- filler phrases of spoken Chinese (我想问一下, 请问, 那个) say nothing of the subject: they are cut out
  before the question is segmented (`knowledge_query_stop_phrases.json`, query side only);
- the segmenter cuts a question and an article differently (能约 against 约, 慢病 against 慢特病): the index
  also holds each text's Han character pairs, a weaker backoff term (`BIGRAM_FACTOR`);
- speech recognition writes a word with another word's sound (挂好 for 挂号, 一保 for 医保): a run of the
  question's characters that is no indexed word but sounds like one (toneless pinyin, pypinyin) also
  searches for that word, at a discount (`HOMOPHONE_FACTOR`).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

from pypinyin import Style, lazy_pinyin

# How much a character pair counts against a word (the pair is a guess at a word the segmenter missed).
BIGRAM_FACTOR = 0.3
# How much a word heard by its sound counts against the word written (recognition may have been right).
HOMOPHONE_FACTOR = 0.7
# Character pairs are kept apart from words in the index by this mark (no segmenter word starts with it).
BIGRAM_MARK = "\x02"
HOMOPHONE_WINDOWS = (2, 3, 4)  # lengths of the runs of characters tried against indexed words' sounds
_HAN = re.compile(r"[\u3400-\u9fff]+")


@cache
def stop_phrases() -> tuple[str, ...]:
    """The spoken fillers cut out of a question, longest first (so 我想问一下 goes before 问一下)."""
    raw: list[str] = json.loads(
        resources.files("cityhealth.hotline").joinpath("data", "knowledge_query_stop_phrases.json").read_text("utf-8")
    )
    phrases = {unicodedata.normalize("NFKC", p).lower().strip() for p in raw}
    return tuple(sorted((p for p in phrases if p), key=lambda p: (-len(p), p)))


@cache
def _stop_pattern() -> re.Pattern[str]:
    return re.compile("|".join(re.escape(p) for p in stop_phrases()))


def without_fillers(text: str) -> str:
    """The question with its spoken fillers replaced by a break (the words either side stay apart), and numbers
    said digit by digit written in digits (spoken_digits)."""
    return spoken_digits(_stop_pattern().sub(" ", unicodedata.normalize("NFKC", text).lower()))


_DIGITS = {"幺": "1", "一": "1", "二": "2", "两": "2", "三": "3", "四": "4", "五": "5", "六": "6", "七": "7",
           "八": "8", "九": "9", "零": "0", "〇": "0", "洞": "0"}
_DIGIT_RUN = re.compile(f"[{''.join(_DIGITS)}]{{3,}}")


def spoken_digits(text: str) -> str:
    """A telephone number or code read out digit by digit (幺二三二零, 幺二零) in digits (12320, 120): runs of
    three or more digit words holding 幺, 零 or 洞 (said only in numbers), or of five or more."""
    def written(run: re.Match[str]) -> str:
        said = run.group()
        if len(said) >= 5 or any(char in said for char in "幺零〇洞"):
            return "".join(_DIGITS[char] for char in said)
        return said

    return _DIGIT_RUN.sub(written, text)


def bigrams(text: str) -> list[str]:
    """The Han character pairs of `text`, each marked as a pair (not a word), in order, repeats kept."""
    text = unicodedata.normalize("NFKC", text)
    return [BIGRAM_MARK + run[i : i + 2] for run in _HAN.findall(text) for i in range(len(run) - 1)]


@lru_cache(maxsize=65_536)
def sound(word: str) -> str:
    """A word's toneless pinyin, one syllable per character ('gua hao'); each character at its usual reading."""
    return " ".join(lazy_pinyin(word, style=Style.NORMAL, errors="default"))


def sounds_of(vocabulary: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Sound -> the indexed words (two to four Han characters) that have it."""
    found: dict[str, list[str]] = {}
    for word in vocabulary:
        if 2 <= len(word) <= max(HOMOPHONE_WINDOWS) and _HAN.fullmatch(word):
            found.setdefault(sound(word), []).append(word)
    return {key: tuple(sorted(words)) for key, words in found.items()}


def homophones(text: str, vocabulary: Mapping[str, object], sounds: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Indexed words that a run of the question's characters sounds like but is not written as.

    A run that is itself an indexed word is taken as written; so is a run of which the question already holds
    the word (the recogniser heard it right)."""
    found: list[str] = []
    for run in _HAN.findall(unicodedata.normalize("NFKC", text)):
        syllables = [sound(char) for char in run]
        for size in HOMOPHONE_WINDOWS:
            for start in range(len(run) - size + 1):
                written = run[start : start + size]
                if written in vocabulary:
                    continue
                for word in sounds.get(" ".join(syllables[start : start + size]), ()):
                    if word != written and word not in text and word not in found:
                        found.append(word)
    return found


@dataclass(frozen=True)
class Query:
    """The terms a question searches for, each with the factor its impacts are taken at."""

    words: tuple[str, ...]  # the segmenter's words (synonyms folded), fillers and stop words out
    factors: dict[str, float]  # every term searched: words 1, homophones and character pairs less

    @property
    def terms(self) -> list[str]:
        return list(self.factors)
