"""What recipients reach from an email (SPEC section 11), without a bearer token:
the open pixel `/t/o/<token>`, tracked links `/t/c/<token>` and the unsubscribe
page `/t/u/<token>` (one-click by POST, RFC 8058).

Tokens are signed (`engagement.tokens`): a tampered or unknown token is a 404,
and a click only ever redirects to a link the step's message carried (kept in
the step's result when it was sent), so this is never an open redirect.
Opens from mail-privacy proxies and link scanners are recorded as `machine`.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from html import escape

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from automations.api.deps import ApiContext, Context
from automations.domain.models import AutomationStep, EngagementEvent
from automations.engagement.tokens import CLICK, OPEN, UNSUBSCRIBE, TokenData, get_tracking_key, read_token
from automations.services.events import record_event

router = APIRouter(prefix="/t", include_in_schema=False)

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
# User agents of mail-privacy proxies and link scanners: not a person reading.
MACHINE_AGENTS = (
    "googleimageproxy",
    "yahoomailproxy",
    "bingpreview",
    "microsoft office",
    "safelinks",
    "barracuda",
    "mimecast",
    "proofpoint",
    "python-requests",
    "curl/",
)
# Apple Mail Privacy Protection fetches every image as the message arrives.
MACHINE_DELAY = timedelta(seconds=10)
NOT_FOUND = Response("This link is not valid.", status_code=404, media_type="text/plain")


def _key(context: ApiContext) -> str:
    cached = getattr(context, "_tracking_key", None)
    if cached is None:
        with context.db.session() as session:
            cached = get_tracking_key(session)
        object.__setattr__(context, "_tracking_key", cached)
    return str(cached)


def _is_machine(user_agent: str, sent_at: datetime | None, now: datetime) -> bool:
    agent = user_agent.lower()
    if any(marker in agent for marker in MACHINE_AGENTS):
        return True
    return sent_at is not None and now - sent_at < MACHINE_DELAY


def _record(
    session: Session, context: ApiContext, request: Request, step: AutomationStep, kind: str, **extra: object
) -> bool:
    """One engagement event for `step`; returns whether a person (not a machine) did it."""
    now = context.now()
    agent = (request.headers.get("user-agent") or "")[:300]
    machine = kind == "open" and _is_machine(agent, step.executed_at, now)
    campaign = step.campaign
    session.add(
        EngagementEvent(
            kind=kind,
            step_id=step.id,
            campaign_id=campaign.id,
            contact_id=campaign.contact_id,
            occurred_at=now,
            machine=machine,
            user_agent=agent or None,
            ip=(request.client.host if request.client else None) if context.settings.track_ip else None,
            link_index=extra.get("link_index"),
            url=extra.get("url"),
        )
    )
    return not machine


def _step(session: Session, data: TokenData | None, kind: str) -> AutomationStep | None:
    if data is None or data.kind != kind:
        return None
    return session.get(AutomationStep, data.step_id)


@router.get("/o/{token}")
async def open_pixel(token: str, request: Request, context: Context) -> Response:
    data = read_token(await run_in_threadpool(_key, context), token)

    def record() -> bool:
        with context.db.session() as session:
            step = _step(session, data, OPEN)
            if step is None:
                return False
            if _record(session, context, request, step, "open") and step.opened_at is None:
                step.opened_at = context.now()
                record_event(
                    session,
                    contact_id=step.campaign.contact_id,
                    kind="email_opened",
                    payload={"campaign_id": step.campaign_id, "step_id": step.id},
                    now=context.now(),
                )
            return True

    if not await run_in_threadpool(record):
        return NOT_FOUND
    return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})


@router.get("/c/{token}")
async def click(token: str, request: Request, context: Context) -> Response:
    data = read_token(await run_in_threadpool(_key, context), token)

    def record() -> str | None:
        with context.db.session() as session:
            step = _step(session, data, CLICK)
            links = (step.result or {}).get("links") if step is not None else None
            if step is None or data is None or data.link is None or not isinstance(links, list):
                return None
            if not 0 <= data.link < len(links) or not str(links[data.link]).startswith(("http://", "https://")):
                return None
            url = str(links[data.link])
            _record(session, context, request, step, "click", link_index=data.link, url=url)
            step.clicked_at = step.clicked_at or context.now()
            record_event(
                session,
                contact_id=step.campaign.contact_id,
                kind="link_clicked",
                payload={"campaign_id": step.campaign_id, "step_id": step.id, "url": url},
                now=context.now(),
            )
            return url

    url = await run_in_threadpool(record)
    if url is None:
        return NOT_FOUND
    return RedirectResponse(url, status_code=302)


def _page(title: str, text: str, form: str = "") -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title></head>"
        '<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem">'
        f"<h1>{escape(title)}</h1><p>{escape(text)}</p>{form}</body></html>"
    )


@router.get("/u/{token}")
async def unsubscribe_page(token: str, context: Context) -> Response:
    data = read_token(await run_in_threadpool(_key, context), token)
    if data is None or data.kind != UNSUBSCRIBE:
        return NOT_FOUND
    form = f'<form method=post action="{escape(token)}"><button type=submit>Unsubscribe</button></form>'
    return _page("Unsubscribe", "Stop receiving these emails? One click and you will get no more.", form)


@router.post("/u/{token}")
async def unsubscribe(token: str, request: Request, context: Context) -> Response:
    """One-click (RFC 8058: a POST with `List-Unsubscribe=One-Click`) or the page's button."""
    data = read_token(await run_in_threadpool(_key, context), token)

    def record() -> bool:
        with context.db.session() as session:
            step = _step(session, data, UNSUBSCRIBE)
            if step is None:
                return False
            contact = step.campaign.contact
            if not contact.email_opt_out:
                contact.email_opt_out = True
                _record(session, context, request, step, "unsubscribe")
                record_event(
                    session,
                    contact_id=contact.id,
                    kind="unsubscribed",
                    payload={"campaign_id": step.campaign_id, "step_id": step.id},
                    now=context.now(),
                )
            return True

    if not await run_in_threadpool(record):
        return NOT_FOUND
    return _page("You are unsubscribed", "You will get no more of these emails.")
