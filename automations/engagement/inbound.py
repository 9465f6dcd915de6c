"""Inbound email: parse a raw RFC 5322 message and say what it is.

`parse_message` reads what matching and classifying need (ids, addresses, the
plain-text body, reply tokens, a delivery report's fields) and never raises:
a broken header or body yields empty fields, not an error, because one junk
message must not stop the intake of the others. `classify` sorts a message into
`reply`, `auto_reply` (RFC 3834 and the out-of-office conventions of Exchange,
Gmail and others) or `bounce` (RFC 3464 delivery reports, and the plain-text
failure notices some servers still send). `match_keys` lists the Message-IDs a
message may answer, nearest first. No database here: the caller matches.
"""

from __future__ import annotations

import email
import email.errors
import email.parser
import email.utils
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from typing import Final, Literal

from charset_normalizer import from_bytes

from automations.engagement.dates import stated_return_date
from automations.engagement.text import first_lines, html_to_text, own_text, unflow

log = logging.getLogger(__name__)

# The email channel puts `team+r-<token>@domain` on Reply-To; the token names the message.
REPLY_TOKEN_PREFIX = "r-"
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]{4,128}")  # url-safe base64 (no padding) or hex

Kind = Literal["reply", "auto_reply", "bounce"]
REPLY: Final = "reply"
AUTO_REPLY: Final = "auto_reply"
BOUNCE: Final = "bounce"


@dataclass
class DeliveryStatus:
    """One recipient's block of an RFC 3464 `message/delivery-status` part."""

    recipient: str | None
    action: str | None  # failed, delayed, delivered, relayed, expanded
    status: str | None  # "5.1.1"
    diagnostic: str | None = None


@dataclass
class InboundMessage:
    """What was read from one raw message; fields are empty where it had nothing usable."""

    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    from_address: str | None = None
    to_addresses: list[str] = field(default_factory=list)  # To, Cc, Delivered-To, X-Original-To
    subject: str = ""
    date: datetime | None = None
    text: str = ""  # text/plain body, else the HTML body as text
    reply_tokens: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased name -> first value
    content_type: str = "text/plain"
    report_type: str | None = None
    delivery_status: list[DeliveryStatus] = field(default_factory=list)
    original_message_id: str | None = None  # of the message a delivery report is about


@dataclass
class Classification:
    """What a message is. Bounce fields are set for bounces, `return_on` for
    auto-replies; `first_lines` is the sender's own text (replies and auto-replies)."""

    kind: Kind
    hard: bool = False
    status: str | None = None
    recipients: list[str] = field(default_factory=list)
    original_message_id: str | None = None
    return_on: date | None = None
    first_lines: str = ""


# --- headers ----------------------------------------------------------------------------------------------


