"""Object rules of the booking room's read endpoints (docs/security.md, 'Adding an endpoint')."""

from __future__ import annotations

import uuid
from datetime import date, time

from fastapi import FastAPI

from cityhealth.booking.availability import BookingRuntime
from cityhealth.booking.models import Booking, FamilyLink
from cityhealth.booking.schedules import publish_session
from cityhealth.booking.schemas import SessionCreate, SessionRead
from cityhealth.registry.models import Department, Organization
from cityhealth.security.principals import Principal, PrincipalKind, Scope
from tests.factories.booking import add_resident, resident_principal
from tests.factories.security import headers_for, machine
from tests.security.objects import Owner, not_object_scoped, object_endpoint


async def _session_of_a_new_hospital(app: FastAPI, capacity: int) -> SessionRead:
    """A fresh hospital with one department and one published session of `capacity` slots."""
    database, clock = app.state.database, app.state.clock
    now = clock.now()
    suffix = uuid.uuid4().hex[:8]
    admin = Principal(kind=PrincipalKind.CLIENT, subject="client:object-rules", scopes=frozenset({Scope.BOOKING_ADMIN}))
    async with database.transaction() as tx:
        hospital = Organization(code=f"OBJ-{suffix}", name=f"对象规则医院 {suffix}", kind="hospital",
                                active_from=date(2000, 1, 1), created_at=now, updated_at=now)
        tx.add(hospital)
        await tx.flush()
        department = Department(organization_id=hospital.id, subject_code="03", local_code="NK", local_name="内科",
                                is_active=True, created_at=now, updated_at=now)
        tx.add(department)
        await tx.flush()
        session, _ = await publish_session(tx, clock, BookingRuntime(), admin, SessionCreate(
            external_id="objects", organization_id=hospital.id, department_id=department.id,
            service_date=date(2022, 6, 17), start_time=time(8), end_time=time(12), capacity=capacity))
    return session


async def _owners_with_a_booking(app: FastAPI, owners: int) -> list[tuple[dict[str, str], int]]:
    """`owners` residents, each with one booking of their own on a fresh session; (headers, booking id)."""
    database, now = app.state.database, app.state.clock.now()
    session = await _session_of_a_new_hospital(app, max(owners, 1))
    found = []
    for n in range(owners):
        resident_id, _ = await add_resident(database, app.state.settings, now, 600 + n, area="320115")
        async with database.transaction() as tx:
            booking = Booking(session_id=session.id, organization_id=session.organization_id,
                              department_id=session.department_id, service_date=session.service_date,
                              starts_at=session.starts_at, ends_at=session.ends_at, slot_no=n + 1,
                              estimated_at=session.starts_at, resident_id=resident_id, channel="online_12320",
                              status="booked", booked_at=now, created_by="object-rules", created_at=now,
                              updated_at=now)
            tx.add(booking)
            await tx.flush()
            booking_id = booking.id
        found.append((await headers_for(app, resident_principal(resident_id)), booking_id))
    return found


@object_endpoint("GET", "/api/booking/bookings/{booking_id}", kind="read",
                 rule="a resident sees only their own bookings; another's looks like not found")
async def bookings(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(headers, path={"booking_id": booking_id})
            for headers, booking_id in await _owners_with_a_booking(app, owners)]


@object_endpoint("GET", "/api/booking/bookings", kind="list", rule="a resident lists only their own bookings")
async def booking_lists(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(headers, marker=f'{{"id":{booking_id},')
            for headers, booking_id in await _owners_with_a_booking(app, owners)]


@object_endpoint("POST", "/api/booking/bookings/{booking_id}/cancel", kind="write",
                 rule="a resident cancels only their own bookings; another's looks like not found")
async def cancellations(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(headers, path={"booking_id": booking_id})
            for headers, booking_id in await _owners_with_a_booking(app, owners)]


async def _managers_with_a_member(app: FastAPI, owners: int) -> list[tuple[dict[str, str], int]]:
    """`owners` residents, each managing an adult family member of their own who confirmed the link; (headers,
    link id)."""
    database, now = app.state.database, app.state.clock.now()
    found = []
    for n in range(owners):
        manager_id, _ = await add_resident(database, app.state.settings, now, 700 + 2 * n, area="320115")
        member_id, _ = await add_resident(database, app.state.settings, now, 701 + 2 * n, area="320115")
        async with database.transaction() as tx:
            link = FamilyLink(manager_resident_id=manager_id, member_resident_id=member_id, relationship="child",
                              status="active", consent_basis="member_confirmation", consented_by="object-rules",
                              consented_at=now, created_by="object-rules", created_at=now, updated_at=now)
            tx.add(link)
            await tx.flush()
            link_id = link.id
        found.append((await headers_for(app, resident_principal(manager_id)), link_id))
    return found


@object_endpoint("GET", "/api/booking/family/links", kind="list",
                 rule="a resident lists only the links they manage or are managed by")
async def family_links(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(headers, marker=f'{{"id":{link_id},') for headers, link_id in
            await _managers_with_a_member(app, owners)]


@object_endpoint("GET", "/api/booking/family/links/{link_id}/bookings", kind="read",
                 rule="only the member's manager, through a live link, lists the member's bookings")
async def family_bookings(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(headers, path={"link_id": link_id}) for headers, link_id in
            await _managers_with_a_member(app, owners)]


