"""`cityhealth telemed …`: the networks, a join and a leave, the members and coverage from the command line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cityhealth.cli import app
from cityhealth.clock import SystemClock
from cityhealth.db.engine import Database
from cityhealth.registry import service as registry_service
from tests.factories.registry import SMALL_AREA_TREE, organization_payload

runner = CliRunner()


@pytest.fixture
def configured(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", database_url)
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(tmp_path / "var"))
    return database_url


def _an_organization(url: str) -> int:
    async def run() -> int:
        database = Database(url)
        try:
            clock = SystemClock()
            async with database.transaction() as session:
                for area in SMALL_AREA_TREE:
                    await registry_service.insert_area(session, clock, area)
                return (
                    await registry_service.insert_organization(session, clock, organization_payload(area_code="320102"))
                ).id
        finally:
            await database.dispose()

    return asyncio.run(run())


def test_an_operator_lists_the_networks(configured: str) -> None:
    listed = runner.invoke(app, ["telemed", "networks"])
    assert listed.exit_code == 0, listed.output
    for network in ("teleconsultation", "ecg", "lab", "imaging", "pathology"):
        assert network in listed.output


def test_an_organization_joins_and_leaves_and_coverage_follows(configured: str) -> None:
    organization_id = _an_organization(configured)
    joined = runner.invoke(
        app,
        [
            "telemed",
            "join",
            "ecg",
            "--organization-id",
            str(organization_id),
            "--kind",
            "community_health_centre",
            "--role",
            "requester",
            "--joined-on",
            "2022-01-01",
        ],
    )
    assert joined.exit_code == 0, joined.output
    assert "member 1" in joined.output
    members = runner.invoke(app, ["telemed", "members", "ecg"])
    assert "320102" in members.output
    covered = runner.invoke(app, ["telemed", "coverage", "ecg"])
    assert "covered 1, not covered 3" in covered.output
    left = runner.invoke(app, ["telemed", "leave", "1", "--left-on", "2022-02-01"])
    assert left.exit_code == 0, left.output
    assert "covered 0, not covered 4" in runner.invoke(app, ["telemed", "coverage", "ecg"]).output


def test_a_join_of_an_unknown_organization_is_refused_naming_the_field(configured: str) -> None:
    refused = runner.invoke(
        app,
        [
            "telemed",
            "join",
            "ecg",
            "--organization-id",
            "999",
            "--kind",
            "aid",
            "--role",
            "requester",
            "--joined-on",
            "2022-01-01",
        ],
    )
    assert refused.exit_code == 1
    assert "organization_id" in refused.output
