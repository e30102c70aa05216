"""The resident app in headless Chromium at a phone's viewport (390×844), with screenshots checked."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI
from tests.browser import Browser, has_colour, rgb, screenshot
from tests.factories.booking import World
from tests.records.family_support import id_number_of, resident
from tests.web.app_support import last_code
from tests.web.conftest import RESIDENT_PASSWORD
from tests.web.test_app_pages import CHILDREN, _contract, _followup, mapped  # noqa: F401 - the map's fixture

from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database

PHONE = "13900006666"
HEADER_BLUE = rgb("#1f5fa8")


async def _fits_the_phone(browser: Browser) -> None:
    """Nothing wider than the screen: the page never scrolls sideways on a phone."""
    width = await browser.page.evaluate("document.documentElement.scrollWidth")
    assert width <= browser.viewport["width"]


async def test_a_resident_signs_in_with_an_sms_code_and_opens_each_page_on_a_phone(
        phone_browser: Browser, client: httpx.AsyncClient, app: FastAPI, database: Database, settings: Settings,
        clock: SimulatedClock, mapped: World) -> None:  # noqa: F811 - the fixture imported above
    resident_id = await resident(app, seq=601)
    registered = await client.post("/api/auth/residents/register", json={
        "id_number": id_number_of(601), "name": "居民601", "phone": PHONE, "password": RESIDENT_PASSWORD})
    assert registered.status_code == 201, registered.text
    _, headers = await _contract(app, client, resident_id)
    await _followup(client, headers, resident_id, sbp=128, dbp=80)

    page = phone_browser.page
    await page.goto(f"{phone_browser.base_url}/app/")
    assert urlsplit(page.url).path == "/app/login"
    shot = await screenshot(phone_browser, "app-login", min_bytes=5_000)
    assert has_colour(shot, HEADER_BLUE), "the app's header bar is not in the picture"
    await page.fill("#phone", PHONE)
    async with page.expect_navigation():
        await page.click("button.primary")
    assert "139****6666" in await page.locator("p.notice").inner_text()
    await page.fill("#code", await last_code(database, settings, clock))
    async with page.expect_navigation():
        await page.click("button.primary")
    assert urlsplit(page.url).path == "/app/"
    assert await page.locator("ul.tiles li").count() == 9
    await _fits_the_phone(phone_browser)
    await screenshot(phone_browser, "app-home", min_bytes=5_000)

    async with page.expect_navigation():
        await page.click("a[href='/app/doctor']")
    assert "全科团队" in await page.locator("main").inner_text()
    await _fits_the_phone(phone_browser)
    await screenshot(phone_browser, "app-doctor", min_bytes=5_000)

    await page.goto(f"{phone_browser.base_url}/app/readings")
    assert "血压 128/80 mmHg" in await page.locator("main").inner_text()
    await _fits_the_phone(phone_browser)
    await screenshot(phone_browser, "app-readings", min_bytes=5_000)

    await page.goto(f"{phone_browser.base_url}/app/map?latitude={CHILDREN[0]}&longitude={CHILDREN[1]}")
    assert await page.locator("ul.app-list li h3").all_inner_texts() == ["南京市儿童医院", "南京鼓楼医院"]
    assert await page.locator("#locate").is_visible()  # the browser offers its position
    await _fits_the_phone(phone_browser)
    await screenshot(phone_browser, "app-map", min_bytes=5_000)

    await page.goto(f"{phone_browser.base_url}/app/record")
    assert "居*" in await page.locator("main .card h3").inner_text()  # the first page's name, masked
    await _fits_the_phone(phone_browser)
    await screenshot(phone_browser, "app-record", min_bytes=5_000)

    await page.goto(f"{phone_browser.base_url}/app/access-log")
    await _fits_the_phone(phone_browser)
    await screenshot(phone_browser, "app-access-log", min_bytes=5_000)

    await page.goto(f"{phone_browser.base_url}/app/family")
    await _fits_the_phone(phone_browser)
    await screenshot(phone_browser, "app-family", min_bytes=5_000)

    async with page.expect_navigation():
        await page.click(".app-out button")
    assert urlsplit(page.url).path == "/app/login"
    phone_browser.assert_only_local_requests()