@object_endpoint("GET", "/api/booking/family/links/{link_id}/waitlist", kind="read",
                 rule="only the member's manager, through a live link, lists the member's waitlist entries")
async def family_waitlists(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(headers, path={"link_id": link_id}) for headers, link_id in
            await _managers_with_a_member(app, owners)]


@object_endpoint("POST", "/api/booking/family/links/{link_id}/revoke", kind="write",
                 rule="only the link's manager or member revokes it; another's looks like not found")
async def family_revocations(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(headers, path={"link_id": link_id}) for headers, link_id in
            await _managers_with_a_member(app, owners)]


@object_endpoint("GET", "/api/booking/scheduler/sessions/{session_id}", kind="read",
                 rule="a hospital's scheduler sees only their own hospital's sessions; another's looks like not found")
async def scheduler_views(app: FastAPI, owners: int) -> list[Owner]:
    found = []
    for _ in range(owners):
        session = await _session_of_a_new_hospital(app, 1)
        principal = machine(Scope.BOOKING_SCHEDULE, organization_id=session.organization_id,
                            client_id=f"his-{session.organization_id}")
        found.append(Owner(await headers_for(app, principal), path={"session_id": session.id}))
    return found


_SCHEDULE = "published schedules: every holder of booking.read sees every hospital's sessions and policy"
not_object_scoped("GET", "/api/booking/sessions", _SCHEDULE)
not_object_scoped("GET", "/api/booking/sessions/{session_id}", _SCHEDULE)
not_object_scoped("GET", "/api/booking/policies/{organization_id}", _SCHEDULE)
_FEED = "SMART Scheduling Links: the schedule feed for registered third parties, no personal data"
not_object_scoped("GET", "/api/booking/$bulk-publish", _FEED)
not_object_scoped("GET", "/api/booking/smart/locations.ndjson", _FEED)
not_object_scoped("GET", "/api/booking/smart/schedules.ndjson", _FEED)
not_object_scoped("GET", "/api/booking/smart/slots.ndjson", _FEED)
not_object_scoped("GET", "/api/booking/sanction-rule", "the platform's one no-show rule (booking administrators)")
not_object_scoped("POST", "/api/booking/sanctions/search",
                  "booking administrators handle any resident's sanctions (override with a reason, audited)")
not_object_scoped("GET", "/api/booking/statistics", "aggregate counts per hospital and app for the bulletin")


async def _owners_waiting(app: FastAPI, owners: int) -> list[tuple[dict[str, str], int]]:
    """`owners` residents, each with a waitlist entry of their own; (headers, entry id)."""
    from cityhealth.booking.models import WaitlistEntry

    database, now = app.state.database, app.state.clock.now()
    found = []
    for headers, booking_id in await _owners_with_a_booking(app, owners):
        async with database.transaction() as tx:
            booking = await tx.get(Booking, booking_id)
            assert booking is not None
            entry = WaitlistEntry(session_id=booking.session_id, resident_id=booking.resident_id,
                                  channel="online_12320", status="waiting", created_by="test:object-rules",
                                  created_at=now, updated_at=now)
            tx.add(entry)
            await tx.flush()
            found.append((headers, entry.id))
    return found


@object_endpoint("GET", "/api/booking/waitlist", kind="list", rule="a resident lists only their own waitlist entries")
async def waitlist_lists(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(headers, marker=f'{{"id":{entry_id},') for headers, entry_id in await _owners_waiting(app, owners)]


@object_endpoint("POST", "/api/booking/waitlist/{entry_id}/leave", kind="write",
                 rule="a resident leaves only their own waitlist entries; another's looks like not found")
async def waitlist_leaves(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(headers, path={"entry_id": entry_id}) for headers, entry_id in await _owners_waiting(app, owners)]


@object_endpoint("GET", "/api/booking/bookings/{booking_id}/calendar.ics", kind="read",
                 rule="a resident downloads only their own booking's calendar file; another's looks like not found")
async def calendars(app: FastAPI, owners: int) -> list[Owner]:
    return [Owner(headers, path={"booking_id": booking_id})
            for headers, booking_id in await _owners_with_a_booking(app, owners)]


@object_endpoint("GET", "/api/booking/message-settings/{organization_id}", kind="read",
                 rule="a hospital's schedulers read only their own hospital's message settings")
async def message_settings(app: FastAPI, owners: int) -> list[Owner]:
    from tests.factories.security import machine

    database, now = app.state.database, app.state.clock.now()
    found = []
    for _ in range(owners):
        suffix = uuid.uuid4().hex[:8]
        async with database.transaction() as tx:
            hospital = Organization(code=f"MSG-{suffix}", name=f"消息设置医院 {suffix}", kind="hospital",
                                    active_from=date(2000, 1, 1), created_at=now, updated_at=now)
            tx.add(hospital)
            await tx.flush()
            hospital_id = hospital.id
        principal = machine(Scope.BOOKING_SCHEDULE, organization_id=hospital_id, client_id=f"his-{suffix}")
        found.append(Owner(await headers_for(app, principal), path={"organization_id": hospital_id}))
    return found

not_object_scoped("GET", "/api/booking/nearby",
                  "the medical e-map: public facts about facilities (position, hours, services) and counts of free "
                  "slots, the same for every caller of a channel; no resident's data")
