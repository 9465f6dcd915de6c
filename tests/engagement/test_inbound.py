"""The inbound classifier over a corpus of real-world-shaped messages (Gmail, Outlook,
Apple Mail, Exchange, Postfix, qmail), and on junk that must not stop the intake."""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path

import pytest

from automations.engagement.dates import stated_return_date
from automations.engagement.inbound import (
    REPLY_TOKEN_PREFIX,
    InboundMessage,
    classify,
    match_keys,
    normalize_message_id,
    parse_message,
    reply_tokens,
)
from automations.engagement.text import FIRST_LINES_LIMIT, first_lines

CORPUS = Path(__file__).parent / "corpus"
EXPECTED: dict[str, dict] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))


def _cases(*kinds: str) -> list:
    chosen = [(name, spec) for name, spec in EXPECTED.items() if spec["kind"] in kinds]
    return [pytest.param(name, spec, id=name.removesuffix(".txt")) for name, spec in chosen]


def _read(name: str) -> InboundMessage:
    return parse_message((CORPUS / name).read_bytes())


def test_corpus_and_manifest_agree():
    files = {p.name for p in CORPUS.glob("*.txt")}
    assert files == set(EXPECTED)
    kinds = [spec["kind"] for spec in EXPECTED.values()]
    assert len(files) >= 30
    assert kinds.count("reply") >= 10 and kinds.count("auto_reply") >= 8 and kinds.count("bounce") >= 6


@pytest.mark.parametrize(("name", "spec"), _cases("reply", "auto_reply", "bounce"))
def test_kind(name, spec):
    assert classify(_read(name)).kind == spec["kind"]


@pytest.mark.parametrize(("name", "spec"), _cases("bounce"))
def test_bounce_hard_soft_status_and_recipients(name, spec):
    result = classify(_read(name))
    assert (result.hard, result.status, result.recipients) == (spec["hard"], spec["status"], spec["recipients"])


@pytest.mark.parametrize(("name", "spec"), _cases("auto_reply"))
def test_auto_reply_return_date(name, spec):
    expected = date.fromisoformat(spec["return_on"]) if spec["return_on"] else None
    assert classify(_read(name)).return_on == expected


@pytest.mark.parametrize(("name", "spec"), _cases("reply", "auto_reply"))
def test_first_line_and_no_quoted_history(name, spec):
    text = classify(_read(name)).first_lines
    assert text.split("\n")[0] == spec["first_line"]
    for quoted in spec.get("not_in_first_lines", []):
        assert quoted not in text
    assert len(text) <= FIRST_LINES_LIMIT + 1


@pytest.mark.parametrize(("name", "spec"), _cases("reply", "auto_reply", "bounce"))
def test_match_keys_and_reply_tokens(name, spec):
    message = _read(name)
    assert match_keys(message) == spec["match_keys"]
    assert message.reply_tokens == spec["reply_tokens"]


def test_every_message_is_matchable_by_id_or_token():
    unmatched = [name for name in EXPECTED if not match_keys(_read(name)) and not _read(name).reply_tokens]
    assert unmatched == []


def test_parsed_fields_of_a_gmail_reply():
    message = _read("gmail_reply_quoted_multipart.txt")
    assert message.message_id == "CAF3xK=p9R2m8Tq1vZ0fLw@mail.gmail.example"
    assert message.from_address == "jane.doe@gmail.example"
    assert "team+r-1k3-9f2c4b7a1d0e5f63@example.com" in message.to_addresses
    assert message.subject == "Re: Your quote for the spring order"
    assert message.date is not None and message.date.isoformat() == "2027-01-05T19:42:03+01:00"
    assert message.text.startswith("Hi Anna,")


def test_latin1_headers_and_body_are_decoded():
    message = _read("reply_latin1_quoted_printable.txt")
    assert message.subject == "AW: Ihr Angebot für Lizenzen"
    assert "fünf Lizenzen" in classify(message).first_lines


def test_bounce_names_the_original_message():
    result = classify(_read("postfix_dsn_hard_511.txt"))
    assert result.original_message_id == "4b1d0c2e6f7a4e9b8c3d2a1f0e000030@automations.example.com"


# --- rules on small messages ------------------------------------------------------------------------------


def _message(headers: str, body: str = "Hello") -> bytes:
    return (headers.strip() + "\n\n" + body + "\n").encode("utf-8")


BASE = (
    "From: Jane <jane@client.example>\nTo: team+r-abc-0123456789abcdef@example.com\n"
    "Date: Mon, 4 Jan 2027 09:00:00 +0000"
)


@pytest.mark.parametrize(
    ("extra", "kind"),
    [
        ("Subject: Re: offer\nAuto-Submitted: no", "reply"),
        ("Subject: Re: offer\nAuto-Submitted: auto-replied", "auto_reply"),
        ("Subject: Re: offer\nAuto-Submitted: auto-generated; owner-email=x@client.example", "auto_reply"),
        ("Subject: Re: offer\nX-Autoreply: yes", "auto_reply"),
        ("Subject: Re: offer\nPrecedence: bulk", "reply"),
        ("Subject: Re: offer (out of office)\nPrecedence: bulk", "auto_reply"),
        ("Subject: Re: offer\nX-MS-Exchange-Inbox-Rules-Loop: jane@client.example", "reply"),
        ("Subject: Re: Out of Office\nX-Auto-Response-Suppress: All", "auto_reply"),
        ("Subject: Re: our out of office policy", "reply"),
        ("Subject: Automatische Antwort: Angebot", "auto_reply"),
        ("Subject: Réponse automatique : devis", "auto_reply"),
        ("Subject: Respuesta automática: presupuesto", "auto_reply"),
        ("Subject: Undelivered Mail Returned to Sender", "bounce"),
    ],
)
def test_header_and_subject_rules(extra, kind):
    assert classify(parse_message(_message(BASE + "\n" + extra))).kind == kind


