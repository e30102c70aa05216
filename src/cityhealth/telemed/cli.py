"""`cityhealth telemed …`: the networks, their members, an organization joining or leaving, coverage."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from datetime import date
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from cityhealth.clock import SystemClock
from cityhealth.config import load_settings
from cityhealth.db.cli import checked_database
from cityhealth.errors import DomainError
from cityhealth.telemed import service, statistics
from cityhealth.telemed.lab_cli import mllp
from cityhealth.telemed.schemas import MemberJoin, MemberLeave
from cityhealth.telemed.statistics_schemas import OpeningBalanceIn

app = typer.Typer(help="Remote diagnosis networks: members, coverage, the lab listener.", no_args_is_help=True)
# The lab listener is written beside the lab room (lab_cli); its command belongs to this group.
app.command("mllp")(mllp)
console = Console()
T = TypeVar("T")


def _run(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """`work` in one transaction on the configured database; a refusal printed, and exit code 1."""
    settings = load_settings()

    async def run() -> T:
        async with checked_database(settings) as database, database.transaction() as session:
            return await work(session)

    try:
        return asyncio.run(run())
    except DomainError as error:
        where = f"{error.field}: " if error.field else ""
        console.print(f"[red]refused:[/red] {where}{error}")
        raise typer.Exit(1) from error


def _operator() -> str:
    return f"cli:{getpass.getuser()}"


@app.command("networks")
def networks() -> None:
    """The five networks, their turnaround targets and today's members."""
    table = Table("network", "name", "members", "reading centres", "targets (min)")
    for n in _run(lambda session: service.list_networks(session, SystemClock())):
        table.add_row(
            n.code,
            n.name,
            str(n.active_members),
            str(n.reading_centres),
            " ".join(f"{t.priority}={t.minutes}" for t in n.targets),
        )
    console.print(table)


@app.command("members")
def members(
    network: str = typer.Argument(..., help="teleconsultation, ecg, lab, imaging or pathology"),
    every: bool = typer.Option(False, help="every membership ever, not only today's"),
) -> None:
    """A network's members."""
    table = Table("id", "organization", "city", "area", "kind", "role", "joined", "left", "designated")
    for m in _run(lambda session: service.list_members(session, SystemClock(), network, every=every)):
        table.add_row(
            str(m.id),
            m.organization_name,
            m.city_code,
            m.area_code or "",
            m.kind,
            m.role,
            str(m.joined_on),
            str(m.left_on or ""),
            " ".join(map(str, m.designated_centre_ids)),
        )
    console.print(table)


@app.command("join")
def join(
    network: str = typer.Argument(..., help="the network"),
    organization_id: int = typer.Option(..., help="the organization's id in the registry"),
    kind: str = typer.Option(
        ..., help="tertiary, secondary_or_above, community_health_centre, metro_city, aid or other"
    ),
    role: str = typer.Option(..., help="requester, reading_centre or both"),
    joined_on: str = typer.Option(..., help="YYYY-MM-DD"),
    city: str | None = typer.Option(None, help="the member's city (default: its organization's)"),
    area: str | None = typer.Option(None, help="the district it covers (default: its organization's)"),
) -> None:
    """An organization joins a network (the same join again changes nothing)."""
    try:
        data = MemberJoin.model_validate(
            {
                "organization_id": organization_id,
                "kind": kind,
                "role": role,
                "joined_on": joined_on,
                "city_code": city,
                "area_code": area,
            }
        )
    except ValueError as error:
        console.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(1) from error
    saved = _run(lambda session: service.join(session, SystemClock(), None, network, data, operator=_operator()))
    console.print(f"member {saved.id}: {saved.organization_name} in {saved.network_code} since {saved.joined_on}")


@app.command("leave")
def leave(
    member_id: int = typer.Argument(..., help="the member's id"),
    left_on: str = typer.Option(..., help="YYYY-MM-DD, the first day it is no longer a member"),
) -> None:
    """A member leaves its network."""
    data = MemberLeave(left_on=date.fromisoformat(left_on))
    saved = _run(lambda session: service.leave(session, SystemClock(), None, member_id, data, operator=_operator()))
    console.print(f"member {saved.id} left {saved.network_code} on {saved.left_on}")


@app.command("coverage")
def coverage(
    network: str = typer.Argument(..., help="the network"),
    city: str = typer.Option("320100", help="the city's area code"),
) -> None:
    """The city's districts covered and not covered by the network today."""
    found = _run(lambda session: service.coverage(session, SystemClock(), network, city))
    table = Table("area", "name", "covered", "members")
    for row in found.areas:
        table.add_row(row.code, row.name, "yes" if row.covered else "no", str(row.members))
    console.print(table)
    console.print(f"covered {found.covered}, not covered {found.not_covered}")


@app.command("opening-balance")
def opening_balance(
    network: str = typer.Argument("teleconsultation", help="the network whose cumulative figure it carries"),
    as_of: str = typer.Option(..., help="YYYY-MM-DD: counted in every month ending on or after this day"),
    consultations: int = typer.Option(..., min=0, help="consultations held on the older platform"),
    note: str | None = typer.Option(None, help="where the figure comes from"),
) -> None:
    """Carry a network's consultations over from an older platform (the same balance again changes nothing)."""
    try:
        data = OpeningBalanceIn.model_validate({"as_of": as_of, "consultations": consultations, "note": note})
    except ValueError as error:
        console.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(1) from error
    saved = _run(
        lambda session: statistics.record_opening_balance(
            session, SystemClock(), None, network, data, operator=_operator()
        )
    )
    console.print(f"{saved.network_code}: {saved.consultations} consultations as of {saved.as_of}")
