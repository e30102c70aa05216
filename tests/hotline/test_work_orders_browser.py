"""The work-order pages in headless Chromium: an agent creates an order linked to a call and dispatches it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from cityhealth.web.session import SESSION_COOKIE
from tests.hotline.calls_support import add_line, call_events, telephony
from tests.hotline.work_orders_support import agent, organizations
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, Browser, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
async def chromium(live_server: str) -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian package `chromium`)")
    async_api = pytest.importorskip("playwright.async_api", reason="the playwright package (dev extra) is missing")
    async with async_api.async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = await launched.new_context(viewport=VIEWPORT, locale="zh-CN")
            session = Browser(live_server, await context.new_page(), context)
            context.on("request", lambda request: session.requested.append(request.url))
            yield session
        finally:
            await launched.close()


async def test_an_agent_creates_and_dispatches_an_order_in_the_browser(
        app: FastAPI, client: httpx.AsyncClient, chromium: Browser) -> None:
    ids = await organizations(app, "NJH-A")
    await add_line(app)
    await client.post("/api/hotline/call-events", headers=await telephony(app),
                      json={"events": call_events("cti-browser-1", app.state.clock.now(), agent="staff:11")})
    headers = await agent(app)
    call_id = (await client.get("/api/hotline/calls", headers=headers)).json()[0]["id"]
    await chromium.context.add_cookies([{"name": SESSION_COOKIE, "url": chromium.base_url,
                                         "value": headers["Authorization"].removeprefix("Bearer ")}])
    page = chromium.page
    await page.goto(f"{chromium.base_url}/hotline/work-orders/new?call_id={call_id}")
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
    await screenshot(chromium, "work-order", min_bytes=5_000)
    chromium.assert_only_local_requests()
