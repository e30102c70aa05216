"""`cityhealth audit|keys|users|clients …`: the operator's security commands."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cityhealth.clock import SystemClock, business_midnight
from cityhealth.config import Settings, generate_key, load_settings
from cityhealth.db.cli import checked_database
from cityhealth.errors import DomainError
from cityhealth.security import keys as key_rotation
from cityhealth.security import sms, staff
from cityhealth.security.audit import Action, record
from cityhealth.security.audit_verify import Verification, count_events, export_events, verify_chain
from cityhealth.security.clients import register_client, registered_clients, revoke_client
from cityhealth.security.crypto import field_cipher
from cityhealth.security.principals import Role

audit_app = typer.Typer(help="The audit trail: verify its hash chain, export it.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys: generate, rotate.", no_args_is_help=True)
users_app = typer.Typer(help="Staff users: create, unlock, deactivate.", no_args_is_help=True)
clients_app = typer.Typer(help="Machine clients (OAuth2 client credentials): register, revoke, list.",
                          no_args_is_help=True)
sms_app = typer.Typer(help="The SMS outbox: the development sink that shows the texts (never in production).",
                      no_args_is_help=True)
console = Console(stderr=True)
OPERATOR_KIND = "operator"


def _operator() -> str:
    return f"cli:{getpass.getuser()}"


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console)


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]{message}[/red]")
    return typer.Exit(code)


# --- audit ------------------------------------------------------------------------------------------

def _anchor_file(settings: Settings) -> Path:
    return settings.var_dir / "audit" / "anchor.json"


def _parse_anchor(text: str) -> tuple[int, str]:
    event_id, _, digest = text.partition(":")
    if not event_id.isdigit() or len(digest) != 64:
        raise typer.BadParameter("an anchor is EVENT_ID:HASH (the 64-hex hash printed by a clean verify)")
    return int(event_id), digest


@audit_app.command("verify")
def verify_command(
    anchor: Annotated[str | None, typer.Option(help="EVENT_ID:HASH of a head recorded earlier (default: the "
                                                   "last one this command saved in var/audit/anchor.json)")] = None,
) -> None:
    """Recompute the hash chain; name the first edited, deleted or reordered event."""
    settings = load_settings()
    anchor_file = _anchor_file(settings)
    expected = _parse_anchor(anchor) if anchor else None
    if expected is None and anchor_file.exists():
        saved = json.loads(anchor_file.read_text())
        expected = (int(saved["id"]), str(saved["hash"]))

    async def run() -> Verification:
        async with checked_database(settings) as database:
            total = await count_events(database)
            with _progress() as progress:
                task = progress.add_task("verifying", total=total)
                return await verify_chain(database, anchor=expected,
                                          progress=lambda n: progress.advance(task, n))

    result = asyncio.run(run())
    if result.problem is not None:
        problem = result.problem
        raise _fail(f"audit trail broken at event {problem.event_id}: {problem.kind} — {problem.reason} "
                    f"({result.checked} events verified before it)")
    typer.echo(f"audit trail intact: {result.checked} events; head {result.head_id}:{result.head_hash}")
    if result.head_id is not None:
        anchor_file.parent.mkdir(parents=True, exist_ok=True)
        anchor_file.write_text(json.dumps({"id": result.head_id, "hash": result.head_hash}))


def _moment(text: str, *, end: bool) -> datetime:
    """An ISO date (an Asia/Shanghai day, whole) or a datetime with its UTC offset."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return business_midnight(day + timedelta(days=1) if end else day)
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is neither YYYY-MM-DD nor an ISO datetime") from exc
    if moment.tzinfo is None:
        raise typer.BadParameter(f"{text!r} has no UTC offset (write +08:00 or Z)")
    return moment


