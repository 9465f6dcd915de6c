"""SMS over a Twilio-compatible Messages API, or JSON lines in the outbox."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import httpx

from automations.channels.base import (
    SENT,
    Delivery,
    Job,
    PermanentError,
    TransientError,
    classify_http,
    delivery_from_error,
)
from automations.domain.config import Settings
from automations.domain.timeutil import UTC

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def check_phone(job: Job) -> str:
    if not job.phone:
        raise PermanentError("contact has no phone number")
    if not E164.match(job.phone):
        raise PermanentError("invalid phone number (E.164 expected)")
    return job.phone


class OutboxSmsChannel:
    """Appends one JSON line per message to `<outbox>/sms.jsonl`."""

    name = "sms"
    _lock = threading.Lock()  # appends from several worker threads must not interleave

    def __init__(self, settings: Settings):
        self.settings = settings
        self.path = Path(settings.outbox_dir) / "sms.jsonl"

    def send_many(self, jobs: Sequence[Job]) -> list[Delivery]:
        lines, deliveries = [], []
        for job in jobs:
            try:
                to = check_phone(job)
            except Exception as exc:
                deliveries.append(delivery_from_error(exc))
                continue
            lines.append(
                json.dumps(
                    {
                        "id": job.idempotency_key,
                        "to": to,
                        "from": self.settings.sms_from or "",
                        "body": job.body,
                        "at": datetime.now(UTC).isoformat(),
                    }
                )
                + "\n"
            )
            deliveries.append(Delivery(SENT, f"written to {self.path}", {"path": str(self.path)}))
        if lines:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, self.path.open("a", encoding="utf-8") as handle:
                handle.writelines(lines)
        return deliveries

    def close(self) -> None:
        pass


class HttpSmsChannel:
    """POSTs to `{AUTOMATIONS_SMS_API_URL}/2010-04-01/Accounts/{sid}/Messages.json`
    with basic auth and the form fields `To`, `From`, `Body`. The client is shared
    by the worker threads (httpx clients are thread-safe)."""

    name = "sms"
    io_bound = True

    def __init__(self, settings: Settings, client: httpx.Client | None = None):
        self.settings = settings
        sid = settings.sms_account_sid or ""
        self.url = f"{(settings.sms_api_url or '').rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
        token = settings.sms_auth_token.get_secret_value() if settings.sms_auth_token else ""
        self.client = client or httpx.Client(
            timeout=settings.webhook_timeout,
            auth=(sid, token),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

    def send(self, job: Job) -> Delivery:
        try:
            to = check_phone(job)
            response = self.client.post(
                self.url,
                data={"To": to, "From": self.settings.sms_from or "", "Body": job.body},
                headers={"Idempotency-Key": job.idempotency_key},
            )
        except httpx.TimeoutException as exc:
            return delivery_from_error(TransientError(f"SMS API timed out: {type(exc).__name__}"))
        except httpx.TransportError as exc:
            return delivery_from_error(TransientError(f"SMS API unreachable: {type(exc).__name__}: {exc}"))
        except Exception as exc:
            return delivery_from_error(exc)
        failure = classify_http(response.status_code, response.headers.get("retry-after"), "SMS API")
        if failure is not None:
            return failure
        try:
            sid = str(response.json().get("sid", ""))
        except ValueError:
            sid = ""
        return Delivery(
            SENT, f"accepted by SMS API ({response.status_code})", {"http_status": response.status_code, "sid": sid}
        )

    def send_many(self, jobs: Sequence[Job]) -> list[Delivery]:
        return [self.send(job) for job in jobs]

    def close(self) -> None:
        self.client.close()


def sms_channel(settings: Settings) -> OutboxSmsChannel | HttpSmsChannel:
    return HttpSmsChannel(settings) if settings.sms_api_url else OutboxSmsChannel(settings)