def _unsurrogate(value: str) -> str:
    """Header bytes that were not ASCII arrive as surrogate escapes; read them as UTF-8, else Latin-1."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _decode_header_value(raw: str) -> str:
    value = re.sub(r"\r?\n[ \t]+", " ", _unsurrogate(str(raw))).strip()
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
        return value


def _header_values(msg: Message, name: str) -> list[str]:
    # raw_items() skips the policy's header classes, which can trip over malformed values.
    wanted = name.lower()
    return [_decode_header_value(value) for key, value in msg.raw_items() if str(key).lower() == wanted]


def _header(msg: Message, name: str) -> str:
    values = _header_values(msg, name)
    return values[0] if values else ""


def _addresses(msg: Message, *names: str) -> list[str]:
    found: list[str] = []
    for name in names:
        for _display, address in email.utils.getaddresses(_header_values(msg, name)):
            address = address.strip().strip("<>").strip()
            if "@" in address and address.lower() not in (a.lower() for a in found):
                found.append(address)
    return found


_ID = re.compile(r"<([^<>\s]+)>")


def normalize_message_id(value: str) -> str:
    """`<Abc.123@Mail.Example.COM>` -> `Abc.123@mail.example.com` (the local part keeps its case)."""
    value = value.strip().strip("<>").strip()
    local, at, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}" if at else value


def _message_ids(value: str) -> list[str]:
    ids = _ID.findall(value)
    if not ids:  # some clients drop the brackets
        ids = [part for part in re.split(r"[\s,]+", value) if "@" in part]
    return [normalize_message_id(i) for i in ids if i.strip("<> ")]


def _parse_date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def reply_tokens(addresses: list[str]) -> list[str]:
    """Tokens in plus-addresses: `team+r-<token>@example.com` -> `<token>`."""
    tokens: list[str] = []
    for address in addresses:
        local = address.rpartition("@")[0]
        for tag in local.split("+")[1:]:
            token = tag[len(REPLY_TOKEN_PREFIX) :] if tag.startswith(REPLY_TOKEN_PREFIX) else ""
            if _TOKEN_CHARS.fullmatch(token) and token not in tokens:
                tokens.append(token)
    return tokens


# --- body -------------------------------------------------------------------------------------------------


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except (AttributeError, IndexError, TypeError, ValueError):
        return "text/plain"


def _param(part: Message, name: str) -> str:
    try:
        value = part.get_param(name)
    except (AttributeError, IndexError, TypeError, ValueError):
        return ""
    return value if isinstance(value, str) else ""


def _is_attachment(part: Message) -> bool:
    return _header(part, "content-disposition").lower().startswith("attachment")


def _leaves(part: Message) -> Iterator[Message]:
    """The parts of `part`, depth first, without going into attached messages."""
    payload = part.get_payload()
    if _content_type(part).startswith("message/") or not isinstance(payload, list):
        yield part
        return
    for sub in payload:
        if isinstance(sub, Message):
            yield from _leaves(sub)


def _decode_bytes(data: bytes, charset: str | None) -> str:
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    # Detection needs some text to go on; a short undeclared body is most often Windows-1252.
    best = from_bytes(data).best() if len(data) >= 64 else None
    if best is not None:
        return str(best)
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _part_text(part: Message) -> str:
    try:
        data = part.get_payload(decode=True)
    except (AssertionError, ValueError, TypeError):
        data = None
    if not isinstance(data, bytes):
        raw = part.get_payload()
        return _unsurrogate(raw) if isinstance(raw, str) else ""
    try:
        charset = part.get_content_charset()
    except (AttributeError, ValueError, TypeError):
        charset = None
    return _decode_bytes(data, charset)


def _body_text(msg: Message) -> str:
    plain = html = None
    for part in _leaves(msg):
        kind = _content_type(part)
        if _is_attachment(part) and kind not in ("text/plain", "text/html"):
            continue
        if kind == "text/plain" and plain is None and not _is_attachment(part):
            plain = _part_text(part)
            if _param(part, "format").lower() == "flowed":
                plain = unflow(plain, delsp=_param(part, "delsp").lower() == "yes")
        elif kind == "text/html" and html is None and not _is_attachment(part):
            html = _part_text(part)
    if plain is not None and plain.strip():
        return plain.replace("\r\n", "\n").replace("\r", "\n").strip()
    return html_to_text(html) if html else ""


# --- delivery reports ---------------------------------------------------------------------------------------


def _field_value(block: Message, name: str) -> str | None:
    value = _header(block, name)
    return value or None


def _address_field(value: str | None) -> str | None:
    """`rfc822; jane@example.com` -> `jane@example.com`."""
    if not value:
        return None
    address = value.split(";", 1)[-1].strip().strip("<>").strip()
    return address or None


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    # Encoded or oddly parsed: read the blocks from the text.
    text = _part_text(part).replace("\r\n", "\n")
    parser = email.parser.HeaderParser()
    return [parser.parsestr(chunk.strip() + "\n") for chunk in re.split(r"\n\s*\n", text) if chunk.strip()]


def _delivery_status(part: Message) -> list[DeliveryStatus]:
    found = []
    for block in _status_blocks(part):
        recipient = _address_field(_field_value(block, "final-recipient") or _field_value(block, "original-recipient"))
        action = (_field_value(block, "action") or "").split("(")[0].strip().lower() or None
        status_text = _field_value(block, "status") or ""
        status = re.search(r"\b[245]\.\d{1,3}\.\d{1,3}\b", status_text)
        if recipient or action or status:
            code = status.group(0) if status else None
            found.append(DeliveryStatus(recipient, action, code, _field_value(block, "diagnostic-code")))
    return found


def _original_message_id(part: Message) -> str | None:
    kind = _content_type(part)
    if kind == "message/rfc822":
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(inner, Message):
            ids = _message_ids(_header(inner, "message-id"))
            return ids[0] if ids else None
        return None
    headers = email.parser.HeaderParser().parsestr(_part_text(part).lstrip())
    ids = _message_ids(_header(headers, "message-id"))
    return ids[0] if ids else None


_ORIGINAL_PARTS = ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers", "message/global-headers")
_INLINE_MESSAGE_ID = re.compile(r"^\s*message-id:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)


# --- parse ------------------------------------------------------------------------------------------------


def _parse(raw: bytes) -> InboundMessage:
    msg = email.message_from_bytes(raw, policy=policy.default)
    in_reply_to = _message_ids(_header(msg, "in-reply-to"))
    message_ids = _message_ids(_header(msg, "message-id"))
    from_addresses = _addresses(msg, "from") or _addresses(msg, "sender")
    recipients = _addresses(msg, "to", "cc", "delivered-to", "x-original-to", "envelope-to")
    content_type = _content_type(msg)
    report_type = None
    if content_type == "multipart/report":
        try:
            param = msg.get_param("report-type", header="content-type")
        except (AttributeError, IndexError, TypeError, ValueError):
            param = None
        report_type = str(param).lower() if isinstance(param, str) and param else None

    statuses: list[DeliveryStatus] = []
    original = None
    for part in _leaves(msg):
        kind = _content_type(part)
        if kind in ("message/delivery-status", "message/global-delivery-status"):
            statuses.extend(_delivery_status(part))
        elif kind in _ORIGINAL_PARTS and original is None and part is not msg:
            original = _original_message_id(part)

    text = _body_text(msg)
    headers: dict[str, str] = {}
    for key, value in msg.raw_items():
        headers.setdefault(str(key).lower(), _decode_header_value(value))
    result = InboundMessage(
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=_message_ids(" ".join(_header_values(msg, "references"))),
        from_address=from_addresses[0] if from_addresses else None,
        to_addresses=recipients,
        subject=_header(msg, "subject"),
        date=_parse_date(_header(msg, "date")),
        text=text,
        reply_tokens=reply_tokens(recipients),
        headers=headers,
        content_type=content_type,
        report_type=report_type,
        delivery_status=statuses,
        original_message_id=original,
    )
    if result.original_message_id is None and (statuses or _looks_like_bounce(result)):
        inline = _INLINE_MESSAGE_ID.search(text)
        if inline:
            result.original_message_id = normalize_message_id(inline.group(1))
    return result


def parse_message(raw: bytes) -> InboundMessage:
    """Read `raw` (the bytes of one RFC 5322 message) into an `InboundMessage`.
    Never raises: whatever cannot be read is left empty."""
    try:
        return _parse(raw if isinstance(raw, bytes) else bytes(raw or b""))
    except Exception:  # the stdlib parser has odd corners; one junk message must not stop the intake
        log.warning("inbound message could not be parsed; treating it as empty", exc_info=True)
        return InboundMessage()


# --- classify ---------------------------------------------------------------------------------------------

_DAEMON = re.compile(r"^(?:mailer-daemon|mail-daemon|postmaster|microsoftexchange[0-9a-f]*)@", re.IGNORECASE)
_FAILURE_SUBJECT = re.compile(
    r"""^\s*(?:
        undelivered\smail\sreturned\sto\ssender
      | delivery\sstatus\snotification\s\((?:failure|delay)\)
      | undeliverable\s?:
      | undelivered\s?:
      | mail\sdelivery\s(?:failed|failure|subsystem)
      | delivery\s(?:has\sfailed|failure)
      | returned\smail\s?:
      | failure\snotice
      | message\snot\sdelivered
      | unzustellbar\s?:
      | nicht\szustellbar
      | non\sremis\s?:
      | non\sdistribuable
      | no\sse\spuede\sentregar
      | no\sentregado
      | delayed\smail
      | warning\s?:\s.*delayed
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_DELAY_SUBJECT = re.compile(r"\(delay\)|delayed|still\sbeing\sretried|verzögert|retardé|retrasad", re.IGNORECASE)
_BODY_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_BODY_RECIPIENT = re.compile(
    r"""(?:^\s*<(?P<postfix>[^<>\s@]+@[^<>\s]+)>:)
      | (?:(?:wasn't|was\snot|could\snot\sbe|couldn't\sbe)\sdelivered\sto\s
           <?(?P<gmail>[^<>\s@]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)>?)
      | (?:^\s*(?:final-recipient|original-recipient)\s?:\s*rfc822;\s*<?(?P<field>[^<>\s@]+@[^<>\s]+?)>?\s*$)""",
    re.IGNORECASE | re.VERBOSE | re.MULTILINE,
)

_OUT_OF_OFFICE = (
    r"out\sof\s(?:the\s)?office|automatic\sreply|auto(?:matic)?[\s-]?reply|autoreply|auto[\s-]?response|"
    r"on\svacation|vacation\s(?:reply|notice)|away\sfrom\s(?:the\s)?office|abwesenheitsnotiz|abwesenheit|"
    r"automatische\s(?:antwort|rückantwort|ruckantwort)|außer\shaus|nicht\sim\sbüro|"
    r"réponse\sautomatique|reponse\sautomatique|absence\sdu\sbureau|absent\sdu\sbureau|message\sd'absence|"
    r"respuesta\sautomática|respuesta\sautomatica|fuera\sde\s(?:la\s)?oficina|ausente|"
    r"ooo\b|oof\b"
)
# At the start of the subject it names the message; after "Re:" it is a person answering one.
_OOF_SUBJECT_START = re.compile(rf"^\s*\[?\s*(?:{_OUT_OF_OFFICE})", re.IGNORECASE)
_OOF_SUBJECT_ANY = re.compile(_OUT_OF_OFFICE, re.IGNORECASE)


def _looks_like_bounce(message: InboundMessage) -> bool:
    if _FAILURE_SUBJECT.match(message.subject):
        return True
    daemon = bool(message.from_address and _DAEMON.match(message.from_address))
    return daemon and bool(_BODY_STATUS.search(message.text) or re.search(r"\b5\d\d\b", message.text))


def _bounce(message: InboundMessage) -> Classification:
    statuses = message.delivery_status
    failed = [s for s in statuses if s.action == "failed"]
    delayed = [s for s in statuses if s.action == "delayed"]
    if statuses:
        chosen = failed or delayed or statuses
        status = next((s.status for s in chosen if s.status), None)
        hard = bool(failed) and any(s.status is None or s.status.startswith("5") for s in failed)
        recipients = [s.recipient for s in chosen if s.recipient]
    else:
        match = _BODY_STATUS.search(message.text)
        status = ".".join(match.groups()) if match else None
        # A notice without a status code is a failure unless it says it is only a delay.
        hard = status.startswith("5") if status is not None else not _DELAY_SUBJECT.search(message.subject)
        recipients = []
        for found in _BODY_RECIPIENT.finditer(message.text):
            address = next(g for g in found.groups() if g).rstrip(".,;")
            if address.lower() not in (r.lower() for r in recipients):
                recipients.append(address)
    return Classification(
        BOUNCE, hard=hard, status=status, recipients=recipients, original_message_id=message.original_message_id
    )


def _header_says_auto(message: InboundMessage) -> bool:
    headers = message.headers
    auto_submitted = headers.get("auto-submitted", "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return True
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder", "x-auto-reply"):
        if name in headers and headers[name].strip().lower() not in ("no", "false", "0"):
            return True
    precedence = headers.get("precedence", "").strip().lower()
    if precedence == "auto_reply":
        return True
    # Exchange marks the mail its rules send (out-of-office among them), but also rule forwards:
    # a hint that needs an out-of-office subject or a bulk precedence to count.
    hinted = "x-ms-exchange-inbox-rules-loop" in headers or "x-auto-response-suppress" in headers
    return (hinted or precedence in ("bulk", "junk", "list")) and bool(_OOF_SUBJECT_ANY.search(message.subject))


def is_auto_reply(message: InboundMessage) -> bool:
    """RFC 3834 headers, vendors' auto-reply headers, an out-of-office subject, or a
    machine report other than a delivery report (a read receipt is no reply)."""
    if message.content_type == "multipart/report" and message.report_type != "delivery-status":
        return True
    return _header_says_auto(message) or bool(_OOF_SUBJECT_START.search(message.subject))


def is_bounce(message: InboundMessage) -> bool:
    """An RFC 3464 delivery report, or a server's plain failure notice."""
    if message.report_type == "delivery-status" or message.delivery_status:
        return True
    return _looks_like_bounce(message)


def classify(message: InboundMessage) -> Classification:
    """Sort `message` into bounce, auto_reply or reply (checked in that order: a
    delivery report is auto-submitted too). Everything else is a reply."""
    if is_bounce(message):
        return _bounce(message)
    if is_auto_reply(message):
        own = own_text(message.text)
        sent = message.date.date() if message.date else None
        return Classification(
            AUTO_REPLY,
            return_on=stated_return_date(f"{message.subject}\n{own}", sent),
            first_lines=first_lines(message.text),
        )
    return Classification(REPLY, first_lines=first_lines(message.text))


def match_keys(message: InboundMessage) -> list[str]:
    """The Message-IDs `message` may answer, nearest first: In-Reply-To, References
    newest first, then the id a delivery report names (normalised, no brackets)."""
    keys: list[str] = []
    candidates = [message.in_reply_to, *reversed(message.references), message.original_message_id]
    for key in candidates:
        if key and key not in keys:
            keys.append(key)
    return keys
