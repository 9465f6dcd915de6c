"""What recipients reach from an email (SPEC section 11), without a bearer token:
the open pixel `/t/o/<token>`, tracked links `/t/c/<token>` and the unsubscribe
page `/t/u/<token>` (one-click by POST, RFC 8058).

Tokens are signed (`engagement.tokens`): a tampered or unknown token is a 404,
and a click only ever redirects to a link the step's message carried (kept in
the step's result when it was sent), so this is never an open redirect.
Opens and clicks from mail-privacy proxies and link scanners are recorded as
`machine`: they set no first open or click and trigger no rule.

Opens and clicks are answered by `TrackingFastPath`, an ASGI middleware in front of
FastAPI's routing, from memory: the token is checked on each request (CPU
only), the step comes from a small cache, and the hit is queued for the
`HitWriter`, which writes hits in batches (`engagement.hits`). The router's
lifespan starts the writer with the application and writes what is queued when
it stops. An opt-out is written at once, in the request.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from automations.api.deps import ApiContext, Context
from automations.api.guard import ASGIApp, Receive, Scope, Send
from automations.domain.db import Database
from automations.domain.models import AutomationStep, EngagementEvent
from automations.engagement.hits import CLICK_KIND, OPEN_KIND, Hit, HitWriter, StepCache, StepInfo, write_hits
from automations.engagement.tokens import OPEN, UNSUBSCRIBE, load_tracking_key, read_token
from automations.services.events import record_event

# How long a hit waits for room in a full queue before it is dropped (`HitWriter`).
FULL_WAIT_S = 5.0


class Tracking:
    """One application's tracking state: the signing key, the step cache and the hit writer."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.steps = StepCache(db)
        self.writer = HitWriter(db)
        self._key: str | None = None

    async def key(self) -> str:
        if self._key is None:
            self._key = await run_in_threadpool(load_tracking_key, self.db)
        return self._key

    async def step(self, step_id: int) -> StepInfo | None:
        return self.steps.cached(step_id) or await run_in_threadpool(self.steps.load, step_id)

    async def record(self, hit: Hit) -> None:
        """Queue the hit; without a running writer (an app whose lifespan did not run), write it now.

        A full queue (more hits than the database takes) slows the answer down rather
        than losing the hit: the request waits up to `FULL_WAIT_S` for room."""
        if not self.writer.running:
            await run_in_threadpool(self._write_now, hit)
            return
        if self.writer.add(hit):
            return
        deadline = time.monotonic() + FULL_WAIT_S
        while time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            if self.writer.add(hit):
                return
        self.writer.drop(hit)

    def _write_now(self, hit: Hit) -> None:
        with self.db.session() as session:
            write_hits(session, [hit])


def tracking_of(app: FastAPI) -> Tracking:
    """The application's tracking state (made on first use when the lifespan did not run)."""
    state = getattr(app.state, "tracking", None)
    if state is None:
        context: ApiContext = app.state.context
        state = app.state.tracking = Tracking(context.db)
    return state


def flush_tracking(app: FastAPI) -> int:
    """Write the queued opens and clicks now (tests, and anyone who must see them at once)."""
    return tracking_of(app).writer.flush()


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    tracking = tracking_of(app)
    tracking.writer.start()
    try:
        yield
    finally:
        # A clean stop writes every queued hit.
        await run_in_threadpool(tracking.writer.close)


router = APIRouter(prefix="/t", include_in_schema=False, lifespan=_lifespan)

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


def _is_machine(user_agent: str, sent_at: datetime | None, now: datetime) -> bool:
    agent = user_agent.lower()
    if any(marker in agent for marker in MACHINE_AGENTS):
        return True
    return sent_at is not None and now - sent_at < MACHINE_DELAY


def _agent(request: Request) -> str:
    return (request.headers.get("user-agent") or "")[:300]


def _ip(request: Request, context: ApiContext) -> str | None:
    if not context.settings.track_ip or request.client is None:
        return None
    return request.client.host


Answer = tuple[int, list[tuple[bytes, bytes]], bytes]

_NOT_FOUND: Answer = (404, [(b"content-type", b"text/plain; charset=utf-8")], b"This link is not valid.")
_PIXEL_HEADERS = [(b"content-type", b"image/gif"), (b"cache-control", b"no-store")]


