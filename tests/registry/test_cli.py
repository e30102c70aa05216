"""`cityhealth registry …`: reference load, file import (CSV, JSON, NDJSON), listing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from tests.factories.registry import count, resident_payload
from typer.testing import CliRunner

from cityhealth.cli import app
from cityhealth.config import Settings
from cityhealth.db.engine import Database
from cityhealth.errors import SchemaOutOfDate
from cityhealth.registry.models import Area, Organization, Resident

runner = CliRunner()


@pytest.fixture
def environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CITYHEALTH_ENV", "test")
    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(settings.var_dir))
    return settings


def _count(settings: Settings, model: Any) -> int:
    async def run() -> int:
        database = Database(settings.database_url)
        try:
            return await count(database, model)
        finally:
            await database.dispose()

    return asyncio.run(run())


def _write_csv(path: Path, header: str, *lines: str) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def test_load_reference_twice_reports_the_same_records_unchanged(environment: Settings) -> None:
    first = runner.invoke(app, ["registry", "load-reference", "nanjing"])
    assert first.exit_code == 0, first.output
    assert "areas: 23 rows — 23 created, 0 updated, 0 unchanged" in first.stdout
    assert "organizations: 59 rows — 59 created" in first.stdout
    assert "client-apps: 7 rows — 7 created" in first.stdout
    second = runner.invoke(app, ["registry", "load-reference"])
    assert "organizations: 59 rows — 0 created, 0 updated, 59 unchanged" in second.stdout
    assert _count(environment, Organization) == 59


def test_unknown_reference_set_exits_1(environment: Settings) -> None:
    result = runner.invoke(app, ["registry", "load-reference", "atlantis"])
    assert result.exit_code == 1
    assert "no reference data set atlantis; available: nanjing [reference.unknown]" in result.stderr


def test_csv_import_is_idempotent(environment: Settings, tmp_path: Path) -> None:
    runner.invoke(app, ["registry", "load-reference"])
    file = _write_csv(tmp_path / "orgs.csv", "code,name,kind,area_code,level,uscc",
                      "H900,测试一院,hospital,320106,三级,", "H901,测试社区中心,community_health_centre,320102,,")
    first = runner.invoke(app, ["registry", "import", "organizations", str(file)])
    assert first.exit_code == 0, first.output
    assert "organizations: 2 rows — 2 created, 0 updated, 0 unchanged" in first.stdout
    second = runner.invoke(app, ["registry", "import", "organizations", str(file)])
    assert "organizations: 2 rows — 0 created, 0 updated, 2 unchanged" in second.stdout
    assert _count(environment, Organization) == 61


def test_json_array_and_ndjson_are_read(environment: Settings, tmp_path: Path) -> None:
    areas = [{"code": "320000", "name": "江苏省", "level": "province"},
             {"code": "320100", "name": "南京市", "level": "city", "parent_code": "320000"}]
    array = tmp_path / "areas.json"
    array.write_text(json.dumps(areas, ensure_ascii=False), encoding="utf-8")
    lines = tmp_path / "more.ndjson"
    lines.write_text(json.dumps({"code": "320102", "name": "玄武区", "level": "district",
                                 "parent_code": "320100"}, ensure_ascii=False) + "\n\n", encoding="utf-8")
    assert runner.invoke(app, ["registry", "import", "areas", str(array)]).exit_code == 0
    result = runner.invoke(app, ["registry", "import", "areas", str(lines)])
    assert result.exit_code == 0, result.output
    assert _count(environment, Area) == 3


def test_an_invalid_row_writes_nothing_and_lists_row_field_and_rule(environment: Settings, tmp_path: Path) -> None:
    runner.invoke(app, ["registry", "load-reference"])
    file = _write_csv(tmp_path / "orgs.csv", "code,name,kind,area_code",
                      "H900,测试一院,hospital,320106",
                      "H901,测试二院,clinic,320106",
                      "H902,测试三院,hospital,999999")
    result = runner.invoke(app, ["registry", "import", "organizations", str(file)])
    assert result.exit_code == 1
    assert "2 of 3 organizations rows are invalid; nothing was imported" in result.stderr
    assert "row 3: kind [organization.kind] (value clinic)" in result.stderr
    assert "row 4: area_code [area.unknown] (value 999999)" in result.stderr
    assert _count(environment, Organization) == 59


def test_resident_import_masks_numbers_in_its_errors(environment: Settings, tmp_path: Path) -> None:
    runner.invoke(app, ["registry", "load-reference"])
    good = resident_payload(1)
    bad_number = good["id_number"][:17] + ("0" if good["id_number"][17] != "0" else "1")
    file = _write_csv(tmp_path / "residents.csv", "id_number,name,sex,birth_date,phone,address_area_code",
                      f"{good['id_number']},张三,1,1985-03-14,{good['phone']},320102",
                      f"{bad_number},李四,,,,320102")
    result = runner.invoke(app, ["registry", "import", "residents", str(file)])
    assert result.exit_code == 1
    assert "row 3: id_number [id_number.check_char]" in result.stderr
    assert bad_number not in result.output
    assert _count(environment, Resident) == 0
    only_good = _write_csv(tmp_path / "good.csv", "id_number,name,sex,birth_date,phone,address_area_code",
                           f"{good['id_number']},张三,1,1985-03-14,{good['phone']},320102")
    assert runner.invoke(app, ["registry", "import", "residents", str(only_good)]).exit_code == 0
    again = runner.invoke(app, ["registry", "import", "residents", str(only_good)])
    assert "residents: 1 rows — 0 created, 0 updated, 1 unchanged" in again.stdout
    assert _count(environment, Resident) == 1


def test_an_unreadable_file_exits_1_saying_where(environment: Settings, tmp_path: Path) -> None:
    broken = tmp_path / "areas.json"
    broken.write_text('[{"code": "320000",', encoding="utf-8")
    result = runner.invoke(app, ["registry", "import", "areas", str(broken)])
    assert result.exit_code == 1
    assert "line 1: not JSON" in result.stderr
    unknown = tmp_path / "areas.xlsx"
    unknown.write_bytes(b"PK")
    assert "unknown format .xlsx" in runner.invoke(app, ["registry", "import", "areas", str(unknown)]).stderr


def test_list_organizations_prints_a_table(environment: Settings) -> None:
    runner.invoke(app, ["registry", "load-reference"])
    result = runner.invoke(app, ["registry", "list-organizations", "--kind", "district_platform"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "organizations (12 of 12)" in result.stdout
    assert "江北新区卫生信息平台" in result.stdout


def test_registry_commands_refuse_a_schema_behind_the_code(empty_database_url: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", empty_database_url)
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(tmp_path / "var"))
    result = runner.invoke(app, ["registry", "load-reference"])
    assert isinstance(result.exception, SchemaOutOfDate)
