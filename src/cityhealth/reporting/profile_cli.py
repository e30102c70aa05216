"""`cityhealth bulletin-profile …`: the publication profile from the command line (the demo seeds it so)."""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from cityhealth.clock import SystemClock
from cityhealth.config import load_settings
from cityhealth.db.cli import checked_database
from cityhealth.errors import DomainError
from cityhealth.reporting import profiles
from cityhealth.reporting.schemas import PublicationProfileIn

app = typer.Typer(help="The bulletin's publication profile (the publisher's footer block).", no_args_is_help=True)


@app.command("set")
def set_profile(
    region: Annotated[str, typer.Option("--region", help="the region's area code, e.g. 320100")],
    file: Annotated[Path, typer.Option("--file", exists=True, dir_okay=False, readable=True,
                                       help="the profile as JSON (the API's PUT body)")],
) -> None:
    """Create or change a region's profile; the same file again changes nothing. Audited as the operator."""
    try:
        data = PublicationProfileIn.model_validate_json(file.read_bytes())
    except ValidationError as exc:
        typer.secho(f"error: {file} is not a publication profile:\n{exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc

    async def run() -> int:
        async with checked_database(load_settings()) as database, database.transaction() as session:
            saved = await profiles.put_profile(session, SystemClock(), None, region, data,
                                               operator=getpass.getuser())
            return saved.version

    try:
        version = asyncio.run(run())
    except DomainError as exc:
        typer.secho(f"error: {exc.message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    typer.secho(f"publication profile of {region}: version {version}", fg=typer.colors.GREEN, err=True)
