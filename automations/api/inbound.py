"""Inbound email: a reply, an out-of-office answer or a bounce, posted as the raw
message (SPEC section 11), for mail systems that forward messages to a URL."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from automations.api.deps import Context
from automations.domain.errors import ValidationError
from automations.services.engagement import InboundResult, process_inbound

router = APIRouter(prefix="/api/automation/inbound", tags=["inbound"])

MESSAGE_TYPES = ("message/rfc822", "text/plain", "application/octet-stream")


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
        with context.db.session() as session:
            return process_inbound(session, raw, source="api", now=context.now())

    result = await run_in_threadpool(process)
    return InboundOut(
        classification=result.classification,
        step_id=result.step_id,
        campaign_id=result.campaign_id,
        duplicate=result.duplicate,
    )
