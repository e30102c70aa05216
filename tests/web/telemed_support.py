"""The reading pages' world: a requesting hospital (its system and one of its doctors), a reading centre with
two doctors, a second centre whose doctor the case is never routed to, and an ECG case with its tracing."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from tests.factories.security import headers_for, staff
from tests.telemed.ecg_files import dicom_ecg
from tests.telemed.files_support import upload
from tests.telemed.support import CASES, Side, centre, designate, requester, submit

from cityhealth.security.principals import Role
from cityhealth.web.session import SESSION_COOKIE

_users = itertools.count(30_000)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_KEY = re.compile(r'name="request_key" value="([^"]+)"')


@dataclass(frozen=True)
class ReadingWorld:
    hospital: Side  # the requester's system (submits the case)
    requester_doctor: dict[str, str]  # a doctor of the requesting hospital (the pages' requester)
    centre: Side
    second_doctor: dict[str, str]  # another doctor of the same centre
    other_centre: Side  # reads ECGs too; the case is not routed to it
    case_id: int
    tracing_id: int


async def reading_world(
    app: FastAPI, client: httpx.AsyncClient, *, priority: str = "urgent", resident_id: int | None = None
) -> ReadingWorld:
    hospital = await requester(app)
    reader = await centre(app)
    other = await centre(app, area_code="320111")
    await designate(app, hospital.member_id, reader.member_id)
    case_id = (
        await submit(
            client, hospital, priority=priority, clinical_question="胸闷三天，活动后加重", resident_id=resident_id
        )
    )["id"]
    sent = await upload(client, hospital.headers, f"{CASES}/{case_id}/ecg", dicom_ecg(), "application/dicom")
    assert sent.status_code == 200, sent.text
    requester_doctor = await headers_for(
        app, staff(Role.TELEMED_REQUESTER, organization_id=hospital.organization_id, user_id=next(_users))
    )
    second = await headers_for(
        app, staff(Role.READING_CENTRE_DOCTOR, organization_id=reader.organization_id, user_id=next(_users))
    )
    return ReadingWorld(hospital, requester_doctor, reader, second, other, case_id, sent.json()["id"])


def signed_in(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """The browser's session cookie: the same access token as the bearer headers (the last login's cookies go)."""
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, headers["Authorization"].removeprefix("Bearer "))


def form_values(html: str, action: str) -> dict[str, str]:
    """The CSRF token and request key of the form posting to `action`."""
    form = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.DOTALL)
    assert form is not None, f"no form to {action}"
    csrf, key = _CSRF.search(form.group(1)), _KEY.search(form.group(1))
    assert csrf is not None
    assert key is not None
    return {"csrf_token": csrf.group(1), "request_key": key.group(1)}
