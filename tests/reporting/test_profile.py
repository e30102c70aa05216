"""The publication profile: kept by the bulletin editor over the API (audited), printed in every issue's footer."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from cityhealth.reporting import footer
from cityhealth.reporting.model import BulletinData
from cityhealth.reporting.schemas import PublicationProfileIn
from cityhealth.reporting.service import Edition, render
from cityhealth.security.models import AuditEvent
from cityhealth.security.principals import Role
from tests.factories.security import headers_for, staff

PROFILE_FILE = Path(__file__).resolve().parents[2] / "src/cityhealth/simulation/scenarios/nanjing-2022-06-profile.json"
URL = "/api/bulletin/profiles/320100"


def _profile() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(PROFILE_FILE.read_text(encoding="utf-8"))
    return document


async def _editor(app: FastAPI) -> dict[str, str]:
    return await headers_for(app, staff(Role.BULLETIN_EDITOR))


async def _audited(app: FastAPI) -> list[tuple[str, str | None]]:
    async with app.state.database.transaction() as session:
        rows = await session.execute(select(AuditEvent.action, AuditEvent.detail).where(
            AuditEvent.resource_type == "bulletin_publication_profile").order_by(AuditEvent.id))
    return [(action, detail) for action, detail in rows]


async def test_the_editor_creates_and_reads_the_profile_and_both_are_audited(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    headers = await _editor(app)
    created = await client.put(URL, headers=headers, json=_profile())
    assert created.status_code == 200, created.text
    assert created.json() == {**_profile(), "region_code": "320100", "version": 1}
    read = await client.get(URL, headers=headers)
    assert read.json() == created.json()
    assert await _audited(app) == [("create", "version 1"), ("read", None)]


async def test_the_same_profile_again_changes_nothing(app: FastAPI, client: httpx.AsyncClient) -> None:
    headers = await _editor(app)
    await client.put(URL, headers=headers, json=_profile())
    again = await client.put(URL, headers=headers, json=_profile())
    assert again.json()["version"] == 1
    assert await _audited(app) == [("create", "version 1")]


async def test_a_change_raises_the_version(app: FastAPI, client: httpx.AsyncClient) -> None:
    headers = await _editor(app)
    await client.put(URL, headers=headers, json=_profile())
    changed = await client.put(URL, headers={**headers, "If-Match": '"1"'}, json={**_profile(), "print_run": 450})
    assert (changed.json()["version"], changed.json()["print_run"]) == (2, 450)


async def test_a_change_over_another_editor_s_is_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    headers = await _editor(app)
    await client.put(URL, headers=headers, json=_profile())
    await client.put(URL, headers=headers, json={**_profile(), "print_run": 450})
    stale = await client.put(URL, headers={**headers, "If-Match": '"1"'}, json={**_profile(), "print_run": 500})
    assert stale.status_code == 409
    assert stale.json()["rule"] == "bulletin.profile.version"


async def test_someone_without_the_editor_scope_can_neither_read_nor_change_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    headers = await headers_for(app, staff(Role.HOTLINE_AGENT))
    assert (await client.put(URL, headers=headers, json=_profile())).status_code == 403
    assert (await client.get(URL, headers=headers)).status_code == 403


async def test_a_region_without_a_profile_is_not_found(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.get(URL, headers=await _editor(app))
    assert response.status_code == 404
    assert response.json()["rule"] == "bulletin.profile.exists"


@pytest.mark.parametrize(("field", "value"), [
    ("postcode", "21000"),
    ("email", "not an address"),
    ("print_run", 0),
    ("qr_codes", [{"caption": "APP", "url": "ftp://example.org/app"}, {"caption": "微信", "url": "https://x.org"}]),
    ("qr_codes", [{"caption": "APP", "url": "https://example.org/app"}]),
])
async def test_a_malformed_profile_is_refused_and_nothing_is_stored(
    app: FastAPI, client: httpx.AsyncClient, field: str, value: object
) -> None:
    headers = await _editor(app)
    response = await client.put(URL, headers=headers, json={**_profile(), field: value})
    assert response.status_code == 422
    assert (await client.get(URL, headers=headers)).status_code == 404


def test_the_footer_prints_every_field_of_the_profile(nanjing: BulletinData) -> None:
    block = footer.footer_block(PublicationProfileIn.model_validate(_profile()), footer.News(), "南京市卫生信息中心")
    assert block.lines == (
        "编印：南京市卫生信息中心　　地址：南京市紫竹林3号　　邮编：210003",
        "电话：025-83620000　　传真：025-83620001",
        "电子邮箱：bulletin@example.org　　网址：https://health.example.org/bulletin/",
        "责任编辑：周明远　　本期共印 300 份",
    )
    assert [code.caption for code in block.codes] == ["健康南京 APP", "微信公众号"]


def test_a_qr_code_of_an_unreachable_url_is_drawn_without_opening_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a QR code's URL was opened")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    code = footer.qr_code("内网", "https://unreachable.invalid/bulletin")
    assert code.png.startswith(b"\x89PNG")
    assert "<svg" in code.svg
    from PIL import Image

    image = Image.open(io.BytesIO(code.png))
    assert image.info["dpi"] == pytest.approx((300, 300), abs=1)


def test_the_docx_footer_block_carries_the_profile_and_its_two_codes(nanjing: BulletinData) -> None:
    content = render(nanjing, Edition.DOCX, profile=PublicationProfileIn.model_validate(_profile()))
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        document = archive.read("word/document.xml").decode("utf-8")
        images = [name for name in archive.namelist() if name.startswith("word/media/")]
    assert "责任编辑：周明远　　本期共印 300 份" in document
    assert "健康南京 APP" in document
    assert len(images) == 4 + 2  # the four charts and the two codes


def test_the_html_footer_draws_the_codes_as_svg_with_escaped_captions(nanjing: BulletinData) -> None:
    profile = {**_profile(), "qr_codes": [{"caption": "<b>APP</b>", "url": "https://health.example.org/app"},
                                          {"caption": "微信公众号", "url": "https://health.example.org/wechat"}]}
    page = render(nanjing, Edition.HTML, profile=PublicationProfileIn.model_validate(profile)).decode("utf-8")
    footer_html = page[page.index("<footer>"):]
    assert footer_html.count('<svg xmlns="http://www.w3.org/2000/svg"') == 2
    assert "<figcaption>&lt;b&gt;APP&lt;/b&gt;</figcaption>" in footer_html
    assert "<b>APP</b>" not in footer_html
    assert "<p>责任编辑：周明远　　本期共印 300 份</p>" in footer_html


def test_the_markdown_footer_prints_where_each_code_leads(nanjing: BulletinData) -> None:
    text = render(nanjing, Edition.MD, profile=PublicationProfileIn.model_validate(_profile())).decode("utf-8")
    assert text.endswith("健康南京 APP：https://health.example.org/app\n\n微信公众号：https://health.example.org/wechat\n")
