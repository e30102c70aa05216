"""The public pages over HTTP (no browser): the landing page, the bulletin and its downloads (published issues
for everyone, unpublished months for the bulletin's editors only), the static assets, the data-quality dashboard
and a unit's page."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from datetime import date

import httpx
import pytest
from fastapi import FastAPI
from tests.web.conftest import ENROLLED, MONTH, NOT_ENROLLED, Seeded
from tests.web.pages_support import (
    as_visitor,
    draft_issue,
    drill_down,
    log_in,
    log_in_as_editor,
    publish_issue,
    rows_of,
    section,
    upload_job,
)

from cityhealth.clock import SimulatedClock
from cityhealth.db.engine import Database
from cityhealth.reporting import service as reporting_service
from cityhealth.web.demo import DemoOperator

# Issues are published without their PDF edition: LibreOffice's has tests of its own (tests/reporting).
pytestmark = pytest.mark.usefixtures("no_office")

# --- landing and bulletin --------------------------------------------------------------------------------


async def test_landing_links_the_latest_published_issue_the_dashboard_and_the_api_docs(
        app: FastAPI, client: httpx.AsyncClient, seeded: Seeded) -> None:
    await publish_issue(app, client, "2022-05", published_on="2022-06-28")
    await publish_issue(app, client, MONTH, first=False)
    response = await client.get("/")
    assert response.status_code == 200
    assert f'<a href="/bulletin/{MONTH}">最新月度简报：2022年第8期（{MONTH}）</a>' in response.text
    assert 'href="/dashboard/quality"' in response.text
    assert 'href="/docs"' in response.text


async def test_landing_without_a_published_issue_says_none_is_published(
        client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get("/")  # June has data, but no issue of it is published
    assert "尚未出版任何一期简报" in response.text
    assert not re.search(r'href="/bulletin/\d{4}-\d{2}', response.text)


async def test_bulletin_index_lists_only_the_published_issues_to_the_public(
        app: FastAPI, client: httpx.AsyncClient, seeded: Seeded) -> None:
    before = await client.get("/bulletin/")
    assert before.status_code == 200
    assert "尚未出版任何一期简报" in before.text
    assert f"/bulletin/{MONTH}" not in before.text  # June has data, but is not published
    assert 'class="data months"' not in before.text
    await publish_issue(app, client, "2022-05", published_on="2022-06-28")
    after = await client.get("/bulletin/")
    assert rows_of(after.text, "issues") == [
        ["2022年第7期（总第125期）", "2022-05", "2022-06-28", "—", "JSON MD DOCX"]]
    assert 'href="/bulletin/2022-05.docx"' in after.text
    assert f"/bulletin/{MONTH}" not in after.text
    assert "未出版" not in after.text


async def test_bulletin_index_shows_an_editor_the_months_with_data_not_yet_published(
        app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock, seeded: Seeded) -> None:
    await publish_issue(app, client, "2022-05", published_on="2022-06-28")
    await log_in_as_editor(app, client, database, clock)
    response = await client.get("/bulletin/")
    assert [row[0] for row in rows_of(response.text, "issues")] == ["2022年第7期（总第125期）"]
    assert [row[0] for row in rows_of(response.text, "months")] == [MONTH]  # May is published: not listed again
    assert f'href="/bulletin/{MONTH}.docx"' in response.text
    assert response.headers["cache-control"] == "no-store"


async def test_bulletin_index_month_form_opens_that_month(client: httpx.AsyncClient) -> None:
    response = await client.get("/bulletin/", params={"month": "2021-11"})
    assert (response.status_code, response.headers["location"]) == (303, "/bulletin/2021-11")


async def test_bulletin_index_month_form_refuses_a_malformed_month(client: httpx.AsyncClient) -> None:
    response = await client.get("/bulletin/", params={"month": "2021-1"})
    assert response.status_code == 422
    assert response.json()["field"] == "month"


async def test_a_published_bulletin_is_public_and_shows_its_tables(
        app: FastAPI, client: httpx.AsyncClient, seeded: Seeded) -> None:
    await publish_issue(app, client)
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
    assert f'href="/bulletin/{MONTH}.pdf"' not in response.text  # published without LibreOffice: no PDF edition
    assert "preview-banner" not in response.text


async def test_a_published_bulletins_bar_leads_to_the_neighbouring_issues(
        app: FastAPI, client: httpx.AsyncClient, seeded: Seeded) -> None:
    await publish_issue(app, client, "2022-04", published_on="2022-05-27")
    await publish_issue(app, client, MONTH, first=False)
    june = (await client.get(f"/bulletin/{MONTH}")).text
    assert '<a href="/bulletin/2022-04" rel="prev">上一期 2022-04</a>' in june  # May is not published
    assert 'rel="next"' not in june
    april = (await client.get("/bulletin/2022-04")).text
    assert f'<a href="/bulletin/{MONTH}" rel="next">下一期 {MONTH}</a>' in april
    assert 'rel="prev"' not in april


async def test_an_unpublished_month_is_not_published_to_the_public(
        client: httpx.AsyncClient, seeded: Seeded) -> None:
    response = await client.get(f"/bulletin/{MONTH}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert f"{MONTH} 的简报尚未出版" in response.text
    assert ENROLLED not in response.text
    assert "75.00%" not in response.text
    assert "合计" not in response.text


@pytest.mark.parametrize("extension", ["json", "md", "docx"])
async def test_an_unpublished_months_downloads_are_404_to_the_public(
        client: httpx.AsyncClient, seeded: Seeded, extension: str) -> None:
    response = await client.get(f"/bulletin/{MONTH}.{extension}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["field"], problem["value"], problem["rule"]) == ("month", MONTH, "bulletin.issue.published_exists")
    assert ENROLLED not in response.text
    assert "uploaded_records" not in response.text


async def test_an_unpublished_month_is_not_shown_to_staff_without_the_editors_scope(
        client: httpx.AsyncClient, seeded: Seeded, demo_operator: DemoOperator, clock: SimulatedClock) -> None:
    assert (await log_in(client, demo_operator, clock)).status_code == 303  # a data-quality operator
    response = await client.get(f"/bulletin/{MONTH}")
    assert response.status_code == 404
    assert ENROLLED not in response.text
    assert (await client.get(f"/bulletin/{MONTH}.json")).status_code == 404


async def test_an_editor_previews_an_unpublished_month_under_a_banner_never_cached(
        app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock, seeded: Seeded) -> None:
    await log_in_as_editor(app, client, database, clock)
    response = await client.get(f"/bulletin/{MONTH}")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    banner = re.search(r'<p class="preview-banner" role="alert" data-state="unpublished">(.*?)</p>',
                       response.text, re.DOTALL)
    assert banner is not None
    assert "未出版 · 仅编辑可见的预览" in banner.group(1)
    assert '<a href="/editor/bulletin">在编辑台起草</a>' in banner.group(1)  # no draft of June yet
    hospitals = section(response.text, "collection.hospitals")
    assert re.search(rf"<tr><td>{ENROLLED}</td><td[^>]*>5</td>", hospitals)  # today's figures
    assert f'href="/bulletin/{MONTH}.pdf"' in response.text


async def test_an_editors_preview_of_a_drafted_month_is_the_draft(
        app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock, seeded: Seeded) -> None:
    draft = await draft_issue(app, client, news="## 六月要闻\n\n仍是草稿的正文。\n")
    await log_in_as_editor(app, client, database, clock)
    response = await client.get(f"/bulletin/{MONTH}")
    assert response.status_code == 200
    assert "仍是草稿的正文。" in response.text
    assert (f'草稿：2022年第7期（总第125期），<a href="/editor/bulletin/issues/{draft["id"]}">在编辑台打开并出版</a>'
            in response.text)
    public = await as_visitor(app, f"/bulletin/{MONTH}")
    assert public.status_code == 404
    assert "仍是草稿的正文。" not in public.text


async def test_an_editor_opening_a_month_without_figures_is_told_so_on_a_page(
        app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock) -> None:
    # A platform with no hospital enrolled yet: an enrolled one would be listed, with zeros, in every month.
    await log_in_as_editor(app, client, database, clock)
    response = await client.get("/bulletin/2021-01")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    notice = re.search(r'<p class="notice" role="status" data-state="no-figures">(.*?)</p>', response.text, re.DOTALL)
    assert notice is not None
    assert "平台没有 2021-01 的任何数据" in notice.group(1)
    assert 'href="/bulletin/2021-02" rel="next"' in response.text
    download = await client.get("/bulletin/2021-01.json")  # a download is the bulletin: its problem says why not
    assert download.status_code == 404
    assert (download.json()["code"], download.json()["rule"]) == ("bulletin_no_figures", "bulletin.month.has_figures")


async def test_an_editors_download_of_an_unpublished_month_says_so_and_is_never_cached(
        app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock, seeded: Seeded) -> None:
    await log_in_as_editor(app, client, database, clock)
    response = await client.get(f"/bulletin/{MONTH}.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-disposition"] == f'attachment; filename="bulletin-{MONTH}-unpublished.json"'
    hospitals = {row["hospital"]: row for row in response.json()["collection"]["hospitals"]}
    assert hospitals[ENROLLED]["uploaded_records"] == 5


async def test_once_published_the_public_gets_the_issue_frozen_as_published(
        app: FastAPI, client: httpx.AsyncClient, database: Database, clock: SimulatedClock, seeded: Seeded) -> None:
    assert (await client.get(f"/bulletin/{MONTH}")).status_code == 404
    issue = await publish_issue(app, client, news="## 六月要闻\n\n出版的正文。\n")
    await upload_job(app, client, clock, seeded, [])  # one more record of June after publication
    async with database.transaction() as session:
        today = await reporting_service.build_bulletin(session, MONTH)
    assert today.collection is not None
    assert next(row.uploaded_records for row in today.collection.hospitals if row.hospital == ENROLLED) == 6
    page = await client.get(f"/bulletin/{MONTH}")
    assert page.status_code == 200
    assert "出版的正文。" in page.text
    row = re.search(rf"<tr><td>{ENROLLED}</td>(.*?)</tr>", section(page.text, "collection.hospitals"))
    assert row is not None
    assert re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))[0] == "5"  # as published, not today's 6
    markdown = await client.get(f"/bulletin/{MONTH}.md")
    md = next(edition for edition in issue["editions"] if edition["format"] == "md")
    assert hashlib.sha256(markdown.content).hexdigest() == md["sha256"]
    assert "cache-control" not in page.headers


async def test_a_published_issues_json_download_is_the_scenario_format(
        app: FastAPI, client: httpx.AsyncClient, seeded: Seeded) -> None:
    await publish_issue(app, client)
    response = await client.get(f"/bulletin/{MONTH}.json")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == f'attachment; filename="bulletin-{MONTH}.json"'
    document = json.loads(response.content)
    assert document["month"] == MONTH
    hospitals = {row["hospital"]: row for row in document["collection"]["hospitals"]}
    assert hospitals[ENROLLED]["uploaded_records"] == 5
    assert hospitals[NOT_ENROLLED]["outpatient_conformance_pct"] is None


async def test_a_published_issues_markdown_and_docx_downloads(
        app: FastAPI, client: httpx.AsyncClient, seeded: Seeded) -> None:
    await publish_issue(app, client)
    markdown = await client.get(f"/bulletin/{MONTH}.md")
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    assert ENROLLED in markdown.text
    docx = await client.get(f"/bulletin/{MONTH}.docx")
    assert docx.headers["content-disposition"] == f'attachment; filename="bulletin-{MONTH}.docx"'
    with zipfile.ZipFile(io.BytesIO(docx.content)) as archive:
        assert ENROLLED in archive.read("word/document.xml").decode("utf-8")


async def test_a_month_without_uploads_prints_zeros_and_slashes(
        app: FastAPI, client: httpx.AsyncClient, seeded: Seeded) -> None:
    await publish_issue(app, client, "2022-05", published_on="2022-06-28")
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
