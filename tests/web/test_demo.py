"""The demo operator: created or reset by `cityhealth web create-demo-operator`, development only."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from typer.testing import CliRunner

from cityhealth.cli import app as cli_app
from cityhealth.clock import SimulatedClock
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.errors import Forbidden, Unauthenticated
from cityhealth.security import staff
from cityhealth.security.principals import Role, Scope
from cityhealth.security.sessions import ClientStateCache, ensure_live
from cityhealth.web.demo import DEMO_USERNAME, DemoOperator, current_totp_code, ensure_demo_operator

runner = CliRunner()


async def _login(database: Database, clock: SimulatedClock, settings: Settings, password: str,
                 secret: str) -> staff.LoginResult:
    async with database.transaction() as session:
        return await staff.login(session, clock, settings, username=DEMO_USERNAME, password=password,
                                 totp=pyotp.TOTP(secret).at(clock.now()), source_address=None)


async def test_the_demo_operator_is_a_data_quality_operator_with_a_second_factor(
        database: Database, clock: SimulatedClock, development_settings: Settings,
        demo_operator: DemoOperator) -> None:
    assert demo_operator.created
    assert demo_operator.totp_uri.startswith("otpauth://totp/")
    assert pyotp.parse_uri(demo_operator.totp_uri).secret == demo_operator.totp_secret
    result = await _login(database, clock, development_settings, demo_operator.password, demo_operator.totp_secret)
    assert result.principal is not None
    assert result.principal.roles == frozenset({Role.DATA_QUALITY_OPERATOR})
    assert result.principal.has(Scope.COLLECTION_READ)


async def test_running_it_again_resets_the_password_and_the_second_factor(
        database: Database, clock: SimulatedClock, development_settings: Settings,
        demo_operator: DemoOperator) -> None:
    before = await _login(database, clock, development_settings, demo_operator.password, demo_operator.totp_secret)
    assert before.principal is not None
    clock.advance(timedelta(seconds=30))  # the next TOTP step: a code is accepted once
    async with database.transaction() as session:
        again = await ensure_demo_operator(session, clock, development_settings, actor="test")
    assert not again.created
    async with database.transaction() as session:
        with pytest.raises(Unauthenticated):  # the session opened before the reset has ended
            await ensure_live(session, clock, before.principal, idle_timeout_s=900, clients=ClientStateCache())
    assert (again.password, again.totp_secret) != (demo_operator.password, demo_operator.totp_secret)
    old = await _login(database, clock, development_settings, demo_operator.password, demo_operator.totp_secret)
    assert old.principal is None
    new = await _login(database, clock, development_settings, again.password, again.totp_secret)
    assert new.principal is not None


async def test_the_demo_operator_is_refused_outside_development(
        database: Database, clock: SimulatedClock, settings: Settings) -> None:
    async with database.transaction() as session:
        with pytest.raises(Forbidden) as refused:
            await ensure_demo_operator(session, clock, settings, actor="test")
    assert (refused.value.field, refused.value.rule) == ("env", "env.development")


async def test_the_current_code_is_the_authenticators(
        database: Database, clock: SimulatedClock, development_settings: Settings,
        demo_operator: DemoOperator) -> None:
    async with database.transaction() as session:
        code = await current_totp_code(session, clock, development_settings, DEMO_USERNAME, actor="test")
    assert code == pyotp.TOTP(demo_operator.totp_secret).at(clock.now())


async def test_the_current_code_is_refused_outside_development(
        database: Database, clock: SimulatedClock, settings: Settings, demo_operator: DemoOperator) -> None:
    async with database.transaction() as session:
        with pytest.raises(Forbidden):
            await current_totp_code(session, clock, settings, DEMO_USERNAME, actor="test")


def test_cli_prints_the_credentials_and_the_current_code(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYHEALTH_ENV", "development")
    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", database_url)
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(tmp_path / "var"))
    created = runner.invoke(cli_app, ["web", "create-demo-operator"])
    assert created.exit_code == 0, created.output
    printed = {name.strip(): value.strip() for name, _, value in
               (line.partition(": ") for line in created.stdout.splitlines()[1:])}
    assert printed["username"] == DEMO_USERNAME
    assert len(printed["password"]) >= 12
    assert pyotp.parse_uri(printed["otpauth URI"]).secret == printed["TOTP secret"]
    code = runner.invoke(cli_app, ["web", "totp-code", DEMO_USERNAME])
    assert code.exit_code == 0, code.output
    assert pyotp.TOTP(printed["TOTP secret"]).verify(code.stdout.strip(), valid_window=1)


def test_cli_refuses_the_code_in_production(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cityhealth.config import generate_key

    monkeypatch.setenv("CITYHEALTH_ENV", "production")
    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", database_url)
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(tmp_path / "var"))
    for name in ("FIELD_ENCRYPTION_KEY", "LOOKUP_HMAC_KEY", "TOKEN_SIGNING_KEY"):
        monkeypatch.setenv(f"CITYHEALTH_{name}", generate_key())
    monkeypatch.setenv("CITYHEALTH_PUBLIC_BASE_URL", "https://health.example.gov.cn")
    result = runner.invoke(cli_app, ["web", "totp-code", DEMO_USERNAME])
    assert result.exit_code == 2
    assert "development only" in result.output


def test_the_entry_point_mounting_only_this_command_still_sees_every_table(
        database_url: str, tmp_path: Path) -> None:
    # `cityhealth web …` mounts the web group alone; the staff user it writes references another room's table.
    import os
    import subprocess
    import sys

    env = {**os.environ, "CITYHEALTH_ENV": "development", "CITYHEALTH_DATABASE_URL": database_url,
           "CITYHEALTH_VAR_DIR": str(tmp_path / "var")}
    result = subprocess.run([sys.executable, "-c", "from cityhealth.cli import main; main()",
                             "web", "create-demo-operator"], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert DEMO_USERNAME in result.stdout
