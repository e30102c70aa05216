"""Goal: knowledge-base search p99 <= 30 ms over 20,000 articles; call events >= 2,000 calls/s over HTTP on
PostgreSQL; self-service top-1 >= 85 % on the labelled questions.

Knowledge base, on a scratch database (PostgreSQL when CITYHEALTH_DATABASE_URL names a server, made there and
dropped afterwards; else SQLite in a temporary directory), through the service functions the routes call (the
stamp query, the in-process index, the published rows fetched), without HTTP:

1. the starter set alone (the knowledge base `make demo` ships): each labelled question asked as the IVR asks
   it; top-1 = its article answered at or above the threshold, top-3 = its article among the first three
   search hits; off-topic questions should get no answer;
2. the starter set plus generated articles up to `--articles` (each hospital's departments and their notices,
   in the starter set's words): the index built once, then `--searches` searches timed, the labelled
   questions and department questions in turn; p50/p99 of those.

Calls (PostgreSQL only), on a scratch database of their own that already holds a day's calls (`--history`, the
seed's peak day of 28,000, analysed as a live database is): the real server (`cityhealth serve`, `--workers`
processes, the production middleware) and a separate load-generator process playing the province's telephony
system (a machine client with the hotline.telephony scope, `--reporters` keep-alive connections, each
reporting its share of the calls). The load generator makes the CTI's stream first: `--calls` calls over the
province's city lines (the six categories; self-service calls are start, two IVR nodes and an end, the others
start, IVR, queue, answer and end), each event put in the report of the moment it happened, so that a report
holds about `--report-events` events of many calls and a call's events come in three to seven reports; a few
events come some reports late (after the call's later events, a start after its end), a few are sent again in
a later report or twice in one. Reports go back to back (the CTI catching up: the server's capacity), or one
every fraction of a second to offer `--rate` calls/s (open loop, latency counted from when a report was due;
calls/s is then below the offered rate by the stream's tail, the last calls' events being reported up to seven
reports after their start).
Printed: calls/s and events/s, the server's and the database backends' CPU per call (from /proc: the figure
to judge on a shared machine), p50/p99 report latency, and the calls, events and states checked in the
database afterwards.

Last line: `kb_p99_ms=X calls_per_s=Y kb_top1=Z` (`nan` for a part skipped).

    .venv/bin/python benchmarks/hotline.py [--articles 20000] [--searches 2000] [--calls 50000] [--skip-kb]
                                           [--skip-calls]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

from cityhealth.clock import BUSINESS_TZ, SimulatedClock
from cityhealth.config import Environment, Settings
from cityhealth.db.admin import create_database, drop_database
from cityhealth.db.cli import upgrade
from cityhealth.db.engine import Database
from cityhealth.hotline import knowledge, knowledge_answers
from cityhealth.hotline.knowledge_cli import starter_set
from cityhealth.hotline.knowledge_index import KnowledgeIndex
from cityhealth.hotline.knowledge_schemas import ArticleCreate, SelfServiceAsk
from cityhealth.hotline.knowledge_starter import LabelledQuestion, hospitals, labelled_questions
from cityhealth.security.principals import Principal, PrincipalKind, Scope

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.hotline_calls import add_call_options, calls

GOAL_P99_MS, GOAL_TOP1 = 30.0, 0.85
DEPARTMENTS = ("心血管内科", "消化内科", "呼吸内科", "神经内科", "内分泌科", "肾内科", "血液科", "普外科", "骨科",
               "泌尿外科", "神经外科", "心胸外科", "妇科", "产科", "儿科", "眼科", "耳鼻喉科", "口腔科", "皮肤科",
               "中医科", "康复科", "精神科", "心理科", "肿瘤科", "感染科", "急诊科", "发热门诊", "体检中心",
               "营养科", "疼痛科", "放射科", "检验科", "针灸科", "风湿免疫科", "生殖医学科", "新生儿科")
NOTICES = (("出诊安排", "{d}周一至周五全天出诊，周六上午开设专家门诊，节假日安排以医院公告为准。"),
           ("专家门诊", "{d}专家号每天零点放出，可提前7天预约，复诊患者可以请医生诊间预约。"),
           ("就诊须知", "到{d}就诊请携带身份证或电子健康卡，在签到截止时间前到分诊台签到。"),
           ("检查预约", "{d}开具的检查在检查预约中心统一预约，空腹项目请于上午完成。"),
           ("住院须知", "{d}住院请在入院服务中心办理手续，医保患者请出示医保卡。"),
           ("常见问题", "{d}的挂号费按医生职称收取，医保可以报销，退号请在就诊前一天16:00前办理。"))
IVR = Principal(kind=PrincipalKind.CLIENT, subject="client:bench-ivr", scopes=frozenset({Scope.HOTLINE_SELF_SERVICE}))


def generated(count: int) -> list[ArticleCreate]:
    """Department notices of every hospital, as many as asked."""
    found: list[ArticleCreate] = []
    names = [h["name"] for h in hospitals()]
    round_no = 0
    while len(found) < count:
        for n, name in enumerate(names):
            for d in DEPARTMENTS:
                for topic, body in NOTICES:
                    if len(found) == count:
                        return found
                    suffix = f"（{round_no + 1}）" if round_no else ""
                    found.append(ArticleCreate(
                        key=f"bench-{round_no}-{n}-{DEPARTMENTS.index(d)}-{NOTICES.index((topic, body))}",
                        category="hospital", title=f"{name}{d}{topic}{suffix}",
                        body=f"{name}{body.format(d=d)}", questions=[f"{name}{d}{topic}"]))
        round_no += 1
    return found


async def load(database: Database, clock: SimulatedClock, articles: list[ArticleCreate]) -> None:
    for start in range(0, len(articles), 1000):
        async with database.transaction() as session:
            await knowledge.load_articles(session, clock, articles[start:start + 1000])


def benchmark_questions(name: str) -> list[LabelledQuestion]:
    """A labelled set kept beside the benchmark: `knowledge_heldout.json` (written before the second round of
    ranking changes), `knowledge_fresh.json` (callers' speech: colloquial, misrecognised, rambling, written
    before the third round), and three blind sets written in the fourth round from the articles' titles and
    answers alone, without their phrasings or any other set. The confidence model is fitted on all but the
    third blind set (benchmarks/hotline_confidence.py); that set's accuracy is the one a caller may expect."""
    rows = json.loads((Path(__file__).parent / "data" / name).read_text("utf-8"))
    return [LabelledQuestion(row["question"], row["article"]) for row in rows]


