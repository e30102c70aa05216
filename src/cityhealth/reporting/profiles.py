"""The publication profile's use cases: read it for an issue, and the editor's change of it (audited)."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.errors import Conflict, NotFound, ValidationFailed
from cityhealth.reporting import repository
from cityhealth.reporting.models import PublicationProfile
from cityhealth.reporting.schemas import PublicationProfileIn, PublicationProfileRead, QrCodeIn
from cityhealth.security.audit import Action, record
from cityhealth.security.principals import Principal

RESOURCE = "bulletin_publication_profile"
_REGION = re.compile(r"[0-9]{6,12}")
_FIELDS = ("publisher", "address", "postcode", "phone", "fax", "email", "website", "responsible_editor", "print_run")


def _checked_region(region_code: str) -> str:
    if not _REGION.fullmatch(region_code):
        raise ValidationFailed("a region is named by its area code, 6 to 12 digits", field="region_code",
                               value=region_code, rule="bulletin.profile.region_code")
    return region_code


def _read(row: PublicationProfile) -> PublicationProfileRead:
    return PublicationProfileRead(
        region_code=row.region_code, version=row.version,
        **{name: getattr(row, name) for name in _FIELDS},
        qr_codes=[QrCodeIn(caption=row.qr1_caption, url=row.qr1_url),
                  QrCodeIn(caption=row.qr2_caption, url=row.qr2_url)],
    )


def _values(data: PublicationProfileIn) -> dict[str, object]:
    first, second = data.qr_codes
    return {**{name: getattr(data, name) for name in _FIELDS},
            "qr1_caption": first.caption, "qr1_url": first.url, "qr2_caption": second.caption, "qr2_url": second.url}


async def profile_for_issue(session: AsyncSession, region_code: str) -> PublicationProfileRead | None:
    """The profile an issue of the region prints (None: none kept yet, the issue prints its publisher only)."""
    row = await repository.publication_profile(session, region_code)
    return None if row is None else _read(row)


async def get_profile(session: AsyncSession, clock: Clock, principal: Principal,
                      region_code: str) -> PublicationProfileRead:
    row = await repository.publication_profile(session, _checked_region(region_code))
    if row is None:
        raise NotFound("no publication profile is kept for this region", field="region_code", value=region_code,
                       rule="bulletin.profile.exists")
    record(session, clock, principal, Action.READ, RESOURCE, resource_id=region_code)
    return _read(row)


async def put_profile(session: AsyncSession, clock: Clock, principal: Principal | None, region_code: str,
                      data: PublicationProfileIn, *, expected_version: int | None = None,
                      operator: str | None = None) -> PublicationProfileRead:
    """Create or change a region's profile; the same profile again changes nothing (not even its version).

    With `expected_version`, a change made meanwhile by another editor is refused (409) instead of overwritten.
    """
    _checked_region(region_code)
    values = _values(data)
    by = operator or (principal.subject if principal is not None else "system")
    row = await repository.publication_profile_for_update(session, region_code)
    if expected_version is not None and (row.version if row is not None else 0) != expected_version:
        raise Conflict("the profile was changed by someone else since it was read", field="version",
                       value=expected_version, rule="bulletin.profile.version")
    if row is None:
        row = PublicationProfile(region_code=region_code, version=1, updated_at=clock.now(), updated_by=by,
                                 **values)
        session.add(row)
        action = Action.CREATE
    elif any(getattr(row, name) != value for name, value in values.items()):
        for name, value in values.items():
            setattr(row, name, value)
        row.version, row.updated_at, row.updated_by = row.version + 1, clock.now(), by
        action = Action.UPDATE
    else:
        return _read(row)
    await session.flush()
    record(session, clock, principal, action, RESOURCE, resource_id=region_code, detail=f"version {row.version}",
           actor=operator, actor_kind="operator" if operator else None)
    return _read(row)
