"""The work-order pages in headless Chromium: an agent creates an order linked to a call and dispatches it."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from cityhealth.web.session import SESSION_COOKIE
from tests.browser import Browser, screenshot
from tests.hotline.calls_support import add_line, call_events, telephony
from tests.hotline.work_orders_support import agent, organizations

pytestmark = pytest.mark.browser


async def test_an_agent_creates_and_dispatches_an_order_in_the_browser(
        app: FastAPI, client: httpx.AsyncClient, browser: Browser) -> None:
    ids = await organizations(app, "NJH-A")
    await add_line(app)
    await client.post("/api/hotline/call-events", headers=await telephony(app),
                      json={"events": call_events("cti-browser-1", app.state.clock.now(), agent="staff:11")})
    headers = await agent(app)
    call_id = (await client.get("/api/hotline/calls", headers=headers)).json()[0]["id"]
    await browser.context.add_cookies([{"name": SESSION_COOKIE, "url": browser.base_url,
                                         "value": headers["Authorization"].removeprefix("Bearer ")}])
    page = browser.page
    await page.goto(f"{browser.base_url}/hotline/work-orders/new?call_id={call_id}")
    assert f"来电 {call_id}" in await page.locator("p.linked-call").inner_text()
    await page.select_option("select[name=category]", "complaint")
    await page.fill("input[name=title]", "候诊时间过长")
    await page.fill("textarea[name=content]", "来电反映候诊时间过长。")
    await page.select_option("select[name=organization_id]", str(ids["NJH-A"]))
    await page.click("form.work-order-new button[type=submit]")
    await page.wait_for_selector("h1:has-text('候诊时间过长')")
    assert await page.locator("dd.state").inner_text() == "已受理"
    await page.click("form.step-dispatch button")
    await page.wait_for_selector("dd.state:has-text('已派单')")
    await screenshot(browser, "work-order", min_bytes=5_000)
    browser.assert_only_local_requests()
