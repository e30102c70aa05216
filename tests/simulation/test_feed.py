"""A unit's day of uploads: templated lines are the records make_record builds, and the writer process
gives the same bodies as the feed itself."""

from __future__ import annotations

import asyncio
import copy
import zlib
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import orjson

from cityhealth.clock import BUSINESS_TZ
from cityhealth.collection.examples import make_record
from cityhealth.simulation.bodies import BodyWriter
from cityhealth.simulation.feed import VARIANTS, LineTemplates, UnitFeed
from cityhealth.simulation.plan import plan_month
from cityhealth.simulation.scenario import bundled_scenario, load_scenario

ORG = "12320100466000001X"
EVENT = datetime(2022, 6, 3, 8, 0, tzinfo=BUSINESS_TZ)


def _feeds(scale: str) -> list[UnitFeed]:
    scenario = load_scenario(bundled_scenario("nanjing-2022-06"))
    plan = plan_month(scenario, Decimal(scale))
    return [UnitFeed(unit, f"ORG{index:03d}", plan.month, "320100") for index, unit in enumerate(plan.units)]


def test_a_templated_line_is_the_record_of_its_form_id_and_event() -> None:
    templates = LineTemplates(ORG)
    ids = [f"C{n:09d}" for n in range(1, 2000)]
    lines = list(templates.lines(["outpatient_visit", "discharge"] * 999 + ["lab_report"], ids, EVENT))
    for record_id, line in zip(ids, lines, strict=True):
        parsed = orjson.loads(line)
        form = parsed.pop("form")
        assert parsed["record_id"] == record_id
        # The record make_record gives for this id, with the seed of the line's shape.
        seed = zlib.crc32(record_id.encode()) % VARIANTS
        assert parsed == make_record(form, ORG, record_id, EVENT, seed=seed)
    assert len(set(lines)) == len(lines)  # the ids keep every line distinct
    # Contents vary with the record id, within the bounded set of shapes.
    visits = {orjson.loads(line)["visit_no"] for line in lines[::2]}
    assert 100 < len(visits) <= 256


def test_a_day_body_holds_the_workload_report_then_the_allocated_records() -> None:
    feed = max(_feeds("0.001"), key=lambda feed: feed.unit.uploaded)
    body = feed.body_for(5, 30)
    lines = body.splitlines()
    assert orjson.loads(lines[0])["form"] == "workload_daily"
    expected = sum(days.get(5, 0) for days in feed.allocation.values())
    assert len(lines) - 1 == expected
    record_ids = [orjson.loads(line)["record_id"] for line in lines[1:]]
    assert len(set(record_ids)) == len(record_ids)
    # The next day continues the unit's serials: ids never repeat within a unit's month.
    later = [orjson.loads(line)["record_id"] for line in feed.body_for(6, 30).splitlines()[1:]]
    assert not set(later) & set(record_ids)


def test_the_writer_process_writes_the_bodies_the_feeds_would(tmp_path: Path) -> None:
    feeds = _feeds("0.001")[:3]
    local = copy.deepcopy(feeds)

    async def written() -> list[bytes]:
        writer = BodyWriter(feeds, tmp_path / "bodies")
        try:
            futures = writer.day(1, 30, len(feeds)) + writer.day(2, 30, len(feeds))
            bodies = [await future for future in futures]
            contents = [body.path.read_bytes() for body in bodies]
            assert [body.records for body in bodies] == [content.count(b"\n") - 1 for content in contents]
            return contents
        finally:
            writer.close()

    contents = asyncio.run(written())
    assert contents == [feed.body_for(day, 30) for day in (1, 2) for feed in local]
    assert not list((tmp_path / "bodies").iterdir())  # closing removes what was not sent
    forms = Counter(orjson.loads(line)["form"] for content in contents for line in content.splitlines())
    assert forms["workload_daily"] == 6


def test_closing_the_writer_removes_the_bodies_not_sent(tmp_path: Path) -> None:
    feeds = _feeds("0.001")[:2]

    async def unsent() -> list[Path]:
        writer = BodyWriter(feeds, tmp_path / "bodies")
        try:
            bodies = [await future for future in writer.day(1, 30, len(feeds))]
            assert all(body.path.exists() for body in bodies)
            return [body.path for body in bodies]
        finally:
            writer.close()

    paths = asyncio.run(unsent())
    assert len(paths) == 2
    assert not any(path.exists() for path in paths)
