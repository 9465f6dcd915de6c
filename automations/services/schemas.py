"""Validated inputs of the domain services (shared by the dashboard, the API and the CLI).

Pydantic does the checking; `parse` turns its errors into one domain
`ValidationError` that names each field and its problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from automations.content.checks import ContentError, check_template
from automations.domain.errors import ValidationError
from automations.domain.limits import custom_fields_problem, json_problem
from automations.domain.models import MessageType, TemplateCategory
from automations.domain.netguard import BlockedTarget, check_url_static
from automations.domain.timeutil import as_utc

MAX_DELAY_DAYS = 3650
MAX_DELAY_HOURS = 24 * 90
MAX_STEPS = 50
MAX_SUBJECT = 300
MAX_EMAIL_BODY = 50_000
MAX_SMS_BODY = 1_600
MAX_NOTES = 10_000
MAX_TAGS = 50

M = TypeVar("M", bound=BaseModel)


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class Input(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")


class StepInput(Input):
    """One step: `subject` is an email's subject or a task's title; `body` the email
    or SMS text or the task's notes."""

    name: str = Field(min_length=1, max_length=200)
    message_type: MessageType
    delay_days: int = Field(default=0, ge=0, le=MAX_DELAY_DAYS)
    delay_hours: int = Field(default=0, ge=0, le=MAX_DELAY_HOURS)
    subject: str = Field(default="", max_length=MAX_SUBJECT)
    body: str = Field(default="", max_length=MAX_EMAIL_BODY)
    webhook_url: str | None = Field(default=None, max_length=2000)
    webhook_payload: dict[str, Any] | None = None

    @field_validator("subject", "body", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("webhook_payload", mode="before")
    @classmethod
    def _bounded_payload(cls, value: Any) -> Any:
        if value is not None and (problem := json_problem(value)):
            raise ValueError(problem)
        return value

    @field_validator("subject", "body")
    @classmethod
    def _valid_template(cls, value: str) -> str:
        try:
            check_template(value)
        except ContentError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _blank_url(cls, value: Any) -> Any:
        value = _strip(value)
        return None if value == "" else value

    @field_validator("webhook_url")
    @classmethod
    def _allowed_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        allow_private = bool((info.context or {}).get("allow_private", False))
        try:
            check_url_static(value, allow_private)
        except BlockedTarget as exc:
            raise ValueError(f"webhook URL {exc}") from exc
        return value

    @model_validator(mode="after")
    def _fields_for_type(self) -> StepInput:
        errors: dict[str, str] = {}
        kind = self.message_type
        if kind is MessageType.EMAIL:
            if not self.subject:
                errors["subject"] = "an email needs a subject"
            if not self.body:
                errors["body"] = "an email needs a body"
        elif kind is MessageType.SMS:
            if not self.body:
                errors["body"] = "an SMS needs a body"
            elif len(self.body) > MAX_SMS_BODY:
                errors["body"] = f"an SMS body is at most {MAX_SMS_BODY} characters (got {len(self.body)})"
        elif kind is MessageType.TASK:
            if not self.subject:
                errors["subject"] = "a task needs a title"
            elif len(self.body) > MAX_NOTES:
                errors["body"] = f"task notes are at most {MAX_NOTES} characters"
        elif kind is MessageType.WEBHOOK and not self.webhook_url:
            errors["webhook_url"] = "a webhook needs a URL"
        if errors:
            raise _FieldErrors(errors)
        if kind is not MessageType.WEBHOOK:
            self.webhook_url = None
            self.webhook_payload = None
        return self


class _FieldErrors(ValueError):
    """Raised inside a model validator to report errors on named fields."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


class ContactInput(Input):
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(default="", max_length=100)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    company: str = Field(default="", max_length=200)
    timezone: str = "UTC"
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS)
    custom_fields: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    email_opt_out: bool = False
    sms_opt_out: bool = False

    @field_validator("last_name", "company", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("email", "phone", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        value = _strip(value)
        return None if value == "" else value

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(f"not a valid email address: {exc}") from exc

    @field_validator("phone")
    @classmethod
    def _valid_phone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            raise ValueError(
                "not a phone number in international form: write it with + and the country code, e.g. +14155550123"
            ) from None
        if not phonenumbers.is_valid_number(number):
            raise ValueError("not a valid phone number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    @field_validator("timezone", mode="before")
    @classmethod
    def _default_timezone(cls, value: Any) -> Any:
        value = _strip(value)
        return "UTC" if value in (None, "") else value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}") from exc
        return value

    @field_validator("tags", mode="before")
    @classmethod
    def _split_tags(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [part for part in value.split(",")]
        return value

    @field_validator("tags")
    @classmethod
    def _normalise_tags(cls, value: list[str]) -> list[str]:
        tags: list[str] = []
        for raw in value:
            tag = raw.strip().lower()
            if not tag:
                continue
            if len(tag) > 64:
                raise ValueError(f"tag {tag[:20]!r}… is longer than 64 characters")
            if tag not in tags:
                tags.append(tag)
        return tags

    @field_validator("custom_fields", mode="before")
    @classmethod
    def _bounded_custom_fields(cls, value: Any) -> Any:
        if isinstance(value, dict) and (problem := custom_fields_problem(value)):
            raise ValueError(problem)
        return value

    @field_validator("custom_fields")
    @classmethod
    def _valid_custom_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not key or len(key) > 64 or not key.replace("_", "").isalnum():
                raise ValueError(f"field name {key!r} must be 1-64 letters, digits or _")
        return value


class TemplateInput(Input):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    category: TemplateCategory = TemplateCategory.CUSTOM
    steps: list[StepInput] = Field(min_length=1, max_length=MAX_STEPS)

    @field_validator("description", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value


class CampaignInput(Input):
    name: str = Field(min_length=1, max_length=200)
    contact_id: int = Field(gt=0)
    template_id: int | None = Field(default=None, gt=0)
    start_at: datetime | None = None
    steps: list[StepInput] | None = Field(default=None, max_length=MAX_STEPS)

    @field_validator("start_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)


class FollowUpInput(Input):
    contact_id: int = Field(gt=0)
    title: str = Field(min_length=1, max_length=300)
    notes: str = Field(default="", max_length=MAX_NOTES)
    due_at: datetime
    campaign_id: int | None = None

    @field_validator("notes", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("due_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return as_utc(value)


def _message(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    if error.get("type") == "string_too_short" and error.get("ctx", {}).get("min_length") == 1:
        message = "must not be empty"
    elif error.get("type") == "extra_forbidden":
        message = "unknown field"
    elif error.get("type") == "enum":
        expected = error.get("ctx", {}).get("expected", "")
        message = f"must be one of {expected} (got {error.get('input')!r})"
    return message


def errors_from_pydantic(exc: PydanticValidationError, prefix: str = "") -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        original = error.get("ctx", {}).get("error")
        if isinstance(original, _FieldErrors):
            base = ".".join(loc)
            for field, problem in original.errors.items():
                errors[_join(prefix, base, field)] = problem
            continue
        errors.setdefault(_join(prefix, ".".join(loc)) or "input", _message(error))
    return errors


def _join(*parts: str) -> str:
    return ".".join(part for part in parts if part)


def parse(model: type[M], data: Any, *, allow_private: bool = False, prefix: str = "") -> M:
    """Validate `data` (a mapping or a model instance) as `model`, or raise the domain
    `ValidationError` naming every bad field."""
    if isinstance(data, model):
        data = data.model_dump()
    try:
        return model.model_validate(data, context={"allow_private": allow_private})
    except PydanticValidationError as exc:
        raise ValidationError(errors_from_pydantic(exc, prefix)) from None


def parse_steps(steps: list[Any], *, allow_private: bool = False, field: str = "steps") -> list[StepInput]:
    """Validate a list of steps, collecting every step's errors (`steps.2.body`)."""
    if not isinstance(steps, list):
        raise ValidationError.single(field, "must be a list of steps")
    if len(steps) > MAX_STEPS:
        raise ValidationError.single(field, f"at most {MAX_STEPS} steps")
    parsed: list[StepInput] = []
    errors: dict[str, str] = {}
    for index, step in enumerate(steps):
        try:
            parsed.append(parse(StepInput, step, allow_private=allow_private, prefix=f"{field}.{index}"))
        except ValidationError as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    return parsed
