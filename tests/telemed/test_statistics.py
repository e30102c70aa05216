"""The bulletin's telemed figures (docs/decisions/telemed-statistics.md) from data written through the room's
services: members on the month's last day, cases, lab messages over MLLP, imaging studies and reports,
consultations and opening balances, each in its Asia/Shanghai month, retries counted once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI

from cityhealth.clock import BUSINESS_TZ, SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.errors import ValidationFailed
from cityhealth.registry import service as registry_service
from cityhealth.registry.protection import cipher_for
from cityhealth.registry.schemas import AreaCreate
from cityhealth.security.principals import Role, Scope
from cityhealth.telemed import imaging, service, statistics
from cityhealth.telemed.dicomweb import DicomWebPacs, ImageCount, StudyMetadata
from cityhealth.telemed.schemas import MemberLeave
from cityhealth.telemed.statistics_schemas import TelemedMonth, TopUploader
from tests.factories.security import headers_for, machine, staff
from tests.telemed.lab_support import ack_code, oml, oru, running_listener, send, wire
from tests.telemed.support import API, Side, centre, join, organization, requester, submit
from tests.telemed.support import admin as admin_headers

JUNE = "2022-06"
CITY = "320100"
# 2022-06-30 23:59:59 in Shanghai is still June; a second later it is July (UTC 16:00).
LAST_JUNE_SECOND = datetime(2022, 6, 30, 23, 59, 59, tzinfo=BUSINESS_TZ)
FIRST_JULY_SECOND = datetime(2022, 7, 1, 0, 0, 0, tzinfo=BUSINESS_TZ)


async def _month(database: Database, month: str = JUNE) -> TelemedMonth:
    async with database.transaction() as session:
        return await statistics.month_statistics(session, month, CITY)


async def _leave(app: FastAPI, member_id: int, day: date) -> None:
    async with app.state.database.transaction() as session:
        await service.leave(session, app.state.clock, None, member_id, MemberLeave(left_on=day), operator="test")


async def test_members_are_counted_on_the_months_last_day_by_kind_area_and_city(app: FastAPI) -> None:
    network = "teleconsultation"
    tertiary = await organization(app, "320102")
    await join(app, tertiary, "both", network=network, kind="tertiary")
    await join(app, await organization(app, "320106"), "requester", network=network, kind="secondary_or_above")
    await join(app, await organization(app, "320106"), "requester", network=network, kind="community_health_centre")
    await join(app, await organization(app), "requester", network=network, kind="metro_city", city_code="340500",
               area_code="340500")
    await join(app, await organization(app), "requester", network=network, kind="aid", city_code="340500",
               area_code="340500")
    await join(app, await organization(app, "320111"), "requester", network=network, kind="other",
               area_code="3201JB", joined_on=date(2022, 6, 30))  # joined on the last day: counted
    await join(app, await organization(app, "320111"), "requester", network=network, kind="tertiary",
               joined_on=date(2022, 7, 1))  # joins the next month: not counted, its area not covered
    left_in_june = await join(app, await organization(app, "320111"), "requester", network=network, kind="other")
    await _leave(app, left_in_june, date(2022, 6, 30))  # no longer a member on June 30
    stays = await join(app, await organization(app, "320106"), "requester", network=network, kind="other")
    await _leave(app, stays, date(2022, 7, 1))  # still one on June 30

    june = (await _month(app.state.database)).consultation
    assert june.members is None  # the format carries the teleconsultation network's members by kind only
    assert june.members_counted == 7
    assert june.members_by_kind == {
        "nanjing_secondary_plus": 2, "community": 1, "metro_city": 1, "aid": 1, "other": 2,
    }
    assert list(june.members_by_kind) == ["nanjing_secondary_plus", "community", "metro_city", "aid", "other"]
    assert (june.areas_covered, june.areas_not_covered) == (3, ["320111"])  # 320102, 320106 and 3201JB
    july = (await _month(app.state.database, "2022-07")).consultation
    assert (july.members_counted, july.areas_not_covered) == (7, [])  # one joined, one left on July 1


async def test_the_ecg_networks_cities_put_the_bulletins_city_first_then_the_others_as_they_joined(
    app: FastAPI,
) -> None:
    await organization(app)  # the areas
    async with app.state.database.transaction() as session:
        await registry_service.insert_area(
            session, app.state.clock, AreaCreate(code="321100", name="镇江市", level="city", parent_code="320000")
        )
    # Ma'anshan's member joined before Zhenjiang's: its code (340500) sorts after Zhenjiang's (321100).
    await join(app, await organization(app), "requester", kind="metro_city", city_code="340500",
               area_code="340500", joined_on=date(2021, 3, 1))
    await join(app, await organization(app), "requester", kind="metro_city", city_code="321100",
               area_code="321100", joined_on=date(2021, 4, 1))
    await join(app, await organization(app, "320102"), "reading_centre", kind="tertiary", joined_on=date(2021, 5, 1))
    await join(app, await organization(app, "320106"), "requester", kind="community_health_centre")
    ecg = (await _month(app.state.database)).ecg
    assert ecg.cities == ["南京市", "马鞍山市", "镇江市"]
    assert ecg.members == 4
    assert ecg.members_by_kind == {"nanjing_tertiary": 1, "metro_city": 2}
    assert (ecg.areas_covered, ecg.areas_not_covered) == (2, ["320111", "3201JB"])


async def test_ecg_cases_count_in_their_shanghai_month_once_and_the_top_three_break_ties_by_registration(
    app: FastAPI, client: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    clock.set(LAST_JUNE_SECOND - timedelta(hours=1))
    await centre(app)
    sides = [await requester(app) for _ in range(4)]  # registered in this order: lower ids first
    for side, cases in zip(sides, (1, 2, 2, 1), strict=True):
        for n in range(cases):
            await submit(client, side, external_id=f"E-{side.organization_id}-{n}")
    await submit(client, sides[0], external_id=f"E-{sides[0].organization_id}-0")  # a retry: the same case
    clock.set(LAST_JUNE_SECOND)
    await _refresh(app, sides[3])
    await submit(client, sides[3], external_id="E-last-second")
    clock.set(FIRST_JULY_SECOND)
    await _refresh(app, sides[0])
    await submit(client, sides[0], external_id="E-july")
    await submit(client, sides[0], external_id="E-july-2")

    june = (await _month(app.state.database)).ecg
    assert june.cases_month == 7
    names = await _names(app, [side.organization_id for side in sides])
    # sides[1] and sides[2] tie at 2, as do sides[0] and sides[3] at 1 (+1 at the last second: 2).
    assert june.top_uploaders == [
        TopUploader(hospital=names[1], count=2),
        TopUploader(hospital=names[2], count=2),
        TopUploader(hospital=names[3], count=2),
    ]
    july = (await _month(app.state.database, "2022-07")).ecg
    assert (july.cases_month, july.top_uploaders) == (2, [TopUploader(hospital=names[0], count=2)])


async def _names(app: FastAPI, ids: list[int]) -> list[str]:
    async with app.state.database.transaction() as session:
        found = await registry_service.organization_names(session, ids)
    return [found[i] for i in ids]


def _consultation(key: str, participant: int, network: str, **overrides: Any) -> dict[str, Any]:
    return {
        "request_key": key,
        "network_code": network,
        "starts_at": "2022-06-16T14:00:00+08:00",
        "ends_at": "2022-06-16T15:00:00+08:00",
        "participants": [{"member_id": participant, "doctor_name": "王医生"}],
    } | overrides


async def test_cumulative_consultations_add_every_month_so_far_and_the_opening_balance(
    app: FastAPI, client: httpx.AsyncClient, clock: SimulatedClock
) -> None:
    network = "teleconsultation"
    side = await requester(app, network=network)
    expert = await centre(app, network=network)
    ecg_side, ecg_expert = await requester(app), await centre(app)
    admin = await admin_headers(app)
    balance = {"as_of": "2022-05-31", "consultations": 100, "note": "从旧平台结转"}
    put = await client.put(f"{API}/networks/{network}/opening-balances", json=balance, headers=admin)
    again = await client.put(f"{API}/networks/{network}/opening-balances", json=balance, headers=admin)
    assert put.status_code == 200, put.text
    assert again.json() == put.json()
    changed = await client.put(f"{API}/networks/{network}/opening-balances", json=balance | {"consultations": 101},
                               headers=admin)
    assert (changed.status_code, changed.json()["field"], changed.json()["rule"]) == (
        409, "consultations", "telemed.opening_balance.once")
    elsewhere = await client.put(f"{API}/networks/ecg/opening-balances", json=balance, headers=admin)
    assert (elsewhere.status_code, elsewhere.json()["field"]) == (422, "network_code")

    clock.set(LAST_JUNE_SECOND - timedelta(minutes=5))
    await _refresh(app, side)
    await _refresh(app, ecg_side)
    for key in ("c-june-1", "c-june-2", "c-june-2"):  # the last one is a retry
        response = await client.post(f"{API}/consultations", json=_consultation(key, expert.member_id, network),
                                     headers=side.headers)
        assert response.status_code == 200, response.text
    ecg = await client.post(f"{API}/consultations", json=_consultation("e-1", ecg_expert.member_id, "ecg"),
                            headers=ecg_side.headers)
    assert ecg.status_code == 200, ecg.text
    clock.set(FIRST_JULY_SECOND)
    await _refresh(app, side)
    july = await client.post(f"{API}/consultations", json=_consultation("c-july", expert.member_id, network),
                             headers=side.headers)
    assert july.status_code == 200, july.text

    assert (await _month(app.state.database, "2022-05")).consultation.consultations_cumulative == 100
    assert (await _month(app.state.database, "2022-04")).consultation.consultations_cumulative == 0
    june = await _month(app.state.database)
    assert june.consultation.consultations_cumulative == 102
    assert (june.ecg.consultations_month, june.imaging.consultations_month) == (1, 0)
    assert (await _month(app.state.database, "2022-07")).consultation.consultations_cumulative == 103


async def _refresh(app: FastAPI, side: Side) -> None:
    """New headers for the side's system at the clock's new time (tokens expire)."""
    organization_id = side.organization_id
    caller = machine(Scope.TELEMED_REQUEST, organization_id=organization_id, client_id=f"his-{organization_id}")
    side.headers = await headers_for(app, caller)


async def _code(app: FastAPI, organization_id: int) -> str:
    async with app.state.database.transaction() as session:
        found = await registry_service.organization_by_id(session, organization_id)
    assert found is not None
    return found.code


async def test_lab_reports_and_shipped_specimens_are_credited_to_the_sending_organization_once(
    app: FastAPI, database: Database, settings: Settings, clock: SimulatedClock
) -> None:
    first, second = await organization(app), await organization(app)
    lab_a, lab_b = await _code(app, first), await _code(app, second)
    clock.set(LAST_JUNE_SECOND - timedelta(minutes=1))
    async with running_listener(database, settings, clock) as (_, port):
        june = await send(
            port,
            wire(oru("R-1", [], facility=lab_a)),
            wire(oru("R-1", [], facility=lab_a)),  # a resend of an accepted message: not stored again
            wire(oru("R-2", [], facility=lab_a)),
            wire(oru("R-3", [], facility=lab_b)),
            wire(oru("R-4", [], facility="NOT-REGISTERED")),  # kept and acknowledged, credited to no one
            wire(oml("O-1", "S-1", "collected", facility=lab_b)),
            wire(oml("O-2", "S-1", "shipped", facility=lab_b)),
            wire(oml("O-3", "S-1", "shipped", facility=lab_b)),  # shipped again under a new id: nothing moves
        )
        clock.set(FIRST_JULY_SECOND)
        july = await send(port, wire(oru("R-5", [], facility=lab_a)))
    assert [ack_code(ack) for ack in june + july] == ["AA"] * 9
    names = await _names(app, [first, second])
    lab = (await _month(database)).lab
    assert (lab.reports_month, lab.specimens_routed_month) == (3, 1)
    assert lab.top_uploaders == [TopUploader(hospital=names[0], count=2), TopUploader(hospital=names[1], count=1)]
    later = (await _month(database, "2022-07")).lab
    assert (later.reports_month, later.specimens_routed_month) == (1, 0)


async def test_a_batch_of_many_senders_credits_each_sender_its_own_reports(
    app: FastAPI, database: Database, settings: Settings, clock: SimulatedClock
) -> None:
    """Twelve lab systems sending at once share the listener's batches: one lookup of the batch's senders and one
    upsert of their months credit each registered sender its own reports, and an unregistered one none."""
    ids = [await organization(app) for _ in range(3)]
    codes = [await _code(app, organization_id) for organization_id in ids] + ["NOT-REGISTERED"]
    clock.set(LAST_JUNE_SECOND - timedelta(minutes=1))
    async with running_listener(database, settings, clock) as (listener, port):
        acks = await asyncio.gather(
            *(
                send(port, *(wire(oru(f"M-{n}-{k}", [], facility=codes[n % 4])) for k in range(n % 4 + 1)))
                for n in range(12)
            )
        )
    assert {ack_code(ack) for sent in acks for ack in sent} == {"AA"}
    assert listener.stats.accepted == sum(n % 4 + 1 for n in range(12)) == 30
    sent = {code: 3 * (index + 1) for index, code in enumerate(codes)}  # the unregistered one sends the most
    names = await _names(app, ids)
    lab = (await _month(database)).lab
    assert lab.reports_month == sum(sent[code] for code in codes[:3])
    expected = sorted(((names[i], sent[codes[i]]) for i in range(3)), key=lambda pair: -pair[1])
    assert [(top.hospital, top.count) for top in lab.top_uploaders] == expected


@dataclass
class FakePacs:
    """A PACS answering with the image counts the test sets (the adapter's own tests use a real one)."""

    images: dict[str, int]
    name: str = "test-pacs"

    async def study(self, uid: str) -> StudyMetadata:
        return StudyMetadata(uid, None, None, None, ("CT",), None, None, None, None)

    async def count_images(self, uid: str) -> ImageCount:
        return ImageCount(series=1, images=self.images[uid])


async def test_imaging_reports_signed_final_and_images_of_studies_first_recorded_in_the_month(
    app: FastAPI, database: Database, settings: Settings, clock: SimulatedClock
) -> None:
    first, second = await organization(app), await organization(app)
    doctors = [staff(Role.READING_CENTRE_DOCTOR, organization_id=org, user_id=900 + org) for org in (first, second)]
    pacs = FakePacs({"1.2.3.1": 100, "1.2.3.2": 50, "1.2.3.3": 7})
    cipher = cipher_for(settings)

    async def record(doctor: Any, uid: str) -> int:
        async with database.transaction() as session:
            view = await imaging.record_study(session, clock, cipher, doctor, cast(DicomWebPacs, pacs), uid)
            return view.id

    async def write(doctor: Any, study_id: int, *, sign: bool) -> None:
        async with database.transaction() as session:
            await imaging.write_report(session, clock, doctor, study_id, findings="未见异常", impression="正常",
                                       sign=sign)

    one, two = await record(doctors[0], "1.2.3.1"), await record(doctors[1], "1.2.3.2")
    pacs.images["1.2.3.1"] = 120
    await record(doctors[0], "1.2.3.1")  # recounted in June: +20 to June
    await write(doctors[0], one, sign=True)
    await write(doctors[0], one, sign=True)  # the same final report again: a retry
    await write(doctors[1], two, sign=False)  # preliminary: not yet a report of the month
    clock.set(FIRST_JULY_SECOND)
    pacs.images["1.2.3.2"] = 40
    await record(doctors[1], "1.2.3.2")  # recounted in July: -10 to June, where it was first recorded
    await record(doctors[1], "1.2.3.3")
    await write(doctors[1], two, sign=True)
    names = await _names(app, [first, second])
    june = (await _month(database)).imaging
    assert (june.reports_month, june.images_month) == (1, 160)
    assert june.top_uploaders == [TopUploader(hospital=names[0], count=1)]
    july = (await _month(database, "2022-07")).imaging
    assert (july.reports_month, july.images_month) == (1, 7)
    assert july.top_uploaders == [TopUploader(hospital=names[1], count=1)]


async def test_a_month_that_is_not_yyyy_mm_is_refused_naming_it(database: Database) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await _month(database, "2022-6")
    assert (refused.value.field, refused.value.value) == ("month", "2022-6")
