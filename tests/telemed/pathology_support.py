"""Helpers of the pathology tests: a small pathology network (a requesting hospital, a reading centre, their
people), case and meeting bodies, and the problem fields a refusal names."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from cityhealth.security.principals import Scope
from tests.factories.security import headers_for, machine
from tests.telemed.support import Side, admin, centre, requester

PATHOLOGY = "/api/telemed/pathology"
NOW = datetime.fromisoformat("2022-06-15T09:30:00+08:00")  # the test clock's start
_keys = itertools.count(1)


def key(prefix: str = "k") -> str:
    return f"{prefix}-{next(_keys)}"


@dataclass
class Network:
    hospital: Side  # requester (its HIS's headers)
    centre: Side  # reading centre (one of its doctors' headers)
    admin: dict[str, str]


async def network(app: FastAPI, *, area_code: str = "320102") -> Network:
    hospital = await requester(app, network="pathology", area_code=area_code)
    reading = await centre(app, network="pathology")
    return Network(hospital, reading, await admin(app))


def problem(response: httpx.Response) -> tuple[int, str, Any, str]:
    body = response.json()
    return response.status_code, body["field"], body["value"], body["rule"]


async def person(
    client: httpx.AsyncClient, headers: dict[str, str], organization_id: int, kind: str, **overrides: Any
) -> dict[str, Any]:
    body = {
        "key": key("staff"),
        "kind": kind,
        "organization_id": organization_id,
        "name": "王医生" if kind == "doctor" else "李教授",
        "title": "主任医师" if kind == "expert" else None,
        "specialty": "消化病理" if kind == "expert" else None,
    } | overrides
    response = await client.post(f"{PATHOLOGY}/people", json=body, headers=headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def case_body(**overrides: Any) -> dict[str, Any]:
    return {
        "external_id": key("P2022"),
        "priority": "routine",
        "specimen_site": "胃窦",
        "specimen_kind": "biopsy",
        "clinical_summary": "胃镜见胃窦溃疡，请会诊",
        "slide_count": 3,
        "block_count": 1,
        "slide_refs": ["wsi://hospital/P-1/1", "wsi://hospital/P-1/2"],
    } | overrides


async def submit(client: httpx.AsyncClient, hospital: Side, **overrides: Any) -> dict[str, Any]:
    response = await client.post(f"{PATHOLOGY}/cases", json=case_body(**overrides), headers=hospital.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def meeting_body(participant_ids: list[int], **overrides: Any) -> dict[str, Any]:
    start = NOW + timedelta(days=1)
    return {
        "request_key": key("meeting"),
        "title": "疑难病例讨论",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
        "participant_ids": participant_ids,
    } | overrides


def lecture_body(speaker_id: int, **overrides: Any) -> dict[str, Any]:
    start = NOW + timedelta(days=2)
    return {
        "request_key": key("lecture"),
        "title": "淋巴瘤病理诊断进展",
        "speaker_id": speaker_id,
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat(),
    } | overrides


async def hospital_headers(app: FastAPI, net: Network) -> dict[str, str]:
    """The hospital's system's headers anew (its first token expires as the clock moves on)."""
    org = net.hospital.organization_id
    return await headers_for(app, machine(Scope.TELEMED_REQUEST, organization_id=org, client_id=f"his-{org}"))