async def accuracy(database: Database, clock: SimulatedClock, questions: list[LabelledQuestion],
                   label: str) -> tuple[float, float, int, int]:
    """(top-1 answered, top-3 found, off-topic refused, off-topic asked) over `questions`."""
    index = KnowledgeIndex()
    top1 = top3 = refused = positives = negatives = 0
    for n, question in enumerate(questions):
        async with database.transaction() as session:
            answer = await knowledge_answers.self_service(session, clock, IVR, index, SelfServiceAsk(
                utterance_id=f"bench-{label}-{n}", text=question.question))
            hits = await knowledge_answers.search(session, clock, index, question.question, limit=3)
            answered = (await index.current(session)).document(answer.article_id or 0)
        if question.article_key is None:
            negatives += 1
            refused += not answer.answered
            continue
        positives += 1
        top1 += answer.answered and answered is not None and answered.key == question.article_key
        top3 += question.article_key in [hit.key for hit in hits]
    return top1 / positives, top3 / positives, refused, negatives


async def latency(database: Database, clock: SimulatedClock, searches: int) -> tuple[float, float, float, float]:
    """(index build s, p50 ms, p99 ms, CPU ms per search) of the service's search."""
    index = KnowledgeIndex()
    started = time.perf_counter()
    async with database.transaction() as session:
        await index.current(session)
    built = time.perf_counter() - started
    rng = random.Random(12320)
    texts = [q.question for q in labelled_questions()]
    names = [h.get("short_name") or h["name"] for h in hospitals()]
    texts += [f"{rng.choice(names)}{rng.choice(DEPARTMENTS)}{rng.choice(('几点上班', '怎么挂专家号', '在哪里'))}"
              for _ in range(200)]
    timings = []
    cpu = time.process_time()
    async with database.transaction() as session:
        for n in range(searches):
            started = time.perf_counter()
            await knowledge_answers.search(session, clock, index, texts[n % len(texts)], limit=10)
            timings.append((time.perf_counter() - started) * 1000)
    cpu_ms = (time.process_time() - cpu) * 1000 / searches
    timings.sort()
    return built, statistics.median(timings), timings[min(len(timings) - 1, int(len(timings) * 0.99))], cpu_ms


