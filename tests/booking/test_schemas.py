"""The booking API's wall times: read as Asia/Shanghai, written with their +08:00 offset."""

from __future__ import annotations

from datetime import time

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from cityhealth.booking.schemas import PolicyRead, PolicyUpdate, TemplateCreate
from tests.factories.booking import World, scheduler
from tests.factories.security import headers_for


async def test_a_policy_is_read_with_offset_times(client: httpx.AsyncClient, app: FastAPI, world: World) -> None:
    response = await client.get(f"/api/booking/policies/{world.hospital_id}",
                                headers=await headers_for(app, scheduler(world)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["release_time"], body["next_day_cutoff"], body["cancel_cutoff_time"]) == (
        "00:00:00+08:00", "12:00:00+08:00", "16:00:00+08:00")


async def test_a_policy_update_accepts_times_without_an_offset(client: httpx.AsyncClient, app: FastAPI,
                                                               world: World) -> None:
    response = await client.put(f"/api/booking/policies/{world.hospital_id}",
                                headers=await headers_for(app, scheduler(world)),
                                json={"release_time": "07:30", "next_day_cutoff": "11:00:00+08:00"})
    assert response.status_code == 200, response.text
    assert (response.json()["release_time"], response.json()["next_day_cutoff"]) == (
        "07:30:00+08:00", "11:00:00+08:00")


def test_a_wall_time_with_the_business_offset_is_kept_as_the_wall_time() -> None:
    assert PolicyUpdate.model_validate({"release_time": "08:15:00+08:00"}).release_time == time(8, 15)


def test_a_wall_time_with_another_offset_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"no offset, or \+08:00"):
        PolicyUpdate.model_validate({"release_time": "08:15:00Z"})


def test_an_offset_start_and_a_plain_end_compare_as_wall_times() -> None:
    template = TemplateCreate.model_validate({"department_id": 1, "weekday": 1, "start_time": "08:00+08:00",
                                              "end_time": "09:00", "capacity": 10})
    assert (template.start_time, template.end_time) == (time(8, 0), time(9, 0))


def test_python_mode_dumps_keep_naive_wall_times_for_the_services() -> None:
    policy = PolicyRead(organization_id=1)
    assert policy.model_dump()["release_time"] == time(0, 0)
    assert policy.model_dump(mode="json")["release_time"] == "00:00:00+08:00"


def test_the_openapi_document_declares_the_times_it_serialises() -> None:
    schema = PolicyRead.model_json_schema(mode="serialization")
    assert schema["properties"]["release_time"]["format"] == "time"
