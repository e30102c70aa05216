"""Who is calling: staff users, residents and machine clients, with their roles and scopes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class PrincipalKind(StrEnum):
    STAFF = "staff"
    RESIDENT = "resident"
    CLIENT = "client"  # a machine client: hospital system, district platform, client app, gateway


class Role(StrEnum):
    RESIDENT = "resident"
    HOTLINE_AGENT = "hotline_agent"
    HOTLINE_SUPERVISOR = "hotline_supervisor"
    READING_CENTRE_DOCTOR = "reading_centre_doctor"
    DATA_QUALITY_OPERATOR = "data_quality_operator"
    BULLETIN_EDITOR = "bulletin_editor"
    ORGANIZATION_ADMIN = "organization_admin"
    PLATFORM_ADMIN = "platform_admin"
    HOTLINE_KB_EDITOR = "hotline_kb_editor"
    CRISIS_COUNSELLOR = "crisis_counsellor"  # the hotline's crisis team: works crisis-intervention follow-ups
    # An organization's staff who answer the hotline's work orders sent to it (organization_id set).
    WORK_ORDER_HANDLER = "work_order_handler"
    # A member hospital's doctor who sends cases to a remote diagnosis network and reads the reports that come
    # back (organization_id set): the worklist page's requester.
    TELEMED_REQUESTER = "telemed_requester"
    # A community health centre's family doctor, nurse or public-health staff (organization_id set): their
    # centre's teams, contracts and panels, and its chronic disease registers, follow-ups and overdue list.
    FAMILY_DOCTOR = "family_doctor"
    CLINICIAN = "clinician"  # a hospital's doctor or nurse: opens residents' shared records on a checked reason


class Scope(StrEnum):
    """Permissions per API area. Roles grant scopes to people; clients are granted scopes directly."""

    REGISTRY_READ = "registry.read"
    REGISTRY_WRITE = "registry.write"
    RESIDENT_READ = "resident.read"  # personal data in the master patient index
    RESIDENT_WRITE = "resident.write"
    RESIDENT_SELF = "resident.self"  # a resident's own record and access log
    SECURITY_ADMIN = "security.admin"
    AUDIT_READ = "audit.read"
    COLLECTION_UPLOAD = "collection.upload"
    COLLECTION_READ = "collection.read"
    COLLECTION_ADMIN = "collection.admin"
    BOOKING_READ = "booking.read"
    BOOKING_WRITE = "booking.write"
    BOOKING_SCHEDULE = "booking.schedule"  # hospitals publish sessions, check patients in
    BOOKING_ADMIN = "booking.admin"
    BULLETIN_EDIT = "bulletin.edit"
    HOTLINE_KB_READ = "hotline.kb.read"  # search the knowledge base (agents, editors)
    HOTLINE_KB_EDIT = "hotline.kb.edit"  # write articles, submit them, read the unanswered questions
    HOTLINE_KB_REVIEW = "hotline.kb.review"  # approve another editor's version, publish, unpublish
    HOTLINE_SELF_SERVICE = "hotline.self_service"  # the IVR machine client asks for a caller's answer
    HOTLINE_TELEPHONY = "hotline.telephony"  # the call centre's telephony system reports call events
    HOTLINE_CALLS = "hotline.calls"  # agents read, annotate and reclassify the calls they answered
    HOTLINE_SUPERVISE = "hotline.supervise"  # every call of the hotline, caller lookup
    HOTLINE_CRISIS = "hotline.crisis"  # crisis-intervention follow-ups (the crisis team only)
    HOTLINE_ADMIN = "hotline.admin"  # the city lines the telephony system may report, the holiday calendar
    HOTLINE_WORK_ORDERS = "hotline.work_orders"  # every work order: create, dispatch, close, callback
    HOTLINE_WORK_ORDERS_HANDLE = "hotline.work_orders.handle"  # an organization's own orders: reply, extension
    HOTLINE_12345_CITY = "hotline.12345.city"  # the city 12345 system pushes its work orders
    HOTLINE_12345_PROVINCE = "hotline.12345.province"  # the provincial 12345 system pushes its work orders
    TELEMED_REQUEST = "telemed.request"  # a network member submits cases, reads its own cases and reports
    TELEMED_READ = "telemed.read"  # a reading centre's worklist: accept, claim, report on the cases routed to it
    TELEMED_ADMIN = "telemed.admin"  # the networks' members and designated centres, every network's overdue list
    RECORDS_FAMILY = "records.family"  # a centre's family doctor teams, contracts and panels (its own only)
    RECORDS_FAMILY_ADMIN = "records.family.admin"  # service packages and the areas' population figures
    RECORDS_CHRONIC = "records.chronic"  # a centre's chronic disease registers, follow-ups, overdue list
    RECORDS_CHRONIC_UPLOAD = "records.chronic.upload"  # a district platform uploads public-health follow-ups
    RECORDS_INDICATORS = "records.indicators"  # contract rates and chronic disease indicators (no personal data)
    RECORDS_OPEN = "records.open"  # open a resident's shared record on a reason the records room checks
    RECORDS_LINK = "records.link"  # patient linkage: the review queue, merge and unmerge
    RECORDS_AUDIT = "records.audit"  # every resident's access log, the break-glass openings and their review


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.RESIDENT: frozenset({Scope.RESIDENT_SELF, Scope.BOOKING_READ, Scope.BOOKING_WRITE}),
    # An agent sees a caller's data only within their own open call: the hotline desk's object rule
    # (hotline/desk.py: a master-index lookup names the call, is audited with it, and is refused and audited
    # for a call not the agent's or not open). No resident scope: the resident index stays closed to agents.
    # REGISTRY_READ gives areas, organizations, departments and apps; BOOKING_READ no resident's data (a
    # booking opened by id needs the resident's ID number). BOOKING_WRITE is the desk's booking scope: the
    # booking room refuses a phone agent who names a resident outside a call the desk checked
    # (booking/channels.py, rule hotline.desk.within_call), so it opens no path around the desk.
    Role.HOTLINE_AGENT: frozenset({Scope.REGISTRY_READ, Scope.BOOKING_READ, Scope.BOOKING_WRITE, Scope.HOTLINE_CALLS,
                                   Scope.HOTLINE_KB_READ, Scope.HOTLINE_WORK_ORDERS}),
    Role.HOTLINE_SUPERVISOR: frozenset({Scope.REGISTRY_READ, Scope.RESIDENT_READ, Scope.BOOKING_READ,
                                        Scope.BOOKING_WRITE, Scope.AUDIT_READ, Scope.HOTLINE_CALLS,
                                        Scope.HOTLINE_SUPERVISE, Scope.HOTLINE_WORK_ORDERS}),
    Role.READING_CENTRE_DOCTOR: frozenset({Scope.REGISTRY_READ, Scope.TELEMED_READ}),
    Role.TELEMED_REQUESTER: frozenset({Scope.REGISTRY_READ, Scope.TELEMED_REQUEST}),
    Role.FAMILY_DOCTOR: frozenset({Scope.REGISTRY_READ, Scope.RECORDS_FAMILY, Scope.RECORDS_CHRONIC,
                                   Scope.RECORDS_INDICATORS}),
    Role.DATA_QUALITY_OPERATOR: frozenset({Scope.REGISTRY_READ, Scope.COLLECTION_READ,
                                           Scope.COLLECTION_ADMIN, Scope.RECORDS_LINK}),
    Role.CLINICIAN: frozenset({Scope.REGISTRY_READ, Scope.RECORDS_OPEN}),
    Role.BULLETIN_EDITOR: frozenset({Scope.REGISTRY_READ, Scope.COLLECTION_READ, Scope.BULLETIN_EDIT}),
    Role.ORGANIZATION_ADMIN: frozenset({Scope.REGISTRY_READ, Scope.REGISTRY_WRITE, Scope.BOOKING_SCHEDULE}),
    Role.HOTLINE_KB_EDITOR: frozenset({Scope.HOTLINE_KB_READ, Scope.HOTLINE_KB_EDIT, Scope.HOTLINE_KB_REVIEW}),
    Role.CRISIS_COUNSELLOR: frozenset({Scope.HOTLINE_CRISIS}),
    Role.WORK_ORDER_HANDLER: frozenset({Scope.HOTLINE_WORK_ORDERS_HANDLE}),
    Role.PLATFORM_ADMIN: frozenset(set(Scope) - {Scope.RESIDENT_SELF}),
}

# Roles that read personal data in bulk or administer: TOTP is mandatory for them. A knowledge-base editor
# too: what they approve is what the IVR tells every caller about their health; and an organization's
# work-order handler, who reads callers' complaints in their own words.
SECOND_FACTOR_ROLES = frozenset({Role.HOTLINE_AGENT, Role.HOTLINE_SUPERVISOR, Role.READING_CENTRE_DOCTOR,
                                 Role.DATA_QUALITY_OPERATOR, Role.ORGANIZATION_ADMIN, Role.PLATFORM_ADMIN,
                                 Role.HOTLINE_KB_EDITOR, Role.CRISIS_COUNSELLOR, Role.WORK_ORDER_HANDLER,
                                 Role.TELEMED_REQUESTER, Role.FAMILY_DOCTOR, Role.CLINICIAN})


def scopes_for_roles(roles: frozenset[Role]) -> frozenset[Scope]:
    granted: set[Scope] = set()
    for role in roles:
        granted |= ROLE_SCOPES[role]
    return frozenset(granted)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. Object-level rules in the services read its ids, never its name."""

    kind: PrincipalKind
    subject: str  # stable id: "staff:12", "resident-account:7", "client:his-gulou"
    scopes: frozenset[Scope]
    roles: frozenset[Role] = field(default_factory=frozenset)
    organization_id: int | None = None  # staff of / client acting for this organization
    resident_id: int | None = None  # a resident account's master-index resident
    client_app_id: int | None = None  # a client app (booking front-end) the client acts as
    on_behalf_of: str | None = None  # e.g. the resident a hotline agent is serving in an open call
    session_id: str | None = None

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes

    def has_any(self, *scopes: Scope) -> bool:
        return not self.scopes.isdisjoint(scopes)

    @property
    def is_platform_admin(self) -> bool:
        return Role.PLATFORM_ADMIN in self.roles
