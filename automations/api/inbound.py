"""Inbound email: a reply, an out-of-office answer or a bounce, posted as the raw
message (SPEC section 11), for mail systems that forward messages to a URL; and
inbound SMS as an SMS provider's webhook (Twilio's form fields): STOP, START or
a reply."""

from __future__ import annotations

from typing import Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from automations.api.deps import Context
from automations.domain.errors import ValidationError
from automations.services.engagement import InboundResult, applied_once, process_inbound
from automations.services.sms_inbound import SmsResult, process_inbound_sms

router = APIRouter(prefix="/api/automation/inbound", tags=["inbound"])

MESSAGE_TYPES = ("message/rfc822", "text/plain", "application/octet-stream")
FORM_TYPE = "application/x-www-form-urlencoded"
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
SMS_FIELDS = {
    "From": "The sender's phone number (E.164, e.g. `+14155550123`).",
    "To": "Our number it was sent to.",
    "Body": "The text. STOP, STOPALL, UNSUBSCRIBE, CANCEL, END or QUIT opt out; START or UNSTOP opt back in.",
    "MessageSid": "The provider's id of the message: a retry with the same id is processed once.",
}


class InboundOut(BaseModel):
    classification: Literal["reply", "auto_reply", "bounce", "unmatched"] = Field(
        description="What the message is; `unmatched` when it answers no message of ours."
    )
    step_id: int | None = Field(description="The step it answers.")
    campaign_id: int | None = Field(description="That step's campaign.")
    duplicate: bool = Field(description="The same message was processed before: nothing was done again.")


@router.post(
    "/email",
    response_model=InboundOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Process an inbound email (reply, auto-reply, bounce)",
    openapi_extra={
        "requestBody": {"required": True, "content": {"message/rfc822": {"schema": {"type": "string"}}}},
    },
)
async def inbound_email(request: Request, context: Context) -> InboundOut:
    """The body is the raw RFC 5322 message (`Content-Type: message/rfc822`). It is
    matched to the step it answers by `In-Reply-To` / `References` or by its reply
    token, and applied once: a reply stops the campaign and creates a follow-up, an
    out-of-office reply holds the campaign until the stated return date (or for 3
    days), a hard bounce stops email to the address."""
    kind = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if kind not in MESSAGE_TYPES:
        raise ValidationError.single("body", "send the raw message as the body with Content-Type: message/rfc822")
    raw = await request.body()
    if not raw.strip():
        raise ValidationError.single("body", "the message is empty")

    def process() -> InboundResult:
        return applied_once(context.db, lambda session: process_inbound(session, raw, source="api", now=context.now()))

    result = await run_in_threadpool(process)
    return InboundOut(
        classification=result.classification,
        step_id=result.step_id,
        campaign_id=result.campaign_id,
        duplicate=result.duplicate,
    )


class SmsInboundOut(BaseModel):
    classification: Literal["stop", "start", "reply", "unmatched"] = Field(
        description="`stop` opted the number out of SMS, `start` back in, `reply` is any other text "
        "(an `inbound_event` named `sms_reply`); `unmatched` when no contact has the number."
    )
    contact_ids: list[int] = Field(description="The contacts with the sender's number.")
    duplicate: bool = Field(
        description="The same message (by `MessageSid`) was processed before: nothing was done again."
    )


@router.post(
    "/sms",
    response_model=SmsInboundOut,
    summary="Process an inbound SMS (STOP, START, a reply)",
    responses={200: {"content": {"text/xml": {"example": TWIML_EMPTY}}}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                FORM_TYPE: {
                    "schema": {
                        "type": "object",
                        "required": ["From"],
                        "properties": {
                            name: {"type": "string", "maxLength": 1600 if name == "Body" else 64, "description": text}
                            for name, text in SMS_FIELDS.items()
                        },
                    }
                }
            },
        },
    },
)
async def inbound_sms(request: Request, context: Context) -> SmsInboundOut | Response:
    """An SMS provider's inbound-message webhook, as Twilio sends it
    (`application/x-www-form-urlencoded` with `From`, `To`, `Body`, `MessageSid`).
    STOP (and STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, in any case) opts every contact
    with the sender's number out of SMS and records an `unsubscribed` event; START or
    UNSTOP opts them back in; any other text is an `inbound_event` named `sms_reply`
    for the follow-up rules. Nothing is sent back to the sender.

    Send the bearer token, or let Twilio sign the request: a valid
    `X-Twilio-Signature` (checked with `AUTOMATIONS_SMS_AUTH_TOKEN`) lets it in
    without one, and the answer is then an empty TwiML `<Response/>`, as Twilio
    expects; with the bearer token it is JSON."""
    kind = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if kind != FORM_TYPE:
        raise ValidationError.single("body", f"send the provider's form fields with Content-Type: {FORM_TYPE}")
    try:
        fields = parse_qs(
            (await request.body()).decode("utf-8"), keep_blank_values=True, max_num_fields=100, errors="strict"
        )
    except (UnicodeDecodeError, ValueError):
        raise ValidationError.single("body", "not a valid form: UTF-8 form fields expected") from None
    values = {name: (fields.get(name) or [""])[0] for name in SMS_FIELDS}
    if "\x00" in "".join(values.values()):
        raise ValidationError.single("body", "must not contain NUL characters")
    if not values["From"].strip():
        raise ValidationError.single("From", "give the sender's phone number")

    def process() -> SmsResult:
        return applied_once(
            context.db,
            lambda session: process_inbound_sms(
                session,
                sender=values["From"][:64],
                to=values["To"][:64] or None,
                body=values["Body"][:1600],
                message_sid=values["MessageSid"][:64] or None,
                now=context.now(),
            ),
        )

    result = await run_in_threadpool(process)
    if request.scope.get("state", {}).get("twilio"):
        return Response(TWIML_EMPTY, media_type="text/xml")
    return SmsInboundOut(
        classification=result.classification,
        contact_ids=result.contact_ids,
        duplicate=result.duplicate,
    )
