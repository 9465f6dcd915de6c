"""Settings: read from the environment, validated, every one documented, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from automations.domain.config import Settings, describe_settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_documented_in_the_readme(field):
    assert f"`AUTOMATIONS_{field.upper()}`" in README


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("AUTOMATIONS_TIMEZONE", "Europe/Paris")
    monkeypatch.setenv("AUTOMATIONS_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE", "1")
    settings = Settings(_env_file=None)
    assert (settings.timezone, settings.max_attempts, settings.webhook_allow_private) == ("Europe/Paris", 3, True)
    assert settings.email_backend == "outbox" and settings.sms_backend == "outbox"


def test_bad_settings_name_the_variable(monkeypatch):
    monkeypatch.setenv("AUTOMATIONS_TIMEZONE", "Nowhere/Land")
    with pytest.raises(ValidationError, match="timezone"):
        Settings(_env_file=None)


def test_secrets_are_masked_in_the_described_configuration(monkeypatch):
    monkeypatch.setenv("AUTOMATIONS_SMTP_PASSWORD", "hunter2")
    monkeypatch.setenv("AUTOMATIONS_API_TOKEN", "tok-123")
    monkeypatch.setenv("AUTOMATIONS_DATABASE_URL", "postgresql+psycopg://app:pg-secret@db/automations")
    shown = str(describe_settings(Settings(_env_file=None)))
    for secret in ("hunter2", "tok-123", "pg-secret"):
        assert secret not in shown
    assert "set (hidden)" in shown


def test_defaults_are_the_documented_ones(monkeypatch):
    """The SPEC's defaults: a new user's database and outbox live in data/."""
    monkeypatch.delenv("AUTOMATIONS_DATABASE_URL", raising=False)
    monkeypatch.delenv("AUTOMATIONS_OUTBOX_DIR", raising=False)
    settings = Settings(_env_file=None)
    assert settings.database_url == "sqlite:///data/automations.db"
    assert str(settings.outbox_dir) == "data/outbox"
    assert "`sqlite:///data/automations.db`" in README
