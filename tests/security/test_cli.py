"""The operator's security commands: audit verify/export, keys generate/rotate, users, clients."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from cityhealth.cli import app as cli
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.security.audit import Action, record_now
from cityhealth.security.crypto import FieldCipher, Purpose
from cityhealth.security.models import AuditEvent, MachineClient, StaffUser
from tests.security.support import ClientKey

runner = CliRunner()
T = TypeVar("T")
PASSWORD = "a long enough password"


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CITYHEALTH_ENV", "test")
    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(settings.var_dir))
    return settings


def _db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        database = Database(settings.database_url)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(run())


def _seed_events(settings: Settings, count: int, at: datetime) -> None:
    async def work(database: Database) -> None:
        clock = SimulatedClock(at)
        for n in range(count):
            await record_now(database, clock, None, Action.READ, "resident", resident_ids=[n + 1])

    _db(settings, work)


def _events(settings: Settings) -> list[AuditEvent]:
    async def work(database: Database) -> list[AuditEvent]:
        async with database.sessions() as session:
            return list((await session.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars().all())

    return _db(settings, work)


def _sql(settings: Settings, statement: str) -> None:
    async def work(database: Database) -> None:
        async with database.transaction() as session:
            if database.is_sqlite:
                await session.execute(text("DROP TRIGGER audit_events_no_delete"))
                await session.execute(text("DROP TRIGGER audit_events_no_update"))
            else:
                await session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
            await session.execute(text(statement))

    _db(settings, work)


def test_audit_verify_reports_an_intact_chain_and_remembers_its_head(env: Settings) -> None:
    _seed_events(env, 5, datetime(2022, 6, 15, 2, tzinfo=UTC))
    result = runner.invoke(cli, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    head = _events(env)[-1]
    assert f"5 events; head {head.id}:{head.hash}" in result.stdout
    assert json.loads((env.var_dir / "audit" / "anchor.json").read_text()) == {"id": head.id, "hash": head.hash}


def test_audit_verify_names_the_first_edited_event(env: Settings) -> None:
    _seed_events(env, 5, datetime(2022, 6, 15, 2, tzinfo=UTC))
    victim = _events(env)[2]
    _sql(env, f"UPDATE audit_events SET resident_id = 99 WHERE id = {victim.id}")  # noqa: S608 - an int
    result = runner.invoke(cli, ["audit", "verify"])
    assert result.exit_code == 1
    assert f"broken at event {victim.id}: edited" in result.output


def test_audit_verify_detects_removed_newest_events_from_the_saved_anchor(env: Settings) -> None:
    _seed_events(env, 5, datetime(2022, 6, 15, 2, tzinfo=UTC))
    assert runner.invoke(cli, ["audit", "verify"]).exit_code == 0
    last = _events(env)[-1]
    _sql(env, f"DELETE FROM audit_events WHERE id = {last.id}")  # noqa: S608 - an int
    result = runner.invoke(cli, ["audit", "verify"])
    assert result.exit_code == 1
    assert f"broken at event {last.id}: deleted" in result.output


def test_audit_export_writes_the_period_as_ndjson_and_is_itself_audited(env: Settings, tmp_path: Path) -> None:
    _seed_events(env, 2, datetime(2022, 6, 14, 15, 30, tzinfo=UTC))  # 23:30 on 14 June in Shanghai
    _seed_events(env, 3, datetime(2022, 6, 15, 2, tzinfo=UTC))
    output = tmp_path / "june15.ndjson"
    result = runner.invoke(cli, ["audit", "export", "--from", "2022-06-15", "--to", "2022-06-15",
                                 "--output", str(output)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [line["resident_id"] for line in lines] == [1, 2, 3]
    assert {"hash", "prev_hash", "occurred_at", "actor", "request_id"} <= set(lines[0])
    assert _events(env)[-1].action == "export"
    assert _events(env)[-1].actor_kind == "operator"


def test_audit_export_refuses_a_time_without_offset(env: Settings) -> None:
    result = runner.invoke(cli, ["audit", "export", "--from", "2022-06-15T00:00", "--to", "2022-06-16"])
    assert result.exit_code == 2
    assert "UTC offset" in result.output


def test_users_create_prints_the_enrolment_uri_once(env: Settings) -> None:
    result = runner.invoke(cli, ["users", "create", "doctor.wang", "--role", "reading_centre_doctor"],
                           input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "otpauth://totp/cityhealth:doctor.wang" in result.stdout
    assert PASSWORD not in result.stdout

    async def user(database: Database) -> StaffUser | None:
        async with database.sessions() as session:
            return (await session.execute(select(StaffUser))).scalar()

    created = _db(env, user)
    assert created is not None
    assert (created.username, created.roles) == ("doctor.wang", "reading_centre_doctor")
    assert created.password_hash.startswith("$argon2id$")


def test_users_deactivate_and_unlock(env: Settings) -> None:
    runner.invoke(cli, ["users", "create", "editor", "--role", "bulletin_editor"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert "deactivated" in runner.invoke(cli, ["users", "deactivate", "editor"]).stdout
    assert "unlocked" in runner.invoke(cli, ["users", "unlock", "editor"]).stdout
    missing = runner.invoke(cli, ["users", "unlock", "nobody"])
    assert missing.exit_code == 2
    assert "no staff user 'nobody'" in missing.output


def test_users_create_refuses_an_organization_that_does_not_exist(env: Settings) -> None:
    result = runner.invoke(cli, ["users", "create", "clerk", "--role", "bulletin_editor", "--organization-id",
                                 "424242"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 2
    assert "organization_id: no organization 424242" in result.output

    async def users(database: Database) -> list[StaffUser]:
        async with database.sessions() as session:
            return list((await session.execute(select(StaffUser))).scalars())

    assert _db(env, users) == []


def test_clients_register_list_and_revoke(env: Settings, tmp_path: Path) -> None:
    key = ClientKey.es384()
    jwk_file = tmp_path / "his.jwk.json"
    jwk_file.write_text(json.dumps(key.public_jwk))
    result = runner.invoke(cli, ["clients", "register", "his-gulou", "--name", "鼓楼医院 HIS",
                                 "--scope", "collection.upload", "--scope", "registry.read",
                                 "--jwk-file", str(jwk_file)])
    assert result.exit_code == 0, result.output
    listed = runner.invoke(cli, ["clients", "list"]).stdout
    assert "his-gulou\tactive" in listed
    assert "collection.upload registry.read" in listed
    assert runner.invoke(cli, ["clients", "revoke", "his-gulou"]).exit_code == 0
    assert "his-gulou\trevoked" in runner.invoke(cli, ["clients", "list"]).stdout


def test_clients_register_refuses_a_private_key(env: Settings, tmp_path: Path) -> None:
    from jwt.algorithms import ECAlgorithm

    key = ClientKey.es384()
    jwk_file = tmp_path / "private.json"
    jwk_file.write_text(str(ECAlgorithm.to_jwk(key.private)))
    result = runner.invoke(cli, ["clients", "register", "his-x", "--name", "x", "--scope", "registry.read",
                                 "--jwk-file", str(jwk_file)])
    assert result.exit_code == 2
    assert "public key only" in result.output

    async def count(database: Database) -> int:
        async with database.sessions() as session:
            return len((await session.execute(select(MachineClient))).all())

    assert _db(env, count) == 0


def test_keys_generate_prints_a_fresh_256_bit_key() -> None:
    first = runner.invoke(cli, ["keys", "generate"]).stdout.strip()
    second = runner.invoke(cli, ["keys", "generate"]).stdout.strip()
    assert first != second
    assert len(base64.urlsafe_b64decode(first + "=" * (-len(first) % 4))) == 32


def test_keys_rotate_reencrypts_under_the_new_key(env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = env.secret("field_encryption_key"), b"n" * 32
    lookup = env.secret("lookup_hmac_key")
    runner.invoke(cli, ["users", "create", "agent", "--role", "hotline_agent"], input=f"{PASSWORD}\n{PASSWORD}\n")
    monkeypatch.setenv("CITYHEALTH_FIELD_ENCRYPTION_KEY", base64.urlsafe_b64encode(new).decode())
    monkeypatch.setenv("CITYHEALTH_PREVIOUS_FIELD_ENCRYPTION_KEYS", base64.urlsafe_b64encode(old).decode())
    result = runner.invoke(cli, ["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 1 values" in result.stdout

    async def secret(database: Database) -> Any:
        async with database.sessions() as session:
            return (await session.execute(select(StaffUser.totp_secret_enc))).scalar_one()

    stored = _db(env, secret)
    assert FieldCipher(new, lookup).decrypt(Purpose.STAFF_TOTP_SECRET, stored)
    assert "re-encrypted 0 values" in runner.invoke(cli, ["keys", "rotate"]).stdout
