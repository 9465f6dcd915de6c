"""Validated inputs of the domain services (shared by the dashboard, the API and the CLI).

Pydantic does the checking; `parse` turns its errors into one domain
`ValidationError` that names each field and says, in plain words, what to do
("Too long: 230 characters, at most 200."). Pydantic's wording is translated in
one place, `plain_message`; the checks across fields (an email needs a subject)
run even when other fields are wrong, so that every problem is reported at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, TypeVar, get_args, get_origin
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
from automations.domain.config import get_settings
from automations.domain.errors import ValidationError
from automations.domain.limits import custom_fields_problem, json_problem
from automations.domain.models import MessageType, TemplateCategory
from automations.domain.netguard import BlockedTarget, check_url_static
from automations.domain.schedule import DAY_NAMES, holiday_calendar, parse_hhmm
from automations.domain.timeutil import as_utc

MAX_DELAY_DAYS = 3650
MAX_DELAY_HOURS = 24 * 90
MAX_STEPS = 50
MAX_SUBJECT = 300
MAX_EMAIL_BODY = 50_000
MAX_SMS_BODY = 1_600
MAX_NOTES = 10_000
MAX_TAGS = 50
MAX_TAG = 64

REQUIRED = "Required."
PHONE_FORMAT = "Use the international format with the country code, e.g. +14155550123."
TIMEZONE_UNKNOWN = "Unknown timezone: use a name like Europe/Paris."
HHMM = "Use a time of day as HH:MM, from 00:00 to 23:59, e.g. 09:30."


# --- plain words -------------------------------------------------------------


def too_long(length: int, limit: int, what: str = "") -> str:
    """`Too long: 230 characters, at most 200.`; `what` names the thing when the field does not."""
    return f"Too long{what}: {length:,} characters, at most {limit:,}."


def sentence(text: str) -> str:
    """`text` with a capital first letter and a full stop."""
    text = text.strip()
    if not text:
        return "Not valid."
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".?!" else f"{text}."


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _choices(expected: str) -> str:
    """Pydantic's `'email', 'sms' or 'task'` as `email, sms or task`."""
    return re.sub(r"'([^']*)'", r"\1", expected)


_TYPE_MESSAGES = {
    "int_parsing": "Must be a whole number.",
    "int_type": "Must be a whole number.",
    "int_from_float": "Must be a whole number.",
    "float_parsing": "Must be a number.",
    "float_type": "Must be a number.",
    "bool_parsing": "Must be yes or no.",
    "bool_type": "Must be yes or no.",
    "string_type": "Must be text.",
    "list_type": "Must be a list.",
    "dict_type": "Must be a JSON object.",
    "model_type": "Must be a JSON object.",
    "model_attributes_type": "Must be a JSON object.",
    "extra_forbidden": "Unknown field.",
    "json_invalid": "Not valid JSON.",
    "json_type": "Not valid JSON.",
    "string_pattern_mismatch": "Not in the expected form.",
}


