"""Signed tokens in the links of an email: open pixel, link clicks, unsubscribe,
and the per-message reply address.

A token names the step it belongs to and what it is for, signed with a key that is
generated on first use and kept in `app_settings` (like the webhook secret), so
the runner that writes the links and the API that answers them agree. Payloads
are compact JSON lists (`["c", 42, 0]`), which keeps a token under 50 characters.

Reply tokens live in the local part of an address (`team+r-<token>@example.com`),
where some mail systems change the case of letters, so they use lower-case
base 36 and hex only and are read case-insensitively.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import NamedTuple

from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from automations.domain.db import Database
from automations.domain.models import AppSetting

KEY_NAME = "tracking_key"
SALT = "automations.tracking"

OPEN, CLICK, UNSUBSCRIBE = "o", "c", "u"
KINDS = frozenset({OPEN, CLICK, UNSUBSCRIBE})

REPLY_PREFIX = "r-"
REPLY_MAC_HEX = 16  # 64 bits of HMAC-SHA256: guessing one is out of reach
# A step id in base 36, then the MAC (REPLY_MAC_HEX hex digits).
_REPLY_TOKEN = re.compile(r"([0-9a-z]{1,13})-([0-9a-f]{16})")
_REPLY_IN_ADDRESS = re.compile(r"\+r-([0-9a-z]{1,13}-[0-9a-f]{16})@", re.I)


class TokenData(NamedTuple):
    """What a valid token says: its kind (`o`, `c`, `u`), the step, and for a
    click the index of the link in the message (None otherwise)."""

    kind: str
    step_id: int
    link: int | None = None


def new_key() -> str:
    return secrets.token_urlsafe(32)


def get_tracking_key(session: Session) -> str:
    """The signing key, generated on first use and kept in `app_settings`
    (concurrent runners agree on the first one stored)."""
    stored = session.scalar(select(AppSetting.value).where(AppSetting.key == KEY_NAME))
    if stored:
        return stored
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(AppSetting).values(key=KEY_NAME, value=new_key()).on_conflict_do_nothing())
    return session.scalar(select(AppSetting.value).where(AppSetting.key == KEY_NAME)) or ""


def load_tracking_key(db: Database) -> str:
    """`get_tracking_key` in a transaction of its own."""
    with db.session() as session:
        return get_tracking_key(session)


def _serializer(key: str) -> URLSafeSerializer:
    return URLSafeSerializer(key, salt=SALT, serializer_kwargs={"separators": (",", ":")})


def make_token(key: str, kind: str, step_id: int, link: int | None = None) -> str:
    """A signed, URL-safe token for `kind` ("o" open, "c" click on link number
    `link`, "u" unsubscribe) of step `step_id`."""
    if kind not in KINDS:
        raise ValueError(f"unknown token kind {kind!r}")
    if (kind == CLICK) != (link is not None):
        raise ValueError("a click token needs a link index, and only a click token has one")
    payload: list[object] = [kind, step_id] if link is None else [kind, step_id, link]
    token = _serializer(key).dumps(payload)
    assert isinstance(token, str)
    return token


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def read_token(key: str, token: str) -> TokenData | None:
    """What `token` says, or None when it is malformed, tampered with, signed with
    another key or not one of ours. Never raises: the input comes off the internet."""
    try:
        payload = _serializer(key).loads(token)
    except (BadData, ValueError, TypeError, UnicodeError):
        return None
    if not isinstance(payload, list) or len(payload) not in (2, 3):
        return None
    kind, step_id = payload[0], payload[1]
    link = payload[2] if len(payload) == 3 else None
    if kind not in KINDS or not _is_count(step_id) or step_id == 0:
        return None
    if (kind == CLICK) != (link is not None) or (link is not None and not _is_count(link)):
        return None
    return TokenData(kind, step_id, link)


# --- reply tokens --------------------------------------------------------------


def _reply_mac(key: str, step: str) -> str:
    digest = hmac.new(key.encode(), f"{SALT}.reply.{step}".encode(), hashlib.sha256).hexdigest()
    return digest[:REPLY_MAC_HEX]


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def make_reply_token(key: str, step_id: int) -> str:
    """A token for the reply address of step `step_id` (lower-case letters, digits, `-`)."""
    if step_id <= 0:
        raise ValueError("a reply token needs a step")
    step = _base36(step_id)
    return f"{step}-{_reply_mac(key, step)}"


def read_reply_token(key: str, token: str) -> int | None:
    """The step a reply token names, or None when it is not a valid one."""
    match = _REPLY_TOKEN.fullmatch(token.strip().lower())
    if match is None:
        return None
    step, mac = match.groups()
    if not hmac.compare_digest(mac, _reply_mac(key, step)):
        return None
    step_id = int(step, 36)
    return step_id or None


def reply_address(sender: str, token: str) -> str:
    """`local+r-<token>@domain` of the address `sender` (a bare address)."""
    local, _, domain = sender.rpartition("@")
    if not local:
        raise ValueError(f"not an email address: {sender!r}")
    return f"{local}+{REPLY_PREFIX}{token}@{domain}"


def step_from_reply_address(key: str, address: str) -> int | None:
    """The step whose reply address `address` is (as `reply_address` made it), or None."""
    match = _REPLY_IN_ADDRESS.search(address)
    return read_reply_token(key, match.group(1)) if match else None


__all__ = [
    "CLICK",
    "KINDS",
    "OPEN",
    "UNSUBSCRIBE",
    "TokenData",
    "get_tracking_key",
    "load_tracking_key",
    "make_reply_token",
    "make_token",
    "read_reply_token",
    "read_token",
    "reply_address",
    "step_from_reply_address",
]
