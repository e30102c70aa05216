"""A client app's home channel and the further channels it books through."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from tests.factories.security import admin_headers


async def test_an_app_keeps_its_further_channels_without_its_home_channel(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    headers = await admin_headers(app)
    created = await client.post("/api/registry/client-apps", headers=headers, json={
        "code": "jk-app", "name": "健康南京客户端", "channel": "online_12320",
        "other_channels": ["third_party", "online_12320"]})
    assert created.status_code == 201, created.text
    assert created.json()["other_channels"] == ["third_party"]
    updated = await client.patch(f"/api/registry/client-apps/{created.json()['id']}", headers=headers,
                                 json={"other_channels": []})
    assert updated.json()["other_channels"] == []


async def test_an_unknown_further_channel_is_refused_naming_it(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.post("/api/registry/client-apps", headers=await admin_headers(app), json={
        "code": "x-app", "name": "某应用", "channel": "third_party", "other_channels": ["carrier_pigeon"]})
    assert response.status_code == 422
    assert response.json()["field"] == "other_channels.0"
    listed = await client.get("/api/registry/client-apps", headers=await admin_headers(app))
    assert listed.json()["total"] == 0
