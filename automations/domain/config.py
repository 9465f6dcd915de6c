"""One settings object, read from the environment (and an optional `.env` file).

Every variable is named `AUTOMATIONS_<FIELD>`; the README's configuration table
lists them all (a test fails when one is missing there).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from automations.domain.schedule import Cap, QuietHours, parse_caps, parse_quiet_hours

DEFAULT_DATABASE_URL = "sqlite:///data/automations.db"


class Settings(BaseSettings):
    """Effective configuration of the dashboard, the runner, the API and the CLI."""

    model_config = SettingsConfigDict(env_prefix="AUTOMATIONS_", env_file=".env", extra="ignore", frozen=True)

    database_url: str = DEFAULT_DATABASE_URL
    # How long a SQLite writer waits for another's lock before the write fails
    # (and the runner retries it, keeping its results).
    sqlite_busy_timeout: float = Field(default=60.0, gt=0, le=3600)
    timezone: str = "UTC"
    outbox_dir: Path = Path("data/outbox")

    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    email_from: str = "automations@localhost"
    # SPEC section 11: a Reply-To of `local+r-<token>@domain` per message, for
    # mailboxes that deliver plus-addressed mail (off: replies match by headers).
    email_reply_tokens: bool = False

    # SPEC section 11: where recipients reach this installation (tracking links,
    # open pixel, unsubscribe page); unset: no tracking, `mailto:` unsubscribe.
    public_url: str | None = None
    track_ip: bool = False  # keep the client IP address of opens and clicks

    imap_host: str | None = None
    imap_port: int | None = None
    imap_username: str | None = None
    imap_password: SecretStr | None = None
    imap_folder: str = "INBOX"
    imap_ssl: bool = True
    imap_interval: float = Field(default=30.0, ge=0, le=86400)  # seconds between the runner's polls

    sms_api_url: str | None = None
    sms_account_sid: str | None = None
    sms_auth_token: SecretStr | None = None
    sms_from: str | None = None

    webhook_secret: SecretStr | None = None
    webhook_allow_private: bool = False
    webhook_timeout: float = Field(default=10.0, gt=0, le=300)

    max_attempts: int = Field(default=5, ge=1, le=100)

    # SPEC section 10: no SMS in these local hours ("off" for none), and at most
    # so many messages per contact across campaigns ("" for no cap).
    sms_quiet_hours: str = "21:00-08:00"
    frequency_cap: str = ""

    api_token: SecretStr | None = None
    api_max_body: int = Field(default=1_048_576, ge=1024, le=1_073_741_824)  # bytes
    ui_password: SecretStr | None = None
    ui_session_hours: float = Field(default=12.0, gt=0, le=24 * 365)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}") from exc
        return value

    @field_validator("sms_quiet_hours")
    @classmethod
    def _valid_quiet_hours(cls, value: str) -> str:
        parse_quiet_hours(value)
        return value

    @field_validator("frequency_cap")
    @classmethod
    def _valid_caps(cls, value: str) -> str:
        parse_caps(value)
        return value

    @field_validator("public_url")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError("must be an http:// or https:// URL without a query")
        return value

    @field_validator(
        "smtp_host", "sms_api_url", "sms_account_sid", "sms_from", "public_url", "imap_host", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def quiet_hours(self) -> QuietHours | None:
        return parse_quiet_hours(self.sms_quiet_hours)

    @property
    def caps(self) -> tuple[Cap, ...]:
        return parse_caps(self.frequency_cap)

    @property
    def email_backend(self) -> str:
        return "smtp" if self.smtp_host else "outbox"

    @property
    def sms_backend(self) -> str:
        return "http" if self.sms_api_url else "outbox"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once; tests build their own `Settings`)."""
    return Settings()


SECRET_FIELDS = frozenset(
    {"smtp_password", "sms_auth_token", "webhook_secret", "api_token", "ui_password", "imap_password"}
)


def describe_settings(settings: Settings) -> list[dict[str, str]]:
    """The effective configuration as rows for display, with secrets masked."""
    rows = []
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if name in SECRET_FIELDS or isinstance(value, SecretStr):
            shown = "set (hidden)" if value else "not set"
        elif name == "database_url":
            shown = mask_url_password(str(value))
        else:
            shown = "" if value is None else str(value)
        rows.append({"variable": f"AUTOMATIONS_{name.upper()}", "value": shown})
    return rows


def mask_url_password(url: str) -> str:
    """`postgresql://u:secret@h/db` -> `postgresql://u:***@h/db`."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown without anything after the scheme
        return url.split("://", 1)[0] + "://…"