@audit_app.command("export")
def export_command(
    start: Annotated[str, typer.Option("--from", help="first day (YYYY-MM-DD, Asia/Shanghai) or ISO datetime")],
    end: Annotated[str, typer.Option("--to", help="last day, inclusive (YYYY-MM-DD), or ISO datetime, exclusive")],
    output: Annotated[Path | None, typer.Option(help="NDJSON file to write (default: standard output)")] = None,
) -> None:
    """Export the events of a period as NDJSON, hashes included (verifiable offline)."""
    settings = load_settings()
    first, last = _moment(start, end=False), _moment(end, end=True)
    if last <= first:
        raise typer.BadParameter("--to must come after --from")

    async def run() -> int:
        async with checked_database(settings) as database:
            with (output.open("w", encoding="utf-8") if output else _stdout()) as sink:
                written = await export_events(database, first, last, lambda line: _write(sink, line))
            async with database.transaction() as session:
                record(session, SystemClock(), None, Action.EXPORT, "audit_event",
                       detail=f"{written} events {first.isoformat()}..{last.isoformat()}",
                       actor=_operator(), actor_kind=OPERATOR_KIND)
            return written

    written = asyncio.run(run())
    console.print(f"exported {written} events")


def _write(sink: Any, line: str) -> None:
    sink.write(line + "\n")


class _stdout:
    def __enter__(self) -> Any:
        return sys.stdout

    def __exit__(self, *_: object) -> None:
        sys.stdout.flush()


# --- keys -------------------------------------------------------------------------------------------

@keys_app.command("generate")
def generate_command() -> None:
    """Print a new random 256-bit key (base64url) for the environment."""
    typer.echo(generate_key())


@keys_app.command("rotate")
def rotate_command(batch_size: Annotated[int, typer.Option(min=1, max=10000)] = key_rotation.BATCH) -> None:
    """Re-encrypt every encrypted column under the current key; the platform keeps serving meanwhile."""
    settings = load_settings()
    cipher = field_cipher(settings)

    async def run() -> int:
        total = 0
        async with checked_database(settings) as database:
            with _progress() as progress:
                for item in key_rotation.encrypted_columns():
                    stale = await key_rotation.count_stale(database, cipher, item)
                    task = progress.add_task(item.label, total=stale)
                    result = await key_rotation.rotate_column(
                        database, cipher, item, batch=batch_size, progress=partial(progress.advance, task))
                    total += result.rotated
            return total

    try:
        rotated = asyncio.run(run())
    except key_rotation.UnknownKeyError as exc:
        raise _fail(f"{exc}. Add the old key to CITYHEALTH_PREVIOUS_FIELD_ENCRYPTION_KEYS and run again.") from exc
    typer.echo(f"re-encrypted {rotated} values under key {cipher.current_key_id}; nothing is left under older keys")


# --- users ------------------------------------------------------------------------------------------

def _run_in_transaction(settings: Settings, work: Any) -> Any:
    async def run() -> Any:
        async with checked_database(settings) as database, database.transaction() as session:
            return await work(session)

    try:
        return asyncio.run(run())
    except DomainError as exc:
        raise _fail(f"{exc.message}", 2) from exc


@users_app.command("create")
def create_user_command(
    username: str,
    role: Annotated[list[Role], typer.Option(help="a role; repeat for several")],
    display_name: Annotated[str | None, typer.Option(help="shown in the staff UI (default: the username)")] = None,
    organization_id: Annotated[int | None, typer.Option(help="the organization the user works for")] = None,
) -> None:
    """Create a staff user; prints the TOTP provisioning URI to scan (shown once)."""
    settings = load_settings()
    password = typer.prompt("password", hide_input=True, confirmation_prompt=True)

    async def work(session: Any) -> staff.NewStaffUser:
        created = await staff.create_staff_user(session, SystemClock(), settings, username=username,
                                                display_name=display_name or username, password=password,
                                                roles=frozenset(role), organization_id=organization_id)
        record(session, SystemClock(), None, Action.CREATE, "staff_user", resource_id=created.user.id,
               actor=_operator(), actor_kind=OPERATOR_KIND)
        return created

    created = _run_in_transaction(settings, work)
    typer.echo(f"created staff user {created.user.id} ({username})")
    if created.totp_uri:
        typer.echo(f"scan into the authenticator app (shown once): {created.totp_uri}")


def _user_command(username: str, action: str) -> None:
    settings = load_settings()
    done = {"unlock": "unlocked", "deactivate": "deactivated"}[action]

    async def work(session: Any) -> None:
        user = await staff.staff_user_named(session, username)
        operation = staff.unlock if action == "unlock" else staff.deactivate
        await operation(session, SystemClock(), user.id)
        record(session, SystemClock(), None, Action.UPDATE if action == "unlock" else Action.DEACTIVATE,
               "staff_user", resource_id=user.id, detail=action, actor=_operator(), actor_kind=OPERATOR_KIND)

    _run_in_transaction(settings, work)
    typer.echo(f"{username}: {done}")


