"""What the API checks before a request reaches a route, as one ASGI middleware:

1. the bearer token, before a byte of the body is read (a 100 MB body without a
   token costs nothing);
2. the body's size, while it is read: past `AUTOMATIONS_API_MAX_BODY` (1 MiB by
   default; the contacts import takes files up to `MAX_IMPORT_BODY`) the answer
   is 413, whatever `Content-Length` said;
3. the inbound SMS webhook may instead carry Twilio's `X-Twilio-Signature` (Twilio
   cannot send a bearer token): checked with `AUTOMATIONS_SMS_AUTH_TOKEN` over the
   URL Twilio called and the form fields, the request is let in and marked
   (`scope["state"]["twilio"]`) so that the route answers Twilio in TwiML;
4. `Idempotency-Key` on POST (the Stripe convention): the first answer to a key
   is kept for 24 hours and given again to a retry of the same request, which
   creates nothing new; the same key with another request is refused (422).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.models import IdempotentRequest
from automations.domain.timeutil import utcnow
from automations.engagement.signatures import twilio_signature_valid

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_IMPORT_BODY = 200 * 1024 * 1024
IMPORT_PATH = "/api/contacts/import"
SMS_INBOUND_PATH = "/api/automation/inbound/sms"
IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255
# A whole body may nest a little deeper than one field may (`domain.limits`,
# 32): the field's own check then names it.
MAX_BODY_DEPTH = 64


async def _answer(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = json.dumps(body).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head + (headers or [])})
    await send({"type": "http.response.body", "body": payload})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def token_problem(settings: Settings, authorization: str | None) -> str | None:
    """Why `authorization` does not let a request in, or None."""
    expected = settings.api_token
    if expected is None or not expected.get_secret_value():
        return "the API has no token configured (AUTOMATIONS_API_TOKEN)"
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return "missing bearer token: send 'Authorization: Bearer <token>'"
    # Bytes, so that any header value compares in constant time without a TypeError.
    given = token.strip().encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(given, expected.get_secret_value().encode()):
        return "invalid bearer token"
    return None


class RequestGuard:
    """See the module docstring. Paths outside `/api/` (the docs, the tracking
    links) pass untouched."""

    def __init__(self, app: ASGIApp, *, db: Database, settings: Settings):
        self.app, self.db, self.settings = app, db, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        if (
            scope["path"] == SMS_INBOUND_PATH
            and _header(scope, b"authorization") is None
            and _header(scope, b"x-twilio-signature") is not None
        ):
            await self._twilio(scope, receive, send)
            return
        problem = token_problem(self.settings, _header(scope, b"authorization"))
        if problem is not None:
            await _answer(send, 401, {"detail": problem}, [(b"www-authenticate", b"Bearer")])
            return
        limit = self.settings.api_max_body
        if scope["path"] == IMPORT_PATH:
            limit = max(limit, MAX_IMPORT_BODY)
        declared = _header(scope, b"content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        body = await _read_body(receive, limit)
        if body is None:
            await _too_large(send, limit)
            return
        if body.count(b"[") + body.count(b"{") > MAX_BODY_DEPTH and nesting_depth(body) > MAX_BODY_DEPTH:
            problem = f"JSON nested more than {MAX_BODY_DEPTH} levels deep"
            await _answer(send, 422, {"detail": "invalid input", "errors": {"body": problem}})
            return
        key = _header(scope, b"idempotency-key") if scope["method"] == "POST" else None
        if key is not None:
            await self._idempotent(scope, body, receive, send, key)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _twilio(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A webhook signed by Twilio instead of carrying the bearer token."""
        auth_token = self.settings.sms_auth_token
        if auth_token is None or not auth_token.get_secret_value():
            problem = "X-Twilio-Signature cannot be checked: AUTOMATIONS_SMS_AUTH_TOKEN is not set"
            await _answer(send, 401, {"detail": problem})
            return
        limit = self.settings.api_max_body
        body = await _read_body(receive, limit)
        if body is None:
            await _too_large(send, limit)
            return
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100, errors="strict")
        except (UnicodeDecodeError, ValueError):
            fields = None
        signature = _header(scope, b"x-twilio-signature") or ""
        secret = auth_token.get_secret_value()
        if fields is None or not any(
            twilio_signature_valid(secret, url, fields, signature) for url in self._called_urls(scope)
        ):
            problem = (
                "invalid X-Twilio-Signature: it must be signed with AUTOMATIONS_SMS_AUTH_TOKEN over the URL "
                "Twilio calls (set AUTOMATIONS_PUBLIC_URL to that URL's base when a proxy is in front)"
            )
            await _answer(send, 401, {"detail": problem})
            return
        scope.setdefault("state", {})["twilio"] = True
        await self.app(scope, _replay(body, receive), send)

    def _called_urls(self, scope: Scope) -> list[str]:
        """The URLs Twilio may have signed: under `AUTOMATIONS_PUBLIC_URL`, and as this request reached us."""
        query = scope.get("query_string", b"").decode("latin-1")
        tail = scope["path"] + (f"?{query}" if query else "")
        urls = []
        if self.settings.public_url:
            urls.append(self.settings.public_url.rstrip("/") + tail)
        host = _header(scope, b"host")
        if host:
            urls.append(f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}{tail}")
        return urls

    async def _idempotent(self, scope: Scope, body: bytes, receive: Receive, send: Send, key: str) -> None:
        if not key or len(key) > MAX_KEY_LENGTH:
            errors = {"Idempotency-Key": f"1 to {MAX_KEY_LENGTH} characters"}
            await _answer(send, 422, {"detail": "invalid input", "errors": errors})
            return
        request = scope["method"].encode() + b" " + scope["path"].encode() + b"?" + scope.get("query_string", b"")
        fingerprint = hashlib.sha256(request + b"\n" + body).hexdigest()
        now = utcnow()
        stored = await run_in_threadpool(self._stored_answer, key, now)
        if stored is not None:
            if stored.fingerprint != fingerprint:
                errors = {"Idempotency-Key": "already used for another request in the last 24 hours"}
                await _answer(send, 422, {"detail": "invalid input", "errors": errors})
                return
            headers = [(b"idempotent-replayed", b"true")]
            await _raw(send, stored.status, stored.body.encode(), stored.content_type, headers)
            return
        captured: dict[str, Any] = {"status": 500, "body": b"", "type": "application/json"}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        captured["type"] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
            await send(message)

        await self.app(scope, _replay(body, receive), capture)
        if captured["status"] >= 500:
            return  # a server error is not an answer worth repeating: the retry runs again
        answer = IdempotentRequest(
            key=key,
            fingerprint=fingerprint,
            status=captured["status"],
            content_type=captured["type"],
            body=captured["body"].decode("utf-8", "replace"),
            created_at=now,
        )
        await run_in_threadpool(self._store, answer)

    def _stored_answer(self, key: str, now: datetime) -> IdempotentRequest | None:
        with self.db.session() as session:
            session.execute(delete(IdempotentRequest).where(IdempotentRequest.created_at < now - IDEMPOTENCY_TTL))
            return session.scalar(select(IdempotentRequest).where(IdempotentRequest.key == key))

    def _store(self, answer: IdempotentRequest) -> None:
        try:
            with self.db.session() as session:
                session.add(answer)
        except IntegrityError:
            pass  # the same key raced in from another request: the first answer stays


async def _too_large(send: Send, limit: int) -> None:
    await _answer(send, 413, {"detail": f"the request body is larger than {limit:,} bytes (AUTOMATIONS_API_MAX_BODY)"})


async def _raw(send: Send, status: int, body: bytes, content_type: str, headers: list[tuple[bytes, bytes]]) -> None:
    head = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head + headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the route the body already read, then the server's
    own messages (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def nesting_depth(body: bytes) -> int:
    """How deeply a JSON text nests arrays and objects (strings skipped), read as
    bytes: deeper than the parser's own limit would be a server error, not a 422."""
    deepest = level = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            level += 1
            deepest = max(deepest, level)
        elif byte in (0x5D, 0x7D):
            level -= 1
    return deepest
