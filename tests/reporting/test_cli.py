"""`cityhealth bulletin`: editions written where asked, warnings on stderr, bad options refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from cityhealth.cli import app
from cityhealth.reporting import sources
from cityhealth.reporting.model import BulletinData
from tests.reporting.conftest import scenario_path

runner = CliRunner()


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CITYHEALTH_VAR_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


def test_markdown_edition_with_news_and_issue_numbers(nanjing_text: str, tmp_path: Path, var_dir: Path) -> None:
    news = tmp_path / "news.md"
    news.write_text("## 简讯\n\n- 6月，区域影像平台开展远程影像会诊399例。\n", encoding="utf-8")
    output = tmp_path / "out" / "june.md"
    result = runner.invoke(app, [
        "bulletin", "--month", "2022-06", "--format", "md", "--scenario", str(scenario_path()),
        "--news", str(news), "--issue", "7", "--total-issue", "125", "--published", "2022-07-28",
        "--output", str(output),
    ])
    assert result.exit_code == 0, result.output
    text = output.read_text(encoding="utf-8")
    assert "2022年第7期（总第125期）" in text
    assert "2022年7月28日" in text
    assert "- 6月，区域影像平台开展远程影像会诊399例。" in text
    assert "warning" not in result.stderr


def test_default_output_is_under_var_bulletins(nanjing_text: str, var_dir: Path) -> None:
    result = runner.invoke(
        app, ["bulletin", "--month", "2022-06", "--format", "json", "--scenario", str(scenario_path())]
    )
    assert result.exit_code == 0, result.output
    assert (var_dir / "bulletins" / "bulletin-2022-06.json").read_text(encoding="utf-8") == nanjing_text


def test_warnings_are_printed_and_the_bulletin_still_written(
    nanjing_scenario: dict[str, Any], tmp_path: Path, var_dir: Path
) -> None:
    nanjing_scenario["collection"]["hospitals"][0]["outpatient_conformance_basis"] = None
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(nanjing_scenario, ensure_ascii=False), encoding="utf-8")
    output = tmp_path / "june.html"
    result = runner.invoke(app, [
        "bulletin", "--month", "2022-06", "--scenario", str(broken), "--output", str(output),
    ])
    assert result.exit_code == 0, result.output
    assert "warning: collection.hospitals [江苏省中医院]" in result.stderr
    assert "(pct_without_basis)" in result.stderr
    assert output.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_a_malformed_month_is_refused(var_dir: Path) -> None:
    result = runner.invoke(app, ["bulletin", "--month", "2022-6", "--format", "json"])
    assert result.exit_code == 2
    assert "YYYY-MM" in result.output


def test_a_scenario_of_another_month_is_refused(nanjing_text: str, var_dir: Path) -> None:
    result = runner.invoke(app, ["bulletin", "--month", "2022-07", "--scenario", str(scenario_path())])
    assert result.exit_code == 2
    assert not (var_dir / "bulletins").exists()


# On PostgreSQL the read is one REPEATABLE READ snapshot: an isolation level set after the transaction's first
# statement is ignored with this warning, so the sources would each read their own instant.
@pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")
def test_the_database_edition_reads_through_the_sources(
    nanjing: BulletinData, database_url: str, tmp_path: Path, var_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, str | None]] = []

    async def gather(session: AsyncSession, month: str, *, region_code: str | None = None) -> BulletinData:
        asked.append((month, region_code))
        return nanjing

    monkeypatch.setenv("CITYHEALTH_DATABASE_URL", database_url)
    monkeypatch.setattr(sources, "gather", gather)
    output = tmp_path / "june.json"
    result = runner.invoke(app, [
        "bulletin", "--month", "2022-06", "--format", "json", "--region", "320100", "--output", str(output),
    ])
    assert result.exit_code == 0, result.output
    assert asked == [("2022-06", "320100")]
    assert json.loads(output.read_text(encoding="utf-8"))["booking"] == nanjing.model_dump(mode="json")["booking"]


@pytest.mark.parametrize(("content", "said"), [
    ("## 要闻\n\n正文".encode("gb18030"), "is not UTF-8 text"),
    (b"## \xe8\xa6\x81\xe9\x97\xbb\n\x00\x01", "holds a NUL character"),
])
def test_a_news_file_that_is_not_markdown_text_is_refused_and_nothing_written(
    tmp_path: Path, var_dir: Path, content: bytes, said: str
) -> None:
    news = tmp_path / "news.md"
    news.write_bytes(content)
    output = tmp_path / "june.html"
    result = runner.invoke(app, ["bulletin", "--month", "2022-06", "--scenario", str(scenario_path()),
                                 "--news", str(news), "--output", str(output)])
    assert result.exit_code == 1
    assert said in result.stderr
    assert not output.exists()