async def run(url: str, articles: int, searches: int) -> tuple[float, float]:
    """The knowledge-base part: (p99 ms, top-1)."""
    await asyncio.to_thread(upgrade, Settings(env=Environment.TEST, database_url=url))  # alembic runs its own loop
    database = Database(url)
    clock = SimulatedClock(datetime(2022, 6, 15, 9, 30, tzinfo=BUSINESS_TZ))
    try:
        starter = starter_set()
        await load(database, clock, starter)
        top1s = {}
        for label, questions in (("labelled", labelled_questions()),
                                 ("held-out", benchmark_questions("knowledge_heldout.json")),
                                 ("fresh", benchmark_questions("knowledge_fresh.json")),
                                 ("blind", benchmark_questions("knowledge_blind.json")),
                                 ("blind-2", benchmark_questions("knowledge_blind2.json")),
                                 ("blind-3", benchmark_questions("knowledge_blind3.json"))):
            top1s[label], top3, refused, negatives = await accuracy(database, clock, questions, label)
            print(f"{label} questions ({len(questions)}) on the starter set ({len(starter)} articles): top-1 "
                  f"{top1s[label]:.3f} (goal >= {GOAL_TOP1}), top-3 {top3:.3f}, off-topic refused {refused} of "
                  f"{negatives}", flush=True)
        started = time.perf_counter()
        await load(database, clock, generated(articles - len(starter)))
        print(f"loaded {articles} articles in {time.perf_counter() - started:.1f} s")
        built, p50, p99, cpu_ms = await latency(database, clock, searches)
        print(f"index of {articles} articles built in {built:.1f} s; {searches} searches: p50 {p50:.2f} ms, "
              f"p99 {p99:.2f} ms (goal <= {GOAL_P99_MS} ms), CPU {cpu_ms:.2f} ms per search (this process; "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        await database.dispose()
    return p99, top1s["blind-3"]  # the one set nothing was fitted or chosen on


async def knowledge_base(args: argparse.Namespace, base: str) -> tuple[float, float]:
    if base.startswith("postgresql"):
        name = f"ch_bench_hotline_{uuid.uuid4().hex[:8]}"
        url = await create_database(base, name)
        try:
            return await run(url, args.articles, args.searches)
        finally:
            await drop_database(base, name)
    with tempfile.TemporaryDirectory() as directory:
        return await run(f"sqlite:///{Path(directory) / 'bench.sqlite'}", args.articles, args.searches)


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--searches", type=int, default=2_000)
    parser.add_argument("--skip-kb", action="store_true", help="leave out the knowledge-base part")
    add_call_options(parser)
    args = parser.parse_args()
    base = os.environ.get("CITYHEALTH_DATABASE_URL", "")
    p99 = top1 = calls_per_s = float("nan")
    if not args.skip_kb:
        p99, top1 = await knowledge_base(args, base)
    if args.skip_calls:
        pass
    elif base.startswith("postgresql"):
        calls_per_s = await calls(args, base)
    else:
        print("calls: skipped (they are measured on PostgreSQL: set CITYHEALTH_DATABASE_URL to a server)")
    print(f"kb_p99_ms={p99:.2f} calls_per_s={calls_per_s:.0f} kb_top1={top1:.3f}")


if __name__ == "__main__":
    asyncio.run(main())