@pytest.mark.parametrize(
    ("text", "sent", "expected"),
    [
        ("I will be back on 12 January.", date(2027, 1, 4), date(2027, 1, 12)),
        ("Ich bin ab dem 15.01.2027 wieder im Büro.", date(2027, 1, 4), date(2027, 1, 15)),
        ("Je suis de retour le 15 janvier.", date(2027, 1, 4), date(2027, 1, 15)),
        ("Estaré de vuelta el 15 de enero.", date(2027, 1, 4), date(2027, 1, 15)),
        ("Back on January 3rd", date(2026, 12, 20), date(2027, 1, 3)),
        ("Returning 2027-02-01, thanks", date(2027, 1, 4), date(2027, 2, 1)),
        ("Ich bin am 1. März wieder da.", date(2027, 2, 20), date(2027, 3, 1)),
        ("Out until 14 January, back on 15 January", date(2027, 1, 4), date(2027, 1, 15)),
        ("Thanks for your message of 2 January.", date(2027, 1, 4), None),
        ("I will be back soon.", date(2027, 1, 4), None),
        ("back on 31 February", date(2027, 1, 4), None),
        ("I will be back on 12 January.", None, None),
    ],
)
def test_stated_return_date(text, sent, expected):
    assert stated_return_date(text, sent) == expected


def test_first_lines_are_cut_near_the_limit():
    text = first_lines("word " * 400 + "\n\nOn Mon, 4 Jan 2027, Anna wrote:\n> old")
    assert 0.8 * FIRST_LINES_LIMIT < len(text) <= FIRST_LINES_LIMIT + 1 and "wrote" not in text


def test_reply_tokens_come_from_plus_addresses_with_the_prefix():
    assert REPLY_TOKEN_PREFIX == "r-"
    addresses = ["team+r-Ab_9-xYz0123@example.com", "team+news@example.com", "other+r-@example.com", "x@example.com"]
    assert reply_tokens(addresses) == ["Ab_9-xYz0123"]


def test_message_ids_are_normalised():
    assert normalize_message_id(" <Abc.1@Mail.Example.COM> ") == "Abc.1@mail.example.com"
    headers = BASE + "\nIn-Reply-To: Abc.1@Mail.Example.COM\nReferences: <a@x.example> <b@x.example>"
    message = parse_message(_message(headers))
    assert match_keys(message) == ["Abc.1@mail.example.com", "b@x.example", "a@x.example"]


# --- junk ------------------------------------------------------------------------------------------------------

JUNK = {
    "empty": b"",
    "whitespace": b"\r\n\r\n  \n",
    "binary": bytes(range(256)) * 8,
    "random": random.Random(7).randbytes(4096),
    "header only": b"From: someone@example.com\r\nSubject: no body\r\n",
    "no headers": b"just some text\nwithout headers\n",
    "broken headers": (
        b'From: <<<@@@>>>\nTo: ,,,;;; "unterminated\nDate: not a date\nMessage-ID: <>\n'
        b"In-Reply-To: <<>>\nReferences: \x00\x01\nSubject: =?x-unknown?Q?broken=ZZ?= \xff\xfe\n"
        b"Content-Type: multipart/report; report-type=delivery-status\n\nno boundary at all"
    ),
    "unknown charset": b"Content-Type: text/plain; charset=x-no-such-charset\n\n\xe4\xf6\xfc",
    "bad base64": b"Content-Type: text/html\nContent-Transfer-Encoding: base64\n\n!!!not*base64===\n",
    "truncated multipart": (
        b'Content-Type: multipart/alternative; boundary="b"\n\n--b\nContent-Type: text/html\n\n<div><blockquote>'
    ),
    "broken dsn": (
        b"From: MAILER-DAEMON@example.com\nSubject: Undelivered Mail Returned to Sender\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="z"\n\n'
        b"--z\nContent-Type: message/delivery-status\n\n"
        b"Final-Recipient: \nAction: \nStatus: x.y.z\n--z\nContent-Type: message/rfc822\n\n\xff\xfe\x00--z--"
    ),
}


@pytest.mark.parametrize("raw", list(JUNK.values()), ids=list(JUNK))
def test_junk_does_not_raise(raw):
    message = parse_message(raw)
    result = classify(message)
    assert result.kind in ("reply", "auto_reply", "bounce")
    assert isinstance(match_keys(message), list)
    assert isinstance(message.text, str)


def test_header_only_message_keeps_what_it_has():
    message = parse_message(JUNK["header only"])
    assert (message.from_address, message.subject, message.text) == ("someone@example.com", "no body", "")


def test_an_unknown_charset_falls_back_to_windows_1252():
    assert parse_message(JUNK["unknown charset"]).text == "äöü"