def _scope_agent(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"user-agent":
            return value.decode("latin-1")[:300]
    return ""


async def _hit(app: Any, kind: str, token: str, scope: Scope) -> Answer:
    """The answer to an open (`o`) or click (`c`), the hit queued for the writer."""
    tracking = tracking_of(app)
    data = read_token(await tracking.key(), token)
    if data is None or data.kind != kind:
        return _NOT_FOUND
    step = await tracking.step(data.step_id)
    if step is None:
        return _NOT_FOUND
    context: ApiContext = app.state.context
    now, agent = context.now(), _scope_agent(scope)
    client = scope.get("client")
    ip = client[0] if context.settings.track_ip and client else None
    # A HEAD is a link checker or a proxy making sure, never a person reading.
    machine = scope["method"] == "HEAD" or _is_machine(agent, step.executed_at, now)
    if kind == OPEN:
        await tracking.record(Hit(OPEN_KIND, step.step_id, now, machine=machine, user_agent=agent or None, ip=ip))
        return 200, _PIXEL_HEADERS, PIXEL
    if data.link is None or not 0 <= data.link < len(step.links):
        return _NOT_FOUND
    url = step.links[data.link]
    if not url.startswith(("http://", "https://")):
        return _NOT_FOUND
    # A link scanner (Safe Links, Proofpoint...) follows every link as the message
    # arrives: recorded, redirected, but no person's click.
    hit = Hit(
        CLICK_KIND, step.step_id, now, machine=machine, user_agent=agent or None, ip=ip, link_index=data.link, url=url
    )
    await tracking.record(hit)
    # Quoted as Starlette's RedirectResponse does: no control character reaches the header.
    location = quote(url, safe=":/%#?=@[]!$&'()*+,;").encode("ascii")
    return 302, [(b"location", location), (b"content-type", b"text/plain")], b""


class TrackingFastPath:
    """ASGI middleware that answers `GET`/`HEAD /t/o/<token>` and `/t/c/<token>` itself,
    before FastAPI's routing and dependency machinery: these two are hit by every
    recipient's mail client and are the API's hottest paths. Everything else passes
    to the application."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path: str = scope["path"]
            if path.startswith(("/t/o/", "/t/c/")) and "/" not in path[5:]:
                status, headers, body = await _hit(scope["app"], path[3], path[5:], scope)
                headers = [*headers, (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
                return
        await self.app(scope, receive, send)


def _unsubscribe_event(session: Session, step: AutomationStep, now: datetime, agent: str, ip: str | None) -> None:
    campaign = step.campaign
    session.add(
        EngagementEvent(
            kind="unsubscribe",
            step_id=step.id,
            campaign_id=campaign.id,
            contact_id=campaign.contact_id,
            occurred_at=now,
            machine=False,
            user_agent=agent or None,
            ip=ip,
        )
    )


def _page(title: str, text: str, form: str = "") -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title></head>"
        '<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem">'
        f"<h1>{escape(title)}</h1><p>{escape(text)}</p>{form}</body></html>"
    )


@router.get("/u/{token}")
async def unsubscribe_page(token: str, request: Request) -> Response:
    data = read_token(await tracking_of(request.app).key(), token)
    if data is None or data.kind != UNSUBSCRIBE:
        return NOT_FOUND
    form = f'<form method=post action="{escape(token)}"><button type=submit>Unsubscribe</button></form>'
    return _page("Unsubscribe", "Stop receiving these emails? One click and you will get no more.", form)


@router.post("/u/{token}")
async def unsubscribe(token: str, request: Request, context: Context) -> Response:
    """One-click (RFC 8058: a POST with `List-Unsubscribe=One-Click`) or the page's button."""
    data = read_token(await tracking_of(request.app).key(), token)
    agent, ip = _agent(request), _ip(request, context)

    def record() -> bool:
        with context.db.session() as session:
            step = session.get(AutomationStep, data.step_id) if data and data.kind == UNSUBSCRIBE else None
            if step is None:
                return False
            contact = step.campaign.contact
            if not contact.email_opt_out:
                contact.email_opt_out = True
                _unsubscribe_event(session, step, context.now(), agent, ip)
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
