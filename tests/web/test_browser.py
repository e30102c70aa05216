"""The pages in headless Chromium (Debian's `chromium`, driven by Playwright), with screenshots checked.

The app is served by uvicorn on 127.0.0.1 in the test's own event loop, so the browser sees exactly the
test's app and database. Every request the browser makes is recorded: none may leave 127.0.0.1 (the
platform may run on a machine without internet). Screenshots go to test-results/web/.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from tests.browser import RESULTS, Browser, has_colour, png_size, rgb, screenshot
from tests.factories.booking import World, add_resident, publish
from tests.factories.security import headers_for, staff
from tests.factories.sign_in import staff_account
from tests.hotline.desk_support import open_call
from tests.web.conftest import ENROLLED, MONTH, NOT_ENROLLED, Booker, Seeded
from tests.web.pages_support import publish_issue

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security.principals import Role
from cityhealth.web.demo import DemoOperator
from cityhealth.web.session import SESSION_COOKIE
from cityhealth.web.svg import PALETTE

pytestmark = pytest.mark.browser

@pytest.mark.usefixtures("no_office")
async def test_a_published_bulletin_page_shows_its_tables(
        browser: Browser, app: FastAPI, client: httpx.AsyncClient, seeded: Seeded) -> None:
    await publish_issue(app, client)
    page = browser.page
    response = await page.goto(f"{browser.base_url}/bulletin/{MONTH}")
    assert response is not None
    assert response.status == 200
    assert await page.locator("header.masthead h1").inner_text() == "南京卫生信息化简报"
    assert await page.locator("td.total-label").first.inner_text() == "合计"
    hospitals = page.locator('[id="collection.hospitals"] table').first
    row = hospitals.locator("tbody tr", has_text=ENROLLED)
    cells = await row.locator("td").all_inner_texts()
    assert (cells[0], cells[1], cells[5]) == (ENROLLED, "5", "75.00%")
    assert await page.locator("nav.site-bar").is_visible()
    path = await screenshot(browser, "bulletin")
    table_shot = RESULTS / "bulletin-hospitals-table.png"
    await hospitals.screenshot(path=str(table_shot))
    assert png_size(table_shot)[0] > 400
    assert path.stat().st_size > table_shot.stat().st_size
    browser.assert_only_local_requests()


async def test_an_editor_sees_an_unpublished_month_under_the_preview_banner(
        browser: Browser, app: FastAPI, database: Database, clock: SimulatedClock, seeded: Seeded) -> None:
    page = browser.page
    public = await page.goto(f"{browser.base_url}/bulletin/{MONTH}")
    assert public is not None
    assert public.status == 404
    assert f"{MONTH} 的简报尚未出版" in await page.locator("main").inner_text()
    assert await page.locator("header.masthead").count() == 0  # no bulletin, no figure
    await screenshot(browser, "bulletin-unpublished", min_bytes=5_000)
    editor = await staff_account(app, database, clock, Role.BULLETIN_EDITOR, "editor")
    await page.goto(f"{browser.base_url}/login?next=/bulletin/{MONTH}")
    await page.fill("#username", editor.username)
    await page.fill("#password", editor.password)
    await page.fill("#totp", pyotp.TOTP(editor.totp_secret).at(clock.now()))
    async with page.expect_navigation():
        await page.click("form.login button[type=submit]")
    assert page.url == f"{browser.base_url}/bulletin/{MONTH}"
    banner = page.locator("p.preview-banner")
    assert await banner.is_visible()
    assert "未出版 · 仅编辑可见的预览" in await banner.inner_text()
    assert await page.locator("header.masthead h1").inner_text() == "南京卫生信息化简报"
    path = await screenshot(browser, "bulletin-editor-preview")
    assert has_colour(path, (0xFF, 0xF1, 0xCC)), "the banner's background is not in the picture"
    browser.assert_only_local_requests()


async def test_dashboard_shows_the_ranking_chart_and_table(browser: Browser, seeded: Seeded) -> None:
    page = browser.page
    await page.goto(f"{browser.base_url}/dashboard/quality?month={MONTH}")
    chart = page.locator("#hospitals svg.chart")
    await chart.wait_for(state="visible")
    box = await chart.bounding_box()
    assert box is not None
    assert box["width"] > 300
    assert box["height"] > 60
    bars = chart.locator("rect:has(title)")  # legend swatches have no tooltip
    assert await bars.count() == 1  # the one measured rate: 南京鼓楼医院's outpatients
    assert await bars.first.locator("title").text_content() == f"{ENROLLED} 门急诊: 75%"
    ranks = await page.locator("#hospitals table.ranking-table tbody tr td.name").all_inner_texts()
    assert ranks == [ENROLLED, NOT_ENROLLED]
    await screenshot(browser, "dashboard")
    chart_shot = RESULTS / "dashboard-hospital-chart.png"
    await chart.screenshot(path=str(chart_shot))
    assert has_colour(chart_shot, rgb(PALETTE[0])), "the outpatient bar is not in the chart's picture"
    browser.assert_only_local_requests()


async def test_unit_page_shows_the_days_chart_and_the_rule_counts(browser: Browser, seeded: Seeded) -> None:
    page = browser.page
    await page.goto(f"{browser.base_url}/dashboard/quality/units/{seeded.enrolled.id}?month={MONTH}")
    chart = page.locator("#days svg.chart")
    await chart.wait_for(state="visible")
    columns = chart.locator("rect:has(title)")
    assert await columns.locator("title").all_text_contents() == ["15 入库: 4", "15 退回: 1"]
    assert await page.locator("#days table.days tbody tr").count() == 15
    cells = await page.locator("#rejections table.rejections tbody tr").first.locator("td").all_inner_texts()
    assert cells[:4] == ["outpatient_visit", "required", "visit_no", "1"]
    assert await page.locator("#rejections svg.chart").is_visible()
    await screenshot(browser, "unit")
    browser.assert_only_local_requests()


async def test_anonymous_drill_down_lands_on_login(browser: Browser, seeded: Seeded) -> None:
    page = browser.page
    target = f"/dashboard/quality/units/{seeded.enrolled.id}/rejections?month={MONTH}"
    await page.goto(browser.base_url + target)
    landed = urlsplit(page.url)
    assert landed.path == "/login"
    assert parse_qs(landed.query)["next"] == [target]
    assert await page.locator("form.login input[name=totp]").is_visible()
    await screenshot(browser, "login", min_bytes=5_000)
    browser.assert_only_local_requests()


async def test_demo_operator_logs_in_and_reaches_the_drill_down(
        browser: Browser, seeded: Seeded, demo_operator: DemoOperator, clock: SimulatedClock) -> None:
    page = browser.page
    target = f"/dashboard/quality/units/{seeded.enrolled.id}/rejections?month={MONTH}"
    await page.goto(browser.base_url + target)
    await page.fill("#username", demo_operator.username)
    await page.fill("#password", demo_operator.password)
    # The server's clock is the test's simulated clock: the code is the one an authenticator shows then.
    await page.fill("#totp", pyotp.TOTP(demo_operator.totp_secret).at(clock.now()))
    async with page.expect_navigation():
        await page.click("form.login button[type=submit]")
    assert page.url == browser.base_url + target
    assert "退回记录" in await page.locator("h1").inner_text()
    assert await page.locator("nav.site-bar form button").inner_text() == "退出"
    cookies = {cookie["name"]: cookie for cookie in await browser.context.cookies()}
    assert cookies[SESSION_COOKIE]["httpOnly"] is True
    assert cookies[SESSION_COOKIE]["sameSite"] == "Strict"
    await screenshot(browser, "drill-down", min_bytes=5_000)
    browser.assert_only_local_requests()


async def test_api_docs_start_and_render_under_the_content_security_policy(browser: Browser) -> None:
    page = browser.page
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    response = await page.goto(f"{browser.base_url}/docs")
    assert response is not None
    assert "'unsafe-inline'" not in response.headers["content-security-policy"]
    # Swagger UI's own container appears only once the nonce-carrying start-up script has run.
    await page.locator("#swagger-ui .swagger-ui").wait_for(state="attached")
    # And it renders the document (FastAPI writes OpenAPI 3.1, which Swagger UI 4 could not show).
    await page.locator(".opblock-summary-path", has_text="/healthz").first.wait_for()
    assert "Unable to render this definition" not in await page.content()
    assert [text for text in messages if "Content Security Policy" in text] == []
    browser.assert_only_local_requests()


async def test_resident_books_from_a_slots_page_and_finds_it_in_my_bookings(
        browser: Browser, client: httpx.AsyncClient, app: FastAPI, world: World, booker: Booker) -> None:
    session = await publish(client, app, world, capacity=4)
    slot_page = f"{browser.base_url}/booking/slots/{session['id']}"
    page = browser.page
    await page.goto(slot_page)  # the SMART feed's deep link, opened anonymously
    assert await page.locator("dd.answer").inner_text() == "可以预约，网上还剩 4 个号"
    shot = await screenshot(browser, "booking-slot", min_bytes=5_000)
    assert has_colour(shot, rgb("#1f5fa8")), "the sign-in-to-book button is not in the picture"
    async with page.expect_navigation():
        await page.click("p.book a.button")
    assert urlsplit(page.url).path == "/booking/login"
    await page.fill("#id_number", booker.id_number)
    await page.fill("#password", booker.password)
    async with page.expect_navigation():
        await page.click("form.login button[type=submit]")
    assert page.url == slot_page
    async with page.expect_navigation():
        await page.click("form.book button[type=submit]")
    assert urlsplit(page.url).path == "/booking/mine"
    async with page.expect_navigation():
        await page.click("button[value=confirm]")
    booked = parse_qs(urlsplit(page.url).query)["booked"][0]
    row = page.locator(f"#booking-{booked}")
    assert await row.locator("td.status").inner_text() == "已预约"
    assert "南京鼓楼医院" in await row.inner_text()
    assert await page.locator("p.notice.done").is_visible()
    await screenshot(browser, "booking-mine", min_bytes=5_000)
    browser.assert_only_local_requests()


async def test_an_agent_identifies_the_caller_books_and_cancels_at_the_desk(
        browser: Browser, client: httpx.AsyncClient, app: FastAPI, world: World, database: Database,
        settings: Settings, clock: SimulatedClock) -> None:
    _, number = await add_resident(database, settings, clock.now(), 41, phone="13944445555")
    session = await publish(client, app, world, capacity=4)
    call_id = await open_call(app, client, "b-1", caller="13944445555")
    token = (await headers_for(app, staff(Role.HOTLINE_AGENT, user_id=7)))["Authorization"].removeprefix("Bearer ")
    await browser.context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": browser.base_url}])
    page = browser.page
    await page.goto(f"{browser.base_url}/hotline/desk")
    assert await page.locator("#current-call").get_attribute("data-call-id") == str(call_id)
    assert "139****5555" in await page.locator("#calls").inner_text()
    await page.fill("#id_number", number)
    async with page.expect_navigation():
        await page.click("#identify")
    assert await page.locator("#caller-name").inner_text() == "居民41"
    assert number not in await page.content()
    await page.fill("#session_id", str(session["id"]))
    async with page.expect_navigation():
        await page.click("#book")
    assert await page.locator("#desk-booking-1 td.action").inner_text() == "预约"
    await screenshot(browser, "hotline-desk", min_bytes=5_000)
    async with page.expect_navigation():
        await page.click("#desk-booking-1 button.cancel")
    assert await page.locator("#desk-booking-2 td.action").inner_text() == "取消"
    assert "已取消预约" in await page.locator("p.notice.done").inner_text()
    assert await page.locator('a.work-order').get_attribute("href") == f"/hotline/work-orders/new?call_id={call_id}"
    browser.assert_only_local_requests()
