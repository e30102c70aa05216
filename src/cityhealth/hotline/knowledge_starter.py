"""The starter knowledge base: hand-written answers, and each demo hospital's address, hours, rules and profile."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

# Next-day booking closes at noon unless the hospital keeps it open longer (domain rules, booking §4).
_NEXT_DAY_CUTOFF = {"南京鼓楼医院": "16:30", "南京市儿童医院": "18:00"}
HOSPITAL_TOPICS = ("address", "hours", "booking", "profile")


@dataclass(frozen=True)
class StarterArticle:
    key: str
    category: str
    title: str
    questions: tuple[str, ...]
    body: str


@dataclass(frozen=True)
class LabelledQuestion:
    question: str
    article_key: str | None  # None: a question the knowledge base should not answer


def _data(name: str) -> Any:
    return json.loads(resources.files("cityhealth.hotline").joinpath("data", name).read_text("utf-8"))


def hospital_key(name: str, topic: str) -> str:
    """A stable key for a hospital's article: the reference file's order may change, its names do not."""
    return f"hospital-{hashlib.sha256(name.encode()).hexdigest()[:10]}-{topic}"


def hospitals() -> list[dict[str, Any]]:
    """The demo city's hospitals, as the registry's reference data describes them."""
    reference = json.loads(resources.files("cityhealth.registry.reference").joinpath("nanjing.json")
                           .read_text("utf-8"))
    return [o for o in reference["organizations"] if o["kind"] == "hospital"]


def _hospital_articles(h: dict[str, Any], phrasings: dict[str, list[str]]) -> list[StarterArticle]:
    """A hospital's four articles; `phrasings`: each topic's callers' phrasings, `{short}` for its name."""
    name, short = h["name"], h.get("short_name") or h["name"]
    also = f"（简称{short}）" if short != name else ""
    where = f"{h.get('address_district') or ''}{h.get('address_line') or ''}"
    phone = h.get("booking_phone") or "12320"
    cutoff = _NEXT_DAY_CUTOFF.get(name, "12:00")
    children = "儿童" in name
    weekend = ("周六、周日上午开设儿科普通门诊，急诊24小时开放。" if children
               else "周六上午开设部分专科门诊，周日和法定节假日以医院公告为准，急诊24小时开放。")
    kind = h.get("ws218_type_name") or "医院"
    level = h.get("level") or ""

    def asked(topic: str) -> tuple[str, ...]:
        return tuple(phrasing.format(short=short) for phrasing in phrasings[topic])

    return [
        StarterArticle(hospital_key(name, "address"), "hospital", f"{name}的地址和联系电话",
                       asked("address"),
                       f"{name}{also}位于{h.get('address_city') or ''}{where}。预约咨询电话{phone}，"
                       f"也可以拨打12320卫生热线咨询和预约。建议乘坐公共交通前往，就诊高峰时段医院周边停车较难。"),
        StarterArticle(hospital_key(name, "hours"), "hours", f"{name}的门诊时间",
                       asked("hours"),
                       f"{name}门诊时间：周一至周五上午8:00至12:00，下午14:00至17:30（夏季作息下午14:30至17:30）。"
                       f"{weekend}各科室具体出诊安排以医院当日公布为准。"),
        StarterArticle(hospital_key(name, "booking"), "booking", f"{name}预约挂号规则",
                       asked("booking"),
                       f"{name}可以预约次日起7天内的号源，第7天的号源每天零点放出。预约次日号源截止到当天{cutoff}。"
                       f"取消预约请在就诊前一天16:00前办理，逾期未取消又未就诊的记为爽约。可以通过12320电话、"
                       f"健康南京客户端等渠道预约，也可以拨打医院预约电话{phone}。"),
        StarterArticle(hospital_key(name, "profile"), "hospital", f"{name}简介",
                       asked("profile"),
                       f"{name}{also}是一所{level}{kind}，位于{h.get('address_district') or '南京市'}。"
                       f"开设的科室和专家出诊信息可以在健康南京客户端中查看，或拨打12320咨询。"),
    ]


@cache
def starter_articles() -> tuple[StarterArticle, ...]:
    """Every article of the starter set, hand-written ones first, then four per hospital."""
    written = [StarterArticle(a["key"], a["category"], a["title"], tuple(a["questions"]), a["body"])
               for a in _data("knowledge_articles.json")]
    phrasings = _data("knowledge_hospital_phrasings.json")
    generated = [article for h in hospitals() for article in _hospital_articles(h, phrasings)]
    return tuple(written + generated)


def labelled_questions() -> list[LabelledQuestion]:
    """Callers' questions, worded apart from the articles' own phrasings, and the article each should find."""
    return [LabelledQuestion(q["question"], q["article"]) for q in _data("knowledge_questions.json")]


def starter_names() -> list[tuple[str, str | None]]:
    """(name, short name) of each hospital the starter set has articles about."""
    return [(h["name"], h.get("short_name")) for h in hospitals()]


def organization_synonyms() -> dict[str, str]:
    """A hospital's short name and the names callers shorten it to -> its full name, so any of them finds the
    full one."""
    return name_synonyms(starter_names())


_ORDINAL = re.compile(r"第([一二三四五六七八九十]+)")
# A leading city or province, and what callers say in its place; a university's name keeps its city.
_PLACES = (("南京市", "市"), ("江苏省", "省"), ("南京", ""))
_KEEPS_PLACE = ("医科大学", "大学", "省")


def spoken_names(name: str) -> set[str]:
    """The shorter forms callers make of an organization's name by the usual rules: the city or province said
    as 市 or 省 or left off (南京市胸科医院: 市胸科医院, 胸科医院), an ordinal said without 第 (市第一医院: 市一医院),
    人民医院 as 人医, 专科 left out. A name with a bracketed part (a campus) has none."""
    if "（" in name or "(" in name:
        return {name}
    found = {name}
    for place, said in _PLACES:
        rest = name[len(place):]
        if name.startswith(place) and len(rest) > 2 and not rest.startswith(_KEEPS_PLACE):
            found.add(said + rest)
            break
    for form in list(found):  # 市儿童医院: 儿童医院
        if form[0] in "市省" and form != name and len(form) > 4 and form[1] not in "第一二三四五六七八九十":
            found.add(form[1:])
    for form in list(found):
        found.add(_ORDINAL.sub(r"\1", form))
    for form in list(found):
        found.add(form.replace("人民医院", "人医").replace("专科医院", "医院"))
    return {form for form in found if len(form) >= 3}


def name_synonyms(names: Iterable[tuple[str, str | None]]) -> dict[str, str]:
    """Each organization's short name and the forms callers make of its names (spoken_names) -> its full name.
    A form two organizations share names neither, nor does a made-up form that another's full name holds
    (人民医院); a short name the registry gives stands."""
    pairs = list(names)
    claimed: dict[str, set[str]] = {}
    for name, short in pairs:
        for form in spoken_names(name) | (spoken_names(short) if short else set()):
            if form != name:
                claimed.setdefault(form, set()).add(name)
    # Which full names hold each form: found by walking every name's pieces once (a city's registry holds
    # thousands of organizations, too many to search each name for each form).
    held_by: dict[str, set[str]] = {}
    shortest = min(map(len, claimed), default=1)
    for name in {name for name, _ in pairs}:
        for start in range(len(name)):
            for end in range(start + shortest, len(name) + 1):
                if name[start:end] in claimed:
                    held_by.setdefault(name[start:end], set()).add(name)
    given = {short for _, short in pairs if short}
    return {form: next(iter(owners)) for form, owners in claimed.items()
            if len(owners) == 1 and (form in given or not held_by.get(form, set()) - owners)}