def plain_message(error: Mapping[str, Any], *, empty: str = REQUIRED) -> str:
    """One pydantic error (an item of `exc.errors()`) in plain words; `empty` is
    said of a required field left out or empty ("Give the campaign a name.")."""
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing" or (kind in ("string_too_short", "too_short") and ctx.get("min_length") == 1):
        return empty
    if kind == "string_too_short":
        return f"Too short: {len(str(value).strip())} characters, at least {ctx.get('min_length')}."
    if kind == "string_too_long":
        length = len(value.strip()) if isinstance(value, str) else int(ctx.get("max_length", 0)) + 1
        return too_long(length, int(ctx.get("max_length", 0)))
    if kind in ("too_short", "too_long"):
        names = [part for part in error.get("loc", ()) if isinstance(part, str)]
        noun = f" {names[-1].replace('_', ' ')}" if names else ""
        if kind == "too_short":
            return f"Too few{noun}: {ctx.get('actual_length')}, at least {ctx.get('min_length')}."
        return f"Too many{noun}: {ctx.get('actual_length')}, at most {ctx.get('max_length')}."
    if kind == "greater_than_equal":
        return f"Must be {_number(ctx.get('ge'))} or more."
    if kind == "greater_than":
        return f"Must be more than {_number(ctx.get('gt'))}."
    if kind == "less_than_equal":
        return f"At most {_number(ctx.get('le'))}."
    if kind == "less_than":
        return f"Must be less than {_number(ctx.get('lt'))}."
    if kind in ("enum", "literal_error"):
        return f"Choose one of: {_choices(str(ctx.get('expected', '')))}."
    if kind.startswith(("datetime", "date_", "time_")):
        return "Must be a date and time, e.g. 2026-03-01 09:00."
    if kind in _TYPE_MESSAGES:
        return _TYPE_MESSAGES[kind]
    if kind in ("value_error", "assertion_error") and ctx.get("error") is not None:
        return sentence(str(ctx["error"]))
    message = str(error.get("msg", "")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return sentence(message)


# --- the inputs --------------------------------------------------------------

M = TypeVar("M", bound="Input")


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


class Input(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    # What to say of a required field left empty, by field name (default "Required.").
    empty_messages: ClassVar[dict[str, str]] = {}

    @classmethod
    def cross_field_problems(cls, data: Mapping[str, Any]) -> dict[str, str]:
        """The checks across fields, run on the raw input when some field is wrong
        (pydantic then skips the model's own checks), so that they are reported
        with the others. Field path -> problem."""
        return {}


def _type_problems(kind: MessageType, subject: str, body: str, webhook_url: str | None) -> dict[str, str]:
    """What a step of this kind needs: a subject and a body for an email ..."""
    errors: dict[str, str] = {}
    if kind is MessageType.EMAIL:
        if not subject:
            errors["subject"] = "Give the email a subject."
        if not body:
            errors["body"] = "Write the text of the email."
    elif kind is MessageType.SMS:
        if not body:
            errors["body"] = "Write the text of the SMS."
        elif len(body) > MAX_SMS_BODY:
            errors["body"] = too_long(len(body), MAX_SMS_BODY, " for an SMS")
    elif kind is MessageType.TASK:
        if not subject:
            errors["subject"] = "Give the task a title."
        if len(body) > MAX_NOTES:
            errors["body"] = too_long(len(body), MAX_NOTES)
    elif kind is MessageType.WEBHOOK and not webhook_url:
        errors["webhook_url"] = "Give the URL the webhook sends to, e.g. https://example.com/hook."
    return errors


def _url_problem(reason: str) -> str:
    if reason.startswith("not a valid URL"):
        return sentence(reason)
    if reason.startswith(("targets ", "resolves ")) or " resolves to " in reason:
        return f"Not allowed: the URL {reason}; webhooks only go to public addresses."
    return f"The URL {reason.rstrip('.')}."


class StepInput(Input):
    """One step: `subject` is an email's subject or a task's title; `body` the email
    or SMS text or the task's notes."""

    empty_messages: ClassVar[dict[str, str]] = {
        "name": "Give the step a name.",
        "message_type": "Choose the kind of step: email, sms, task or webhook.",
    }

    name: str = Field(min_length=1, max_length=200)
    message_type: MessageType
    delay_days: int = Field(default=0, ge=0, le=MAX_DELAY_DAYS)
    delay_hours: int = Field(default=0, ge=0, le=MAX_DELAY_HOURS)
    subject: str = Field(default="", max_length=MAX_SUBJECT)
    body: str = Field(default="", max_length=MAX_EMAIL_BODY)
    webhook_url: str | None = Field(default=None, max_length=2000)
    webhook_payload: dict[str, Any] | None = None
    # Count delay_days in open days of the send window (not holidays); then send at
    # this local time ("day 3 at 10:00").
    business_days: bool = False
    send_at: str | None = None

    @field_validator("subject", "body", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("business_days", mode="before")
    @classmethod
    def _none_is_false(cls, value: Any) -> Any:
        return False if value is None else value

    @field_validator("send_at", mode="before")
    @classmethod
    def _time_of_day(cls, value: Any) -> Any:
        value = _strip(value)
        return None if value in (None, "") else hhmm(value)

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
            raise ValueError(_url_problem(str(exc))) from exc
        return value

    @model_validator(mode="after")
    def _fields_for_type(self) -> StepInput:
        errors = _type_problems(self.message_type, self.subject, self.body, self.webhook_url)
        if errors:
            raise _FieldErrors(errors)
        if self.message_type is not MessageType.WEBHOOK:
            self.webhook_url = None
            self.webhook_payload = None
        return self

    @classmethod
    def cross_field_problems(cls, data: Mapping[str, Any]) -> dict[str, str]:
        try:
            kind = MessageType(_strip(data.get("message_type")))
        except (ValueError, TypeError):
            return {}  # the type itself is wrong: reported on message_type
        return _type_problems(kind, _text(data.get("subject")), _text(data.get("body")), _text(data.get("webhook_url")))


def _steps_problems(steps: Any) -> dict[str, str]:
    """`StepInput.cross_field_problems` of each raw step, under `steps.N.`."""
    errors: dict[str, str] = {}
    if isinstance(steps, list):
        for index, step in enumerate(steps):
            if isinstance(step, Mapping):
                for field, problem in StepInput.cross_field_problems(step).items():
                    errors[f"steps.{index}.{field}"] = problem
    return errors


class _FieldErrors(ValueError):
    """Raised inside a model validator to report errors on named fields."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def normalized_email(value: str) -> str:
    """`value` as stored (domain lower-cased), or `ValueError` saying what is wrong with it."""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        detail = str(exc).strip()
        for prefix in ("The email address ", "An email address "):
            if detail.startswith(prefix):
                detail = "it " + detail[len(prefix) :]
        detail = detail[:1].lower() + detail[1:]
        raise ValueError(f"Not a valid email address: {detail}") from exc


class ContactInput(Input):
    empty_messages: ClassVar[dict[str, str]] = {"first_name": "Give the contact's first name."}

    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(default="", max_length=100)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    company: str = Field(default="", max_length=200)
    timezone: str = Field(default="", validate_default=True)  # blank: AUTOMATIONS_TIMEZONE
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
        return None if value is None else normalized_email(value)

    @field_validator("phone")
    @classmethod
    def _valid_phone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            raise ValueError(PHONE_FORMAT) from None
        if not phonenumbers.is_valid_number(number):
            raise ValueError("Not a valid phone number: check the country code and the digits, e.g. +14155550123.")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    @field_validator("timezone", mode="before")
    @classmethod
    def _default_timezone(cls, value: Any) -> Any:
        value = _strip(value)
        return get_settings().timezone if value in (None, "") else value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(TIMEZONE_UNKNOWN) from exc
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
            if len(tag) > MAX_TAG:
                raise ValueError(f"Too long: the tag {tag[:20]!r}… has {len(tag)} characters, at most {MAX_TAG}.")
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
                raise ValueError(f"Rename the field {key!r}: use 1 to 64 letters, digits or _.")
        return value


def hhmm(value: Any) -> str:
    """A time of day as stored ("9:30" -> "09:30"), or ValueError in plain words."""
    if not isinstance(value, str):
        raise ValueError(HHMM)
    try:
        moment = parse_hhmm(value.strip())
    except ValueError:
        raise ValueError(HHMM) from None
    return f"{moment:%H:%M}"


SCHEDULE_ZONE_UNKNOWN = 'Unknown timezone: use "contact" (the contact\'s own) or a name like America/New_York.'


def window_end_problem(start: str) -> str:
    return f"Must be after the start ({start}): a send window opens and closes the same day."


class SendWindowInput(Input):
    """The days and local hours steps may go out in (start before end, same day)."""

    empty_messages: ClassVar[dict[str, str]] = {
        "days": "Choose at least one day of the week.",
        "start": "Give the time the window opens, e.g. 09:00.",
        "end": "Give the time the window closes, e.g. 17:00.",
    }

    days: list[str] = Field(min_length=1, max_length=7)
    start: str
    end: str

    @field_validator("days", mode="before")
    @classmethod
    def _day_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            return value
        days: list[str] = []
        for raw in value:
            day = str(raw).strip().lower()[:3]
            if day not in DAY_NAMES:
                raise ValueError(f"Unknown day {str(raw)[:20]!r}: use mon, tue, wed, thu, fri, sat or sun.")
            if day not in days:
                days.append(day)
        return sorted(days, key=DAY_NAMES.index)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time_of_day(cls, value: Any) -> Any:
        return hhmm(value)

    @model_validator(mode="after")
    def _ends_after_start(self) -> SendWindowInput:
        if self.end <= self.start:
            raise _FieldErrors(
                {"end": f"Must be after the start ({self.start}): a send window opens and closes the same day."}
            )
        return self

    @classmethod
    def cross_field_problems(cls, data: Mapping[str, Any]) -> dict[str, str]:
        try:
            start, end = hhmm(data.get("start")), hhmm(data.get("end"))
        except ValueError:
            return {}
        if end <= start:
            return {"end": window_end_problem(start)}
        return {}


class ScheduleInput(Input):
    """Whose clock steps are planned in, when they may go out, and which days are holidays."""

    timezone: str = "contact"
    send_window: SendWindowInput | None = None
    holidays: str | None = None
    # Transactional sequences (receipts, password resets) are not held back by the
    # frequency caps.
    frequency_cap_exempt: bool = False

    @field_validator("timezone", mode="before")
    @classmethod
    def _contact_by_default(cls, value: Any) -> Any:
        value = _strip(value)
        return "contact" if value in (None, "") else value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value.lower() == "contact":
            return "contact"
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                'Unknown timezone: use "contact" (the contact\'s own) or a name like America/New_York.'
            ) from exc
        return value

    @field_validator("holidays", mode="before")
    @classmethod
    def _holiday_code(cls, value: Any) -> Any:
        value = _strip(value)
        if value in (None, ""):
            return None
        if not isinstance(value, str) or len(value) > 12:
            raise ValueError("Use a country code such as US, or a country and subdivision such as US-NY.")
        code = value.upper()
        try:
            holiday_calendar(code)
        except KeyError:
            raise ValueError(
                f"Unknown holiday calendar {value!r}: use a country code such as US, or a country and "
                "subdivision such as US-NY."
            ) from None
        return code

    @field_validator("frequency_cap_exempt", mode="before")
    @classmethod
    def _none_is_false(cls, value: Any) -> Any:
        return False if value is None else value

    @classmethod
    def cross_field_problems(cls, data: Mapping[str, Any]) -> dict[str, str]:
        window = data.get("send_window")
        if isinstance(window, Mapping):
            return {f"send_window.{k}": v for k, v in SendWindowInput.cross_field_problems(window).items()}
        return {}


def _schedule_problems(data: Mapping[str, Any]) -> dict[str, str]:
    schedule = data.get("schedule")
    if isinstance(schedule, Mapping):
        return {f"schedule.{k}": v for k, v in ScheduleInput.cross_field_problems(schedule).items()}
    return {}


class TemplateInput(Input):
    empty_messages: ClassVar[dict[str, str]] = {
        "name": "Give the template a name.",
        "steps": "Add at least one step.",
    }

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    category: TemplateCategory = TemplateCategory.CUSTOM
    steps: list[StepInput] = Field(min_length=1, max_length=MAX_STEPS)
    schedule: ScheduleInput | None = None
    # SPEC section 11: a reply stops campaigns made from it; their emails are tracked.
    stop_on_reply: bool = True
    tracking: bool = True

    @field_validator("description", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value

    @classmethod
    def cross_field_problems(cls, data: Mapping[str, Any]) -> dict[str, str]:
        return {**_steps_problems(data.get("steps")), **_schedule_problems(data)}


class CampaignInput(Input):
    empty_messages: ClassVar[dict[str, str]] = {
        "name": "Give the campaign a name.",
        "contact_id": "Choose a contact.",
    }

    name: str = Field(min_length=1, max_length=200)
    contact_id: int = Field(gt=0)
    template_id: int | None = Field(default=None, gt=0)
    start_at: datetime | None = None
    steps: list[StepInput] | None = Field(default=None, max_length=MAX_STEPS)
    # None: the template's (a campaign from scratch: the defaults).
    schedule: ScheduleInput | None = None

    @field_validator("start_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)

    @classmethod
    def cross_field_problems(cls, data: Mapping[str, Any]) -> dict[str, str]:
        return {**_steps_problems(data.get("steps")), **_schedule_problems(data)}


class FollowUpInput(Input):
    empty_messages: ClassVar[dict[str, str]] = {
        "title": "Give the task a title.",
        "contact_id": "Choose a contact.",
        "due_at": "Give the date and time it is due.",
    }

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


# --- pydantic's errors as the domain's ---------------------------------------


def _nested_input(annotation: Any) -> type[Input] | None:
    """The input model inside a field's type (`list[StepInput] | None` -> StepInput)."""
    if get_origin(annotation) is None and isinstance(annotation, type):
        return annotation if issubclass(annotation, Input) else None
    for argument in get_args(annotation):
        found = _nested_input(argument)
        if found is not None:
            return found
    return None


def _empty_message(model: type[Input], loc: tuple[Any, ...]) -> str:
    """`empty_messages` of the model that holds the field at `loc`."""
    owner = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        info = owner.model_fields.get(part)
        nested = _nested_input(info.annotation) if info is not None else None
        if nested is None:
            return REQUIRED
        owner = nested
    name = loc[-1] if loc else None
    return owner.empty_messages.get(name, REQUIRED) if isinstance(name, str) else REQUIRED


def errors_from_pydantic(exc: PydanticValidationError, model: type[Input], prefix: str = "") -> dict[str, str]:
    """Field path -> plain message, for every error pydantic found (the first one per field)."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        base = ".".join(str(part) for part in loc)
        original = (error.get("ctx") or {}).get("error")
        if isinstance(original, _FieldErrors):
            for field, problem in original.errors.items():
                errors.setdefault(_join(prefix, base, field), problem)
            continue
        errors.setdefault(_join(prefix, base) or "input", plain_message(error, empty=_empty_message(model, loc)))
    return errors


def _join(*parts: str) -> str:
    return ".".join(part for part in parts if part)


def parse(model: type[M], data: Any, *, allow_private: bool = False, prefix: str = "") -> M:
    """Validate `data` (a mapping or a model instance) as `model`, or raise the domain
    `ValidationError` naming every bad field, the checks across fields included."""
    if isinstance(data, model):
        data = data.model_dump()
    try:
        return model.model_validate(data, context={"allow_private": allow_private})
    except PydanticValidationError as exc:
        errors = errors_from_pydantic(exc, model, prefix)
        if isinstance(data, Mapping):
            for field, problem in model.cross_field_problems(data).items():
                errors.setdefault(_join(prefix, field), problem)
        raise ValidationError(errors) from None


def parse_steps(steps: list[Any], *, allow_private: bool = False, field: str = "steps") -> list[StepInput]:
    """Validate a list of steps, collecting every step's errors (`steps.2.body`)."""
    if not isinstance(steps, list):
        raise ValidationError.single(field, "Must be a list of steps.")
    if len(steps) > MAX_STEPS:
        raise ValidationError.single(field, f"Too many steps: {len(steps)}, at most {MAX_STEPS}.")
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
