"""The runner benchmark's `faults` section: real `runner.py` processes with
default options against servers that misbehave, timing what an operator would:

- takeover: a runner is SIGKILLed with deliveries hanging; how long until
  another runner (default options) has executed every one of its steps;
- SIGTERM: how long a runner with 16 deliveries hanging takes to exit, and how
  many unstarted steps it gave back;
- slow SMTP: two runners, a relay that takes 12 s per message (a batch outlives
  the 30 s lease); how many emails arrived more than once.
"""

from __future__ import annotations

import asyncio
import collections
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from automations.domain.db import Database
from automations.domain.models import AutomationStep

ROOT = Path(__file__).resolve().parent.parent


class HangingHttp:
    """Answers the first `hang` requests after `delay` seconds, the rest at once;
    counts requests per `webhook-id`."""

    def __init__(self, hang: int, delay: float):
        self.ids: collections.Counter[str] = collections.Counter()
        self.hang, self.delay, self.lock = hang, delay, threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                with sink.lock:
                    sink.ids[self.headers.get("webhook-id", "")] += 1
                    slow = sink.hang > 0
                    sink.hang -= 1
                if slow:
                    time.sleep(sink.delay)
                try:
                    self.send_response(200)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def requests(self) -> int:
        with self.lock:
            return sum(self.ids.values())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SlowSmtp:
    def __init__(self, delay: float):
        self.ids: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                await asyncio.sleep(delay)
                for line in envelope.content.split(b"\r\n"):
                    if line.lower().startswith(b"message-id:"):
                        with sink.lock:
                            sink.ids[line.split(b":", 1)[1].strip().decode()] += 1
                return "250 OK"

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


def _open(db: Database) -> int:
    open_statuses = AutomationStep.status.in_(("pending", "running"))
    with db.read_session() as s:
        return s.scalar(select(func.count()).select_from(AutomationStep).where(open_statuses)) or 0


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _runner(env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "runner.py"), "--runner-id", name],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def takeover(db: Database, env: dict[str, str], fill: Callable[..., None]) -> None:
    sink = HangingHttp(hang=16, delay=120)
    fill(db, 20, "webhook", _now(), url=sink.url)
    doomed = _runner(env, "doomed")
    _wait(lambda: sink.requests() >= 16, 60)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    killed = time.monotonic()
    heir = _runner(env, "heir")
    _wait(lambda: _open(db) == 0, 120)
    seconds = time.monotonic() - killed
    heir.send_signal(signal.SIGTERM)
    heir.wait()
    sink.close()
    print(
        f"faults   takeover after SIGKILL (defaults: --lease 30, --interval 5): every step done {seconds:.1f}s "
        f"after the kill (target <= 45 s); {sum(n > 1 for n in sink.ids.values())} of 16 in flight sent again "
        "with the same webhook-id",
        flush=True,
    )


def sigterm(db: Database, env: dict[str, str], fill: Callable[..., None]) -> None:
    sink = HangingHttp(hang=16, delay=60)
    fill(db, 100, "webhook", _now(), url=sink.url)
    runner = _runner(env, "stopping")
    _wait(lambda: sink.requests() >= 16, 60)
    sent = time.monotonic()
    runner.send_signal(signal.SIGTERM)
    runner.wait()
    seconds = time.monotonic() - sent
    with db.read_session() as s:
        given_back = s.scalar(
            select(func.count())
            .select_from(AutomationStep)
            .where(AutomationStep.status == "pending", AutomationStep.attempts == 0)
        )
    sink.close()
    print(
        f"faults   SIGTERM with 16 webhooks hanging (AUTOMATIONS_WEBHOOK_TIMEOUT 10 s): exit {seconds:.1f}s after "
        f"the signal (target <= 15 s), {given_back} unstarted steps given back at once",
        flush=True,
    )


def slow_smtp(db: Database, env: dict[str, str], fill: Callable[..., None]) -> None:
    smtp = SlowSmtp(delay=12)
    fill(db, 40, "email", _now())
    env = {**env, "AUTOMATIONS_SMTP_HOST": "127.0.0.1", "AUTOMATIONS_SMTP_PORT": str(smtp.port)}
    began = time.monotonic()
    runners = [_runner(env, f"r{i}") for i in range(2)]
    _wait(lambda: _open(db) == 0, 300)
    seconds = time.monotonic() - began
    for r in runners:
        r.send_signal(signal.SIGTERM)
    for r in runners:
        r.wait()
    smtp.close()
    duplicates = sum(n - 1 for n in smtp.ids.values())
    print(
        f"faults   slow SMTP (12 s a message, 40 emails, 2 runners, defaults): {len(smtp.ids)} distinct emails "
        f"received, {duplicates} duplicates (target 0), all recorded after {seconds:.0f}s",
        flush=True,
    )


def _now() -> Any:
    from datetime import timedelta

    from automations.domain.timeutil import utcnow

    return utcnow() - timedelta(seconds=1)
