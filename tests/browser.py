"""Headless Chromium for the page tests (Debian's `chromium`, driven by Playwright): the `browser` fixture on the
test's live server, every request it makes recorded (none may leave 127.0.0.1), and checked screenshots in
test-results/web/."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RESULTS = Path(__file__).resolve().parents[1] / "test-results" / "web"
VIEWPORT = {"width": 1280, "height": 900}
PHONE_VIEWPORT = {"width": 390, "height": 844}  # a phone's screen in CSS pixels (the resident app's tests)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Playwright's waits: twice its 30 s default, for CI, where the SQLite stage's two test processes, the slow stage's
# two and Chromium share two cores. A page that never comes still fails; one that comes late on a loaded host does not.
PAGE_TIMEOUT_MS = 60_000


@dataclass
class Browser:
    base_url: str
    page: Any  # playwright.async_api.Page (the package is imported only when the browser is there)
    context: Any
    requested: list[str] = field(default_factory=list)
    viewport: dict[str, int] = field(default_factory=lambda: dict(VIEWPORT))

    def assert_only_local_requests(self) -> None:
        assert self.requested, "the browser made no request at all"
        hosts = {urlsplit(url).hostname for url in self.requested}
        assert hosts == {"127.0.0.1"}, f"requests left the machine: {sorted(map(str, hosts))}"


@pytest.fixture
async def browser(live_server: str) -> AsyncIterator[Browser]:
    async for session in _browser(live_server, VIEWPORT):
        yield session


@pytest.fixture
async def phone_browser(live_server: str) -> AsyncIterator[Browser]:
    """The same at a phone's viewport, touch and a phone's pixel ratio of 1 (screenshots stay 390 wide)."""
    async for session in _browser(live_server, PHONE_VIEWPORT, has_touch=True, is_mobile=True):
        yield session


async def _browser(live_server: str, viewport: dict[str, int], **options: Any) -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian package `chromium`; `make test` installs it as root)")
    async_api = pytest.importorskip("playwright.async_api", reason="the playwright package (dev extra) is missing")
    async with async_api.async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = await launched.new_context(viewport=viewport, locale="zh-CN", **options)
            context.set_default_timeout(PAGE_TIMEOUT_MS)
            session = Browser(live_server, await context.new_page(), context, viewport=dict(viewport))
            context.on("request", lambda request: session.requested.append(request.url))
            yield session
        finally:
            await launched.close()


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG header (the IHDR chunk follows the signature)."""
    head = path.read_bytes()[:24]
    assert (head[:8], head[12:16]) == (PNG_SIGNATURE, b"IHDR"), f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


async def screenshot(browser: Browser, name: str, *, min_bytes: int = 15_000) -> Path:
    """A full-page screenshot, checked to be a real picture of a real page."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.png"
    await browser.page.screenshot(path=str(path), full_page=True)
    width, height = png_size(path)
    assert width == browser.viewport["width"]
    assert height >= browser.viewport["height"] // 2
    assert path.stat().st_size >= min_bytes, f"{path} is {path.stat().st_size} bytes: an empty page?"
    return path


def has_colour(path: Path, rgb: tuple[int, int, int]) -> bool:
    from PIL import Image  # a dependency: the DOCX bulletin's charts are drawn with it

    with Image.open(path) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    return any(colour == rgb for _, colour in colours)


def rgb(hex_colour: str) -> tuple[int, int, int]:
    value = int(hex_colour.removeprefix("#"), 16)
    return value >> 16, (value >> 8) & 0xFF, value & 0xFF
