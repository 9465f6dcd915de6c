"""The database goes away while recipients open and click: the API keeps
answering from memory, the hits wait in the writer's queue, and once the
database is back every one of them is written (PostgreSQL reached through a
loopback TCP proxy that the test cuts and restores, so the connections really
drop)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from automations.api import create_app
from automations.domain.config import Settings
from automations.domain.db import Database
from automations.domain.models import AutomationStep, EngagementEvent
from automations.engagement.tokens import load_tracking_key, make_token
from tests.api.conftest import AUTH, EMAIL_STEP, Clock, api_settings
from tests.conftest import NOW

PRICING = "https://example.com/pricing"


class CuttableProxy:
    """Forwards loopback connections to a TCP server until `cut()`, which drops
    every open connection and refuses new ones until `restore()`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.up.clear()
        with self._lock:
            doomed, self._open = self._open, []
        for s in doomed:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        self.up.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()


@pytest.fixture
def proxied(pg_db: Database) -> Iterator[tuple[Database, CuttableProxy]]:
    url = urlsplit(pg_db.url)
    proxy = CuttableProxy((url.hostname or "127.0.0.1", url.port or 5432))
    netloc = f"{url.username}@127.0.0.1:{proxy.port}" if url.username else f"127.0.0.1:{proxy.port}"
    db = Database(urlunsplit(url._replace(netloc=netloc)), settings=Settings(_env_file=None))
    try:
        yield db, proxy
    finally:
        db.dispose()
        proxy.close()


def test_hits_answered_during_an_outage_are_written_when_the_database_is_back(
    pg_db: Database, proxied: tuple[Database, CuttableProxy]
) -> None:
    db, proxy = proxied
    clock = Clock(NOW)
    with TestClient(create_app(db, api_settings(), clock=clock), headers=AUTH) as api:
        contact = api.post("/api/contacts/", json={"first_name": "Ada", "email": "ada@example.com"}).json()
        created = api.post(
            "/api/automation/campaigns/", json={"name": "N", "contact_id": contact["id"], "steps": [EMAIL_STEP]}
        ).json()
        step_id = created["steps"][0]["id"]
        with pg_db.session() as session:
            step = session.get(AutomationStep, step_id)
            assert step is not None
            step.status, step.executed_at = "sent", NOW - timedelta(hours=1)
            step.result = {"message_id": "<x@localhost>", "links": [PRICING]}
        key = load_tracking_key(pg_db)
        pixel, link = f"/t/o/{make_token(key, 'o', step_id)}", f"/t/c/{make_token(key, 'c', step_id, 0)}"
        reader = {"User-Agent": "Thunderbird/128"}
        assert api.get(pixel, headers=reader).status_code == 200  # the key and the step are now in memory
        writer = api.app.state.tracking.writer  # type: ignore[attr-defined]
        writer.flush()

        proxy.cut()
        for _ in range(20):
            clock.advance(timedelta(seconds=1))
            assert api.get(pixel, headers=reader).status_code == 200
            answer = api.get(link, headers=reader, follow_redirects=False)
            assert answer.status_code == 302 and answer.headers["location"] == PRICING
        time.sleep(1)  # the writer tried (every 200 ms) and failed: the hits are still queued
        assert writer.pending() == 40 and writer.dropped == 0
        with pg_db.read_session() as session:
            assert session.scalar(select(func.count()).select_from(EngagementEvent)) == 1

        proxy.restore()
        deadline = time.monotonic() + 20
        while writer.pending() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert writer.pending() == 0 and writer.dropped == 0
    with pg_db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(EngagementEvent)) == 41
        step = session.get(AutomationStep, step_id)
        assert step is not None and step.opened_at == NOW and step.clicked_at is not None
