"""Settings: defaults, generated development keys, production's explicit keys, the simulated clock."""

from __future__ import annotations

import os
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cityhealth.app import create_app
from cityhealth.clock import SimulatedClock, business_date
from cityhealth.config import Environment, Settings, generate_key, load_settings
from cityhealth.errors import ConfigurationError


def test_database_defaults_to_a_sqlite_file_under_var(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var")
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'var' / 'cityhealth.sqlite'}"


def test_development_keys_are_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var")
    key = settings.secret("field_encryption_key")
    path = tmp_path / "var" / "secrets" / "field_encryption_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert settings.secret("field_encryption_key") == key
    assert len(key) == 32
    assert settings.secret("lookup_hmac_key") != key


def test_processes_starting_together_read_one_whole_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two listener processes started at once: one found the key file its twin had created and not yet written,
    read "", and failed to start (CI). Here the writing is slowed so that the others look meanwhile."""
    opened = os.fdopen

    def slowly(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.05)
        return opened(*args, **kwargs)

    monkeypatch.setattr(os, "fdopen", slowly)
    start = threading.Barrier(8)

    def read_key() -> bytes:
        start.wait()
        return Settings(var_dir=tmp_path / "var").secret("field_encryption_key")

    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: read_key(), range(8)))
    assert len(set(keys)) == 1
    assert len(keys[0]) == 32
    assert os.listdir(tmp_path / "var" / "secrets") == ["field_encryption_key"]  # no half-written file left


def test_production_requires_every_key_explicitly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYHEALTH_ENV", "production")
    monkeypatch.setenv("CITYHEALTH_FIELD_ENCRYPTION_KEY", generate_key())
    with pytest.raises(ConfigurationError, match=r"CITYHEALTH_LOOKUP_HMAC_KEY.*CITYHEALTH_TOKEN_SIGNING_KEY"):
        load_settings(var_dir=tmp_path)


def test_production_uses_the_given_keys_and_writes_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FIELD_ENCRYPTION_KEY", "LOOKUP_HMAC_KEY", "TOKEN_SIGNING_KEY"):
        monkeypatch.setenv(f"CITYHEALTH_{name}", generate_key())
    monkeypatch.setenv("CITYHEALTH_PUBLIC_BASE_URL", "https://health.example.gov.cn")
    settings = load_settings(env="production", var_dir=tmp_path / "var")
    assert len(settings.secret("token_signing_key")) == 32
    assert not (tmp_path / "var").exists()


def test_a_short_key_is_refused_naming_the_setting(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, token_signing_key="c2hvcnQ")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="CITYHEALTH_TOKEN_SIGNING_KEY must decode to at least 32"):
        settings.secret("token_signing_key")


def test_the_simulated_clock_cannot_be_enabled_in_production(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="SIMULATED_CLOCK"):
        load_settings(env="production", simulated_clock=True, field_encryption_key=generate_key(),
                      lookup_hmac_key=generate_key(), token_signing_key=generate_key())


def test_an_app_refuses_a_simulated_clock_unless_enabled(tmp_path: Path) -> None:
    settings = Settings(env=Environment.DEVELOPMENT, var_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="CITYHEALTH_SIMULATED_CLOCK"):
        create_app(settings, clock=SimulatedClock(datetime(2022, 6, 1, tzinfo=UTC)))


def test_the_public_base_url_defaults_to_the_local_server_outside_production(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, port=8123)
    assert settings.public_base_url == "http://127.0.0.1:8123"
    assert settings.public_url("/api/auth/token") == "http://127.0.0.1:8123/api/auth/token"


def test_the_public_base_url_loses_its_trailing_slash(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, public_base_url="https://health.example.gov.cn/")
    assert settings.public_url("/api/auth/token") == "https://health.example.gov.cn/api/auth/token"


def _production_keys() -> dict[str, str]:
    return {name: generate_key() for name in ("field_encryption_key", "lookup_hmac_key", "token_signing_key")}


def test_production_requires_the_public_base_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="production requires CITYHEALTH_PUBLIC_BASE_URL"):
        load_settings(env="production", var_dir=tmp_path, **_production_keys())


def test_production_refuses_a_plain_http_public_base_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="CITYHEALTH_PUBLIC_BASE_URL must be an https:// URL"):
        load_settings(env="production", var_dir=tmp_path, public_base_url="http://health.example.gov.cn",
                      **_production_keys())


@pytest.mark.parametrize("url", ["health.example.gov.cn", "https://", "https://health.example.gov.cn/?a=1",
                                 "https://health.example.gov.cn/#top", "ftp://health.example.gov.cn",
                                 "https://user@health.example.gov.cn"])
def test_a_public_base_url_that_is_not_a_plain_base_url_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigurationError, match="CITYHEALTH_PUBLIC_BASE_URL"):
        load_settings(var_dir=tmp_path, public_base_url=url)


def test_cors_origins_accept_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYHEALTH_CORS_ORIGINS", "https://a.example, https://b.example")
    assert load_settings().cors_origins == ["https://a.example", "https://b.example"]


def test_simulated_clock_moves_forward_only() -> None:
    clock = SimulatedClock(datetime(2022, 6, 1, tzinfo=UTC))
    clock.advance(timedelta(hours=16))
    assert business_date(clock.now()).isoformat() == "2022-06-02"  # 16:00 UTC is past midnight in Shanghai
    with pytest.raises(ValueError, match="backwards"):
        clock.set(datetime(2022, 5, 31, tzinfo=UTC))
    with pytest.raises(ValueError, match="naive"):
        SimulatedClock(datetime(2022, 6, 1))  # noqa: DTZ001


def test_a_worker_heartbeat_longer_than_the_stalled_timeout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="CITYHEALTH_WORKER_HEARTBEAT_S=30 must divide a minute"):
        load_settings(var_dir=tmp_path, worker_heartbeat_s=30, worker_stalled_after_s=20)