@users_app.command("unlock")
def unlock_command(username: str) -> None:
    """Lift a login lockout."""
    _user_command(username, "unlock")


@users_app.command("deactivate")
def deactivate_command(username: str) -> None:
    """Disable a user and end their sessions."""
    _user_command(username, "deactivate")


# --- clients ----------------------------------------------------------------------------------------

def _read_jwks(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"{path}: not a readable JSON file ({exc})") from exc
    if isinstance(document, dict) and "keys" not in document:
        document = {"keys": [document]}  # a single JWK
    if not isinstance(document, dict):
        raise typer.BadParameter(f"{path}: expected a JWK or a JWK Set")
    return document


@clients_app.command("register")
def register_command(
    client_id: str,
    name: Annotated[str, typer.Option(help="what the client is, e.g. 鼓楼医院 HIS")],
    scope: Annotated[list[str], typer.Option(help="a scope it may request; repeat for several")],
    organization_id: Annotated[int | None, typer.Option(help="the organization it writes as")] = None,
    client_app_id: Annotated[int | None, typer.Option(help="the client app (booking front-end) it is")] = None,
    jwk_file: Annotated[Path | None, typer.Option(help="its public key: a JWK or a JWK Set (JSON)")] = None,
    jwks_url: Annotated[str | None, typer.Option(help="or the https URL of its JWK Set")] = None,
) -> None:
    """Register a machine client with its public key; it then signs assertions with the private key."""
    settings = load_settings()
    jwks = _read_jwks(jwk_file) if jwk_file else None

    async def work(session: Any) -> None:
        await register_client(session, SystemClock(), None, client_id=client_id, name=name, scopes=" ".join(scope),
                              organization_id=organization_id, client_app_id=client_app_id, jwks=jwks,
                              jwks_url=jwks_url, allow_http_jwks_url=settings.env.value != "production")

    _run_in_transaction(settings, work)
    typer.echo(f"registered client {client_id}; token URL (the assertion's aud): "
               f"{settings.public_url('/api/auth/token')}")


@clients_app.command("revoke")
def revoke_command(client_id: str) -> None:
    """Revoke a client: no new tokens; tokens it holds stop working within 60 s."""
    settings = load_settings()

    async def work(session: Any) -> None:
        await revoke_client(session, SystemClock(), None, client_id)

    _run_in_transaction(settings, work)
    typer.echo(f"revoked client {client_id}")


@clients_app.command("list")
def list_command() -> None:
    """The registered clients and their scopes."""
    settings = load_settings()

    async def work(session: Any) -> list[str]:
        return [f"{c.client_id}\t{'revoked' if c.revoked_at else 'active'}\torg={c.organization_id}\t{c.scopes}"
                for c in await registered_clients(session)]

    for line in _run_in_transaction(settings, work):
        typer.echo(line)


# --- sms --------------------------------------------------------------------------------------------


@sms_app.command("outbox")
def sms_outbox_command(
    limit: Annotated[int, typer.Option(min=1, max=200, help="texts taken at most")] = 20,
) -> None:
    """Development sink: take the waiting texts (as a gateway would: marked delivered, erased) and print them.

    Refused when CITYHEALTH_ENV is production: there only the SMS gateway may take them.
    """
    settings = load_settings()

    async def run() -> list[sms.Delivered]:
        async with checked_database(settings) as database, database.transaction() as session:
            taken = await sms.deliver_to_dev_sink(session, SystemClock(), settings, limit=limit)
            record(session, SystemClock(), None, Action.EXPORT, "sms_outbox", detail=f"dev sink: {len(taken)}",
                   actor=_operator(), actor_kind=OPERATOR_KIND)
            return taken

    try:
        taken = asyncio.run(run())
    except DomainError as exc:
        raise _fail(exc.message) from None
    for message in taken:
        typer.echo(f"{message.created_at}  {message.phone}  {message.text}")
    console.print(f"{len(taken)} text(s) taken from the outbox")
