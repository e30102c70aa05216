"""The public pages over HTTP (no browser): the landing page, the bulletin and its downloads, the static
assets, the data-quality dashboard and a unit's page."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import date

import httpx
from fastapi import FastAPI
from tests.web.conftest import ENROLLED, MONTH, NOT_ENROLLED, Seeded
from tests.web.pages_support import drill_down, rows_of, section, upload_job

from cityhealth.clock import SimulatedClock

# --- landing and bulletin --------------------------------------------------------------------------------


async def test_landing_links_the_latest_bulletin_the_dashboard_and_the_api_docs(
        client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert f'href="/bulletin/{MONTH}"' in response.text
    assert 'href="/dashboard/quality"' in response.text
    assert 'href="/docs"' in response.text


async def test_landing_without_data_links_last_months_bulletin(client: httpx.AsyncClient) -> None:
    response = await client.get("/")  # the clock is in June 2022; nothing was uploaded
    assert 'href="/bulletin/2022-05"' in response.text
    assert "近期暂无数据" in response.text


async def test_bulletin_index_lists_the_months_with_data(client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get("/bulletin/")
    assert response.status_code == 200
    assert [row[0] for row in rows_of(response.text, "months")] == [MONTH]
    assert f'href="/bulletin/{MONTH}.docx"' in response.text


async def test_bulletin_index_month_form_opens_that_month(client: httpx.AsyncClient) -> None:
    response = await client.get("/bulletin/", params={"month": "2021-11"})
    assert (response.status_code, response.headers["location"]) == (303, "/bulletin/2021-11")


async def test_bulletin_index_month_form_refuses_a_malformed_month(client: httpx.AsyncClient) -> None:
    response = await client.get("/bulletin/", params={"month": "2021-1"})
    assert response.status_code == 422
    assert response.json()["field"] == "month"


async def test_bulletin_page_is_public_and_shows_its_tables(client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get(f"/bulletin/{MONTH}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<td class="total-label">合计</td>' in response.text
    hospitals = section(response.text, "collection.hospitals")
    row = re.search(rf"<tr><td>{ENROLLED}</td>(.*?)</tr>", hospitals)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
    assert cells[0] == "5"  # 数据上传量: five records sent, one of them rejected
    assert cells[4] == "75.00%"  # 门急诊实时数据符合率
    assert 'class="site-bar"' in response.text
    assert f'href="/bulletin/{MONTH}.json"' in response.text


async def test_bulletin_of_a_month_without_uploads_prints_zeros_and_slashes(
        client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get("/bulletin/2022-05")
    assert response.status_code == 200
    hospitals = section(response.text, "collection.hospitals")
    row = re.search(rf"<tr><td>{ENROLLED}</td>(.*?)</tr>", hospitals)
    assert row is not None  # enrolled since January: listed, with nothing uploaded
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
    assert cells[0] == "0"
    assert cells[4] == "/"  # enrolled but no records: not measured, never "0.00%"


async def test_malformed_month_is_a_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/bulletin/2022-13")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["field"], problem["value"], problem["rule"]) == ("month", "2022-13", "month.format")


async def test_unknown_download_format_is_a_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/bulletin/{MONTH}.odt")
    assert response.status_code == 422
    assert (response.json()["field"], response.json()["value"]) == ("format", "odt")


async def test_json_download_is_the_scenario_format(client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get(f"/bulletin/{MONTH}.json")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == f'attachment; filename="bulletin-{MONTH}.json"'
    document = json.loads(response.content)
    assert document["month"] == MONTH
    hospitals = {row["hospital"]: row for row in document["collection"]["hospitals"]}
    assert hospitals[ENROLLED]["uploaded_records"] == 5
    assert hospitals[NOT_ENROLLED]["outpatient_conformance_pct"] is None


async def test_markdown_and_docx_downloads(client: httpx.AsyncClient, seeded: Seeded) -> None:
    markdown = await client.get(f"/bulletin/{MONTH}.md")
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    assert ENROLLED in markdown.text
    docx = await client.get(f"/bulletin/{MONTH}.docx")
    assert docx.headers["content-disposition"] == f'attachment; filename="bulletin-{MONTH}.docx"'
    with zipfile.ZipFile(io.BytesIO(docx.content)) as archive:
        assert ENROLLED in archive.read("word/document.xml").decode("utf-8")


async def test_static_assets_are_served_by_the_platform(client: httpx.AsyncClient) -> None:
    response = await client.get("/static/site.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    page = await client.get("/login")
    assert not re.search(r'(?:href|src)="(?:https?:)?//', page.text)  # nothing from another host


# --- dashboard -------------------------------------------------------------------------------------------


async def test_dashboard_ranks_units_by_conformance_with_unmeasured_last(
        client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get("/dashboard/quality", params={"month": MONTH})
    assert response.status_code == 200
    hospitals = section(response.text, "hospitals")
    rows = rows_of(hospitals, "ranking-table")
    assert [(row[0], row[1], row[6]) for row in rows] == [("1", ENROLLED, "75.00%"), ("—", NOT_ENROLLED, "/")]
    assert "<svg" in hospitals
    assert f'href="/dashboard/quality/units/{seeded.enrolled.id}?month={MONTH}"' in hospitals


async def test_dashboard_without_a_month_shows_the_latest_month_with_data(
        client: httpx.AsyncClient, seeded: Seeded, clock: SimulatedClock) -> None:
    clock.advance(date(2022, 8, 3) - date(2022, 6, 15))  # two months on, nothing new uploaded
    response = await client.get("/dashboard/quality")
    assert f"数据质量看板 · {MONTH}" in response.text


async def test_dashboard_refuses_a_malformed_month(client: httpx.AsyncClient) -> None:
    response = await client.get("/dashboard/quality", params={"month": "June"})
    assert response.status_code == 422
    assert response.json()["field"] == "month"


async def test_unit_page_shows_the_units_month(client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get(f"/dashboard/quality/units/{seeded.enrolled.id}", params={"month": MONTH})
    assert response.status_code == 200
    summary = section(response.text, "summary")
    assert "<dd>5</dd>" in summary
    assert "<dd>75.00%</dd>" in summary


async def test_unit_page_of_an_unknown_unit_is_404(client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get("/dashboard/quality/units/999999", params={"month": MONTH})
    assert response.status_code == 404


async def test_unit_page_shows_the_days_table_and_chart_and_the_rule_counts(
        client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get(f"/dashboard/quality/units/{seeded.enrolled.id}", params={"month": MONTH})
    days_section = section(response.text, "days")
    days = rows_of(days_section, "days")
    assert len(days) == 15  # 1-15 June: the clock's today is the 15th
    assert days[0] == ["2022-06-01", "0", "0", "0", "0", "0", "0"]
    assert days[14] == ["2022-06-15", "5", "4", "0", "0", "0", "1"]  # the seeded upload: one record rejected
    assert "<svg" in days_section
    rejections = section(response.text, "rejections")
    assert rows_of(rejections, "rejections") == [["outpatient_visit", "required", "visit_no", "1", "查看（需登录）"]]
    assert "<svg" in rejections
    assert f"/rejections?month={MONTH}&amp;rule=required" in rejections
    assert "尚未由数据采集服务提供" not in response.text


async def test_unit_page_of_a_unit_without_uploads_shows_empty_days_and_no_rejections(
        client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get(f"/dashboard/quality/units/{seeded.district_platform.id}", params={"month": MONTH})
    assert response.status_code == 200
    days = rows_of(section(response.text, "days"), "days")
    assert len(days) == 15
    assert all(cells[1:] == ["0"] * 6 for cells in days)
    rejections = section(response.text, "rejections")
    assert "本月没有被退回的记录" in rejections
    assert "<svg" not in rejections


async def test_unit_page_for_anyone_shows_the_aggregates_but_not_the_records(
        client: httpx.AsyncClient, app: FastAPI, seeded: Seeded, clock: SimulatedClock) -> None:
    job_id = await upload_job(app, client, clock, seeded, ["gl-bulk-bad"])
    response = await client.get(f"/dashboard/quality/units/{seeded.enrolled.id}", params={"month": MONTH})
    assert response.status_code == 200
    assert rows_of(section(response.text, "rejections"), "rejections")[0][:4] == [
        "outpatient_visit", "required", "visit_no", "2"]  # the real-time rejection and the bulk one
    assert "gl-bulk-bad" not in response.text
    assert "gl-broken" not in response.text
    assert f"{job_id}:" not in response.text
    assert (await client.get(drill_down(seeded))).status_code == 303  # the records need a login
