"""Client applications (a booking channel's app or a hospital's system acting as a machine client): listed and
read by anyone who may read the registry, written by platform administrators; code and name unique."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import Clock
from cityhealth.errors import Conflict, NotFound, ValidationFailed
from cityhealth.registry import repository
from cityhealth.registry.models import ClientApp
from cityhealth.registry.schemas import ClientAppCreate, ClientAppRead, ClientAppUpdate, Page
from cityhealth.registry.service import apply_changes, flush_unique, require_platform_writer
from cityhealth.security.principals import Principal


async def _check_client_app(session: AsyncSession, values: Mapping[str, Any], own_id: int | None) -> None:
    organization_id = values.get("organization_id")
    if organization_id is not None and await repository.get_organization(session, organization_id) is None:
        raise ValidationFailed(f"organization_id: no organization has id {organization_id}",
                               field="organization_id", value=organization_id, rule="organization.unknown")
    fields: tuple[Literal["code", "name"], ...] = ("code", "name")
    for field in fields:
        other = await repository.client_app_by(session, field, values[field])
        if other is not None and other.id != own_id:
            raise Conflict(f"{field}: another client app already has {field} {values[field]}",
                           code="client_app_exists", field=field, value=values[field],
                           rule=f"client_app.unique_{field}")


def _client_app_conflict(values: Mapping[str, Any]) -> Conflict:
    return Conflict(f"client app {values['code']} conflicts with one written concurrently",
                    code="client_app_exists", field="code", value=values["code"], rule="client_app.unique_code")


async def list_client_apps(session: AsyncSession, *, channel: str | None = None, active: bool | None = None,
                           limit: int = 100, offset: int = 0) -> Page[ClientAppRead]:
    rows, total = await repository.page(
        session, repository.client_apps_query(channel=channel, active=active), limit=limit, offset=offset)
    return Page(items=[ClientAppRead.model_validate(a) for a in rows], total=total, limit=limit, offset=offset)


async def get_client_app(session: AsyncSession, app_id: int) -> ClientAppRead:
    return ClientAppRead.model_validate(await _client_app(session, app_id))


async def _client_app(session: AsyncSession, app_id: int) -> ClientApp:
    app = await repository.get_client_app(session, app_id)
    if app is None:
        raise NotFound(f"client app {app_id} not found", field="client_app_id", value=app_id)
    return app


async def create_client_app(session: AsyncSession, clock: Clock, principal: Principal | None,
                            data: ClientAppCreate) -> ClientAppRead:
    require_platform_writer(principal)
    return ClientAppRead.model_validate(await insert_client_app(session, clock, data.model_dump()))


def _stored_channels(values: dict[str, Any], home_channel: str | None = None) -> dict[str, Any]:
    """The model keeps further channels space-separated, in a stable order, without the home channel."""
    others = values.get("other_channels")
    if not isinstance(others, list):
        return values
    home = values.get("channel", home_channel)
    return values | {"other_channels": " ".join(sorted(set(others) - {home}))}


async def insert_client_app(session: AsyncSession, clock: Clock, values: dict[str, Any]) -> ClientApp:
    values = _stored_channels(values)
    await _check_client_app(session, values, None)
    now = clock.now()
    app = ClientApp(**({"is_active": True} | values), created_at=now, updated_at=now)
    session.add(app)
    await flush_unique(session, _client_app_conflict(values))
    return app


async def update_client_app(session: AsyncSession, clock: Clock, principal: Principal | None, app_id: int,
                            data: ClientAppUpdate) -> ClientAppRead:
    require_platform_writer(principal)
    app = await _client_app(session, app_id)
    await change_client_app(session, clock, app, data.model_dump(exclude_unset=True))
    return ClientAppRead.model_validate(app)


async def change_client_app(session: AsyncSession, clock: Clock, app: ClientApp, changes: dict[str, Any]) -> bool:
    """Apply the changes that differ, after checking the resulting app; True if anything changed."""
    changes = _stored_channels(changes, app.channel)
    merged = {"code": app.code, "name": app.name, "organization_id": app.organization_id} | changes
    await _check_client_app(session, merged, app.id)
    changed = apply_changes(app, changes, clock)
    await flush_unique(session, _client_app_conflict(merged))
    return changed


async def deactivate_client_app(session: AsyncSession, clock: Clock, principal: Principal | None,
                                app_id: int) -> ClientAppRead:
    return await update_client_app(session, clock, principal, app_id, ClientAppUpdate(is_active=False))
