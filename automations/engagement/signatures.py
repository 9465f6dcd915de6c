"""Twilio's request signature (`X-Twilio-Signature`), so that an SMS provider's
inbound webhook can be let in without our bearer token, which Twilio cannot send.

Twilio signs each webhook request with the account's auth token: HMAC-SHA1 over
the full URL it was configured with, followed by each POST field's name and value
in the order of the names, base64-encoded. Twilio is inconsistent about the
port (`https://host/...` or `https://host:443/...`), so both forms are accepted,
as its own validator does. Comparisons are in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def twilio_signature(auth_token: str, url: str, fields: Mapping[str, Sequence[str]]) -> str:
    """The signature Twilio sends for a POST of `fields` to `url`."""
    text = url + "".join(name + value for name in sorted(fields) for value in sorted(set(fields[name])))
    digest = hmac.new(auth_token.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _port_forms(url: str) -> set[str]:
    """`url` as given, without its default port, and with it."""
    parts = urlsplit(url)
    port = DEFAULT_PORTS.get(parts.scheme)
    try:
        given_port = parts.port  # a Host header's port is the sender's to choose: "x:abc" raises
    except ValueError:
        return {url}
    if port is None or parts.hostname is None or given_port not in (None, port):
        return {url}
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    auth = parts.netloc.rpartition("@")[0]
    auth = f"{auth}@" if auth else ""
    bare = urlunsplit(parts._replace(netloc=f"{auth}{host}"))
    return {url, bare, urlunsplit(parts._replace(netloc=f"{auth}{host}:{port}"))}


def twilio_signature_valid(auth_token: str, url: str, fields: Mapping[str, Sequence[str]], signature: str) -> bool:
    """Whether `signature` is Twilio's for this request (either form of the port)."""
    given = signature.strip().encode("ascii", "replace")
    return any(
        hmac.compare_digest(twilio_signature(auth_token, form, fields).encode(), given) for form in _port_forms(url)
    )


__all__ = ["twilio_signature", "twilio_signature_valid"]
