"""Webhook: a JSON POST signed per the Standard Webhooks specification.

`webhook-id` is the step's idempotency key (the same on every retry). The target
is checked by the private-network guard before connecting, the connection goes to
the address that was checked (a second DNS answer cannot swap in a private one),
and every redirect is checked again before it is followed.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from urllib.parse import urljoin

import httpx
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

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
from automations.domain.models import AppSetting
from automations.domain.netguard import (
    BlockedTarget,
    check_url_syntax,
    resolve_and_check,
)
from automations.domain.timeutil import UTC

SECRET_KEY = "webhook_secret"
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def get_webhook_secret(session: Session, settings: Settings) -> str:
    """The signing secret: `AUTOMATIONS_WEBHOOK_SECRET`, or one generated on first
    use and kept in `app_settings` (concurrent runners agree on the first one stored)."""
    if settings.webhook_secret is not None and settings.webhook_secret.get_secret_value():
        return settings.webhook_secret.get_secret_value()
    stored = session.scalar(select(AppSetting.value).where(AppSetting.key == SECRET_KEY))
    if stored:
        return stored
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(AppSetting).values(key=SECRET_KEY, value=new_secret()).on_conflict_do_nothing())
    return session.scalar(select(AppSetting.value).where(AppSetting.key == SECRET_KEY)) or ""


def webhook_secret_is_set(session: Session, settings: Settings) -> bool:
    """Whether a signing secret exists (from the environment or stored); never its value."""
    if settings.webhook_secret is not None and settings.webhook_secret.get_secret_value():
        return True
    return session.scalar(select(AppSetting.key).where(AppSetting.key == SECRET_KEY)) is not None


def build_payload(job: Job, now: datetime) -> dict[str, object]:
    """The JSON document: event, campaign, step, contact, time (and the step's payload)."""
    contact = job.contact
    return {
        "event": job.webhook_event,
        "campaign": {"id": job.campaign_id, "name": job.campaign_name},
        "step": {
            "id": job.step_id,
            "name": job.name,
            "position": job.position,
            "scheduled_at": job.scheduled_at.isoformat(),
        },
        "contact": {
            key: contact.get(key) for key in ("id", "first_name", "last_name", "email", "phone", "company", "tags")
        },
        "time": now.isoformat(),
        "data": job.webhook_payload or {},
    }


Guard = Callable[[str], list[str]]


class WebhookChannel:
    """POSTs signed JSON to each step's URL; safe against private-network targets."""

    name = "webhook"
    io_bound = True

    def __init__(
        self, settings: Settings, secret: str, *, guard: Guard | None = None, client: httpx.Client | None = None
    ):
        self.settings = settings
        self.signer = Webhook(secret)
        allow = settings.webhook_allow_private
        self.guard: Guard = guard or (lambda url: resolve_and_check(url, allow))
        self.client = client or httpx.Client(
            timeout=settings.webhook_timeout,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

    def send(self, job: Job) -> Delivery:
        try:
            return self._send(job)
        except BlockedTarget as exc:
            return Delivery("failed", f"webhook target refused: {exc}")
        except httpx.TimeoutException as exc:
            return delivery_from_error(TransientError(f"webhook timed out: {type(exc).__name__}"))
        except (httpx.TransportError, OSError) as exc:
            return delivery_from_error(TransientError(f"webhook unreachable: {type(exc).__name__}: {exc}"))
        except Exception as exc:
            return delivery_from_error(exc)

    def _send(self, job: Job) -> Delivery:
        if not job.webhook_url:
            raise PermanentError("step has no webhook URL")
        now = datetime.now(UTC)
        body = json.dumps(build_payload(job, now), separators=(",", ":"))
        headers = {
            "content-type": "application/json",
            "user-agent": "automations-runner",
            "webhook-id": job.idempotency_key,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self.signer.sign(job.idempotency_key, now, body),
        }
        url = job.webhook_url
        method = "POST"
        for _hop in range(MAX_REDIRECTS + 1):
            response = self._request_checked(method, url, body if method == "POST" else None, headers)
            location = response.headers.get("location")
            if response.status_code in REDIRECT_STATUSES and location:
                url = urljoin(url, location)
                if response.status_code == 303:
                    method = "GET"  # "see other": fetch the new place, do not post again
                continue
            failure = classify_http(response.status_code, response.headers.get("retry-after"), "webhook target")
            if failure is not None:
                return failure
            return Delivery(
                SENT, f"delivered (HTTP {response.status_code})", {"http_status": response.status_code, "url": url}
            )
        raise PermanentError(f"more than {MAX_REDIRECTS} redirects")

    def _request_checked(self, method: str, url: str, body: str | None, headers: dict[str, str]) -> httpx.Response:
        addresses = self.guard(url)  # BlockedTarget when not allowed, OSError when unresolvable
        scheme, host, port = check_url_syntax(url)
        target = httpx.URL(url)
        address = addresses[0]
        # Connect to the address that was checked; keep the name for Host and TLS.
        pinned = target.copy_with(host=address)
        default_port = 443 if scheme == "https" else 80
        host_header = host if port == default_port else f"{host}:{port}"
        if ":" in host and not host.startswith("["):
            host_header = f"[{host}]" if port == default_port else f"[{host}]:{port}"
        extensions = {"sni_hostname": host} if scheme == "https" else {}
        request_headers = {**headers, "host": host_header}
        return self.client.request(method, pinned, content=body, headers=request_headers, extensions=extensions)

    def send_many(self, jobs: Sequence[Job]) -> list[Delivery]:
        return [self.send(job) for job in jobs]

    def close(self) -> None:
        self.client.close()
