"""Real local sinks for the runner's tests: an aiosmtpd SMTP server and an HTTP
server on loopback, each recording what it received and answering from a script;
and helpers that put campaigns into a test database."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import insert, select

from automations.domain.db import Database
from automations.domain.models import (
    AutomationCampaign,
    AutomationStep,
    Contact,
    StepAttempt,
)
from automations.services.campaigns import create_campaign
from automations.services.contacts import create_contact


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- SMTP ----------------------------------------------------------------------


class SmtpSink:
    """aiosmtpd handler: keeps every accepted message; `replies[address]` is a list
    of SMTP replies given (one per try) before that recipient is accepted."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.replies: dict[str, list[str]] = {}
        self.connections = 0
        self.lock = threading.Lock()
        self.delay = 0.0  # seconds before each message is accepted (a slow relay)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        with self.lock:
            script = self.replies.get(address)
            if script:
                return script.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 Message accepted"

    def message_ids(self) -> list[str]:
        with self.lock:
            return [str(m["Message-ID"]) for m in self.messages]


@contextmanager
def smtp_server(idle_timeout: float | None = None) -> Iterator[tuple[SmtpSink, int]]:
    """A real SMTP server on loopback; with `idle_timeout` it hangs up on clients
    idle for that many seconds, as real servers do."""
    sink = SmtpSink()
    port = free_port()
    extra: dict[str, Any] = {"timeout": idle_timeout} if idle_timeout is not None else {}
    controller = Controller(sink, hostname="127.0.0.1", port=port, **extra)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


# --- HTTP ----------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"ok": true}'
    delay: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class HttpSink:
    """Records every request; `script[path]` lists replies given in turn (then 200)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: dict[str, list[Reply]] = {}
        self.lock = threading.Lock()
        self.port = 0

    def next_reply(self, path: str) -> Reply:
        with self.lock:
            replies = self.script.get(path.split("?")[0])
            return replies.pop(0) if replies else Reply()

    def on(self, path: str, *replies: Reply) -> None:
        with self.lock:
            self.script.setdefault(path, []).extend(replies)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def paths(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.requests]


class _Server(ThreadingHTTPServer):
    # A runner opens 16 connections at once; the default backlog of 5 drops some
    # of them on a busy machine, and their retried SYNs arrive seconds late.
    request_queue_size = 128


@contextmanager
def http_server() -> Iterator[HttpSink]:
    sink = HttpSink()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            with sink.lock:
                sink.requests.append(
                    Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
            reply = sink.next_reply(self.path)
            if reply.delay:
                time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        do_POST = _serve
        do_GET = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    sink.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


# --- data ----------------------------------------------------------------------


def add_contact(db: Database, now: datetime, **fields: Any) -> int:
    data = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": f"ada.{uuid.uuid4().hex[:8]}@example.com",
        "phone": "+14155550100",
        **fields,
    }
    with db.session() as s:
        return create_contact(s, data, now=now).id


def add_campaign(
    db: Database,
    contact_id: int,
    steps: list[dict[str, Any]],
    *,
    start_at: datetime,
    now: datetime,
    name: str = "Welcome",
) -> int:
    with db.session() as s:
        campaign = create_campaign(
            s,
            {"name": name, "contact_id": contact_id, "start_at": start_at, "steps": steps},
            now=now,
            allow_private=True,
        )
        return campaign.id


def bulk_due_steps(
    db: Database,
    count: int,
    message_type: str,
    due: datetime,
    *,
    url: str | None = None,
    email_domain: str = "example.com",
    subject: str = "Hello {{ contact.first_name }}",
    body: str = "Hi {{ contact.first_name }}, one step of many.",
    steps_per_campaign: int = 1,
) -> None:
    """`count` campaigns (one contact each) of `steps_per_campaign` steps, all due
    at `due` (so step N+1 waits only for step N), inserted in bulk."""
    tag = uuid.uuid4().hex[:8]
    with db.session() as s:
        contact_ids = list(
            s.scalars(
                insert(Contact).returning(Contact.id, sort_by_parameter_order=True),
                [
                    {
                        "first_name": f"C{i}",
                        "last_name": tag,
                        "email": f"c{i}.{tag}@{email_domain}",
                        "phone": f"+1415555{i % 10000:04d}",
                        "company": "",
                        "timezone": "UTC",
                        "custom_fields": {},
                        "email_opt_out": False,
                        "sms_opt_out": False,
                        "created_at": due,
                        "updated_at": due,
                    }
                    for i in range(count)
                ],
            )
        )
        campaign_ids = list(
            s.scalars(
                insert(AutomationCampaign).returning(AutomationCampaign.id, sort_by_parameter_order=True),
                [
                    {
                        "name": f"Bulk {tag}",
                        "contact_id": cid,
                        "status": "active",
                        "start_at": due,
                        "created_at": due,
                        "updated_at": due,
                    }
                    for cid in contact_ids
                ],
            )
        )
        s.execute(
            insert(AutomationStep),
            [
                {
                    "campaign_id": cid,
                    "position": position,
                    "name": f"{message_type} step",
                    "message_type": message_type,
                    "delay_days": 0,
                    "delay_hours": 0,
                    "subject": subject,
                    "body": body,
                    "webhook_url": url,
                    "scheduled_at": due,
                    "due_at": due,
                    "status": "pending",
                    "attempts": 0,
                    "idempotency_key": uuid.uuid4().hex,
                }
                for cid in campaign_ids
                for position in range(steps_per_campaign)
            ],
        )


def later(now: datetime, **kwargs: float) -> datetime:
    return now + timedelta(**kwargs)


def steps_and_attempts(db: Database) -> tuple[list[AutomationStep], list[StepAttempt]]:
    with db.read_session() as s:
        found = (
            list(s.scalars(select(AutomationStep).order_by(AutomationStep.id))),
            list(s.scalars(select(StepAttempt).order_by(StepAttempt.id))),
        )
        s.expunge_all()  # keep the loaded values after the read transaction ends
        return found


@contextmanager
def sqlite_write_lock(db: Database, *, release_after: float | None = None) -> Iterator[threading.Event]:
    """Another writer holding `db`'s SQLite write lock (`BEGIN IMMEDIATE`) until
    the block ends, or until `release_after` seconds (set the yielded event to
    release it sooner)."""
    import sqlite3

    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(db.url.removeprefix("sqlite:///"), isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(release_after if release_after is not None else 30)
        connection.execute("COMMIT")
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    locked.wait(5)
    try:
        yield release
    finally:
        if release_after is None:
            release.set()
        holder.join()
