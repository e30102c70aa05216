"""Object rules of a case's files (telemed/files_api.py) and of the reading pages (web/telemed_worklist.py):
each owner is a requester and a reading centre with one case between them, its ECG tracing and its study."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from fastapi import FastAPI

from cityhealth.security.crypto import field_cipher
from cityhealth.security.principals import Principal, Role
from cityhealth.telemed import cases, ecg
from cityhealth.telemed import imaging_repository as imaging_rows
from cityhealth.telemed.schemas import CaseSubmit
from tests.factories.security import headers_for, staff
from tests.security.objects import Owner, object_endpoint
from tests.telemed.ecg_files import dicom_ecg
from tests.telemed.files_support import with_pacs
from tests.telemed.pacs_stub import stub_pacs_root
from tests.telemed.support import designate, join, organization

_users = itertools.count(20_000)
_uids = itertools.count(1)
CASE = "/api/telemed/cases/{case_id}"


@dataclass(frozen=True)
class Held:
    requester: Principal  # staff of the requesting hospital (the pages' requester)
    reader: Principal  # a doctor of the reading centre the case is routed to
    case_id: int
    tracing_id: int
    study_id: int


async def cases_with_files(app: FastAPI, owners: int) -> list[Held]:
    database, clock, settings = app.state.database, app.state.clock, app.state.settings
    with_pacs(app, stub=stub_pacs_root())
    found = []
    for n in range(owners):
        requester_org, centre_org = await organization(app, "320102"), await organization(app, "320106")
        requester_member = await join(app, requester_org, "requester")
        await designate(app, requester_member, await join(app, centre_org, "reading_centre"))
        requester = staff(Role.TELEMED_REQUESTER, organization_id=requester_org, user_id=next(_users))
        reader = staff(Role.READING_CENTRE_DOCTOR, organization_id=centre_org, user_id=next(_users))
        async with database.transaction() as session:
            case = await cases.submit(
                session, clock, settings, requester,
                CaseSubmit(network_code="ecg", external_id=f"F-{requester_org}-{n}", case_type="ecg"),
            )
            tracing = await ecg.store_ecg(
                session, clock, field_cipher(settings), requester, dicom_ecg(seconds=2), case_id=case.id
            )
            now = clock.now()
            study_id = await imaging_rows.upsert_study(
                session,
                {"study_instance_uid": f"1.2.826.0.1.3680043.8.498.{next(_uids)}", "pacs": "stub", "case_id": case.id,
                 "accession_number": None, "modalities": "CT", "description": None, "study_date": None,
                 "series_count": 1, "image_count": 1, "counted_at": now, "patient_id_hash": None,
                 "patient_id_enc": None, "patient_name_enc": None, "created_at": now, "updated_at": now},
            )
        found.append(Held(requester, reader, case.id, tracing.id, study_id))
    return found


def _rule(what: str) -> str:
    return f"{what} is reached through its case: its requester or the centre it is routed to, no one else"


async def _owners(
    app: FastAPI, owners: int, *, as_reader: bool, query: dict[str, str] | None = None
) -> list[Owner]:
    found = []
    for held in await cases_with_files(app, owners):
        who = held.reader if as_reader else held.requester
        path = {"case_id": held.case_id, "tracing_id": held.tracing_id, "study_id": held.study_id}
        found.append(Owner(await headers_for(app, who), path=path, query=query or {}))
    return found


@object_endpoint("GET", f"{CASE}/ecg", kind="read", rule=_rule("a case's list of tracings"))
async def ecg_lists(app: FastAPI, owners: int) -> list[Owner]:
    return await _owners(app, owners, as_reader=True)


@object_endpoint("GET", f"{CASE}/ecg/{{tracing_id}}", kind="read", rule=_rule("an ECG tracing"))
async def ecg_tracings(app: FastAPI, owners: int) -> list[Owner]:
    return await _owners(app, owners, as_reader=False)


@object_endpoint("GET", f"{CASE}/ecg/{{tracing_id}}/svg", kind="read", rule=_rule("an ECG tracing's drawing"))
async def ecg_drawings(app: FastAPI, owners: int) -> list[Owner]:
    return await _owners(app, owners, as_reader=True)


@object_endpoint("GET", f"{CASE}/imaging", kind="read", rule=_rule("a case's list of studies"))
async def study_lists(app: FastAPI, owners: int) -> list[Owner]:
    return await _owners(app, owners, as_reader=False)


@object_endpoint("GET", f"{CASE}/imaging/search", kind="read", rule=_rule("a PACS search for a case"))
async def study_searches(app: FastAPI, owners: int) -> list[Owner]:
    return await _owners(app, owners, as_reader=True, query={"pacs": "stub", "patient_id": "STUB1"})


@object_endpoint("GET", f"{CASE}/imaging/{{study_id}}", kind="read", rule=_rule("an imaging study"))
async def studies(app: FastAPI, owners: int) -> list[Owner]:
    return await _owners(app, owners, as_reader=True)


@object_endpoint("GET", f"{CASE}/imaging/{{study_id}}/instances", kind="read", rule=_rule("a study's retrieval"))
async def retrievals(app: FastAPI, owners: int) -> list[Owner]:
    return await _owners(app, owners, as_reader=False)
