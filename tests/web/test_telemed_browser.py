"""The reading pages in headless Chromium: a reading-centre doctor signs in, finds the case in the queue, sees its
ECG, accepts and claims it, drafts and signs the report; a second doctor's claim on the same case is refused
with the message; the requester's doctor then reads the report; another centre's doctor finds no such case."""

from __future__ import annotations

from typing import Any

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from tests.browser import PAGE_TIMEOUT_MS, Browser, screenshot
from tests.web.telemed_support import reading_world

from cityhealth.security import staff as staff_accounts
from cityhealth.security.principals import Role
from cityhealth.web.session import SESSION_COOKIE
from cityhealth.web.telemed_worklist import CASE_HELD, NOT_FOUND

pytestmark = pytest.mark.browser
PASSWORD = "a-reading-doctor-9347"


async def _doctor_with_a_login(app: FastAPI, organization_id: int) -> str:
    """A real staff account of the centre (password and an authenticator); its TOTP secret."""
    async with app.state.database.transaction() as session:
        created = await staff_accounts.create_staff_user(
            session, app.state.clock, app.state.settings, username="dr-reader", display_name="判读医生",
            password=PASSWORD, roles=frozenset({Role.READING_CENTRE_DOCTOR}), organization_id=organization_id,
        )
    assert created.totp_uri is not None
    return str(pyotp.parse_uri(created.totp_uri).secret)


async def _page_as(browser: Browser, headers: dict[str, str]) -> Any:
    """A page in a browser context of its own, signed in with the caller's session cookie."""
    context = await browser.context.browser.new_context(locale="zh-CN")
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    context.on("request", lambda request: browser.requested.append(request.url))
    await context.add_cookies([{"name": SESSION_COOKIE, "url": browser.base_url,
                                "value": headers["Authorization"].removeprefix("Bearer ")}])
    return await context.new_page()


async def test_a_doctor_reads_a_case_and_the_requester_gets_the_report(
        app: FastAPI, client: httpx.AsyncClient, browser: Browser) -> None:
    world = await reading_world(app, client)
    secret = await _doctor_with_a_login(app, world.centre.organization_id)
    page, base = browser.page, browser.base_url
    await page.goto(f"{base}/telemed/worklist")
    assert page.url.startswith(f"{base}/login")
    await page.fill("#username", "dr-reader")
    await page.fill("#password", PASSWORD)
    await page.fill("#totp", pyotp.TOTP(secret).at(app.state.clock.now()))
    async with page.expect_navigation():
        await page.click("form.login button[type=submit]")
    assert page.url == f"{base}/telemed/worklist"
    row = page.locator(f"#case-{world.case_id}")
    assert await row.locator("td.priority").inner_text() == "加急"
    assert await row.locator("td.due").inner_text() == "未到期"
    await row.locator("a").click()
    await page.wait_for_selector("h1:has-text('病例')")
    ecg = page.locator("figure.ecg img")
    await ecg.wait_for(state="visible")
    assert await ecg.evaluate("image => image.complete && image.naturalWidth") > 300
    await page.click("form.step-accept button")
    await page.wait_for_selector("p.notice:has-text('已接收入本中心队列')")

    second = await _page_as(browser, world.second_doctor)
    case_url = f"{base}/telemed/worklist/cases/{world.case_id}"
    await second.goto(case_url)
    assert await second.locator("form.step-claim button").is_visible()
    await page.click("form.step-claim button")
    await page.wait_for_selector("p.notice:has-text('已认领')")
    async with second.expect_response(lambda response: response.url.endswith("/claim")) as answered:
        await second.click("form.step-claim button")
    assert (await answered.value).status == 409
    assert await second.locator("p.error").inner_text() == CASE_HELD
    assert await second.locator("dd.holder").inner_text() == "其他医生"
    assert await second.locator("form.report").count() == 0

    await page.fill("textarea[name=findings]", "窦性心律，心率 72 次/分，ST段未见明显异常")
    await page.fill("textarea[name=conclusion]", "正常心电图")
    await page.click("button.save-draft")
    await page.wait_for_selector("p.notice:has-text('报告草稿已保存')")
    await page.click("button.sign")
    await page.wait_for_selector("p.notice:has-text('报告已签发'), p.error")
    assert await page.locator("p.error").count() == 0, await page.locator("p.error").inner_text()  # says why not
    assert await page.locator("dd.status").inner_text() == "已完成"
    assert await page.locator("p.conclusion").inner_text() == "正常心电图"
    await page.wait_for_function("() => { const image = document.querySelector('figure.ecg img');"
                                 " return image.complete && image.naturalWidth > 0; }")
    box = await page.locator("figure.ecg img").bounding_box()
    assert box is not None
    assert box["height"] > 200  # drawn on the page, not an empty frame
    await screenshot(browser, "telemed-case", min_bytes=15_000)

    requester = await _page_as(browser, world.requester_doctor)
    await requester.goto(f"{base}/telemed/requests")
    await requester.locator(f"#case-{world.case_id} a").click()
    await requester.wait_for_selector("p.conclusion")
    assert await requester.locator("p.conclusion").inner_text() == "正常心电图"
    assert await requester.locator("p.report-state").inner_text() != ""

    stranger = await _page_as(browser, world.other_centre.headers)
    response = await stranger.goto(case_url)
    assert response is not None
    assert response.status == 404
    assert await stranger.locator("p.notice").inner_text() == NOT_FOUND
    await stranger.goto(f"{base}/telemed/worklist")
    assert await stranger.locator(f"#case-{world.case_id}").count() == 0
    browser.assert_only_local_requests()
