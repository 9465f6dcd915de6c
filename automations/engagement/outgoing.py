"""An email body as it is sent: a sanitised HTML part and a plain-text alternative,
with its links found and, when tracking is on, rewritten to the click URLs.

A body is HTML when it has HTML tags; otherwise it is plain text in which
Markdown-style links (`[text](https://…)`) and bare URLs become links. HTML is
cleaned with `nh3` (the Ammonia sanitiser) to a small set of tags that mail
clients render alike; scripts, styles, event handlers and any URL that is not
http(s) or mailto go. The text part says every link as "text (url)".
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import NamedTuple

import nh3

from automations.engagement.tokens import CLICK, OPEN, UNSUBSCRIBE, make_token

# Tags kept in the HTML part (anything else is dropped, its text kept).
ALLOWED_TAGS = frozenset(
    {"a", "p", "br", "b", "i", "u", "strong", "em", "ul", "ol", "li", "h1", "h2", "h3", "h4", "img", "hr"}
    | {"blockquote", "div", "span", "table", "thead", "tbody", "tfoot", "tr", "th", "td"}
)
# Tags removed with everything inside them.
DROPPED_WITH_CONTENT = frozenset({"script", "style", "head", "title", "template", "noscript", "iframe", "object"})
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "table": {"width", "border", "cellpadding", "cellspacing"},
    "td": {"colspan", "rowspan", "width", "align"},
    "th": {"colspan", "rowspan", "width", "align"},
}
URL_SCHEMES = {"http", "https", "mailto"}

_WEB_URL = re.compile(r"https?://[^\s/?#]+", re.I)
_SIZE = re.compile(r"\d{1,4}%?")
# A tag of HTML (not `<3`, `a < b` or `<grace@example.com>`).
_HTML_TAG = re.compile(
    r"<!doctype\s+html|<!--|</?(?:a|abbr|b|blockquote|body|br|center|code|div|em|embed|font|form|h[1-6]|head|hr|html"
    r"|i|iframe|img|input|li|link|meta|object|ol|p|pre|s|script|small|span|strong|style|sub|sup|svg|table|tbody|td"
    r"|tfoot|th|thead|title|tr|u|ul)(?=[\s/>])",
    re.I,
)
_MARKDOWN_LINK = r"\[(?P<label>[^\[\]\n]+)\]\((?P<target>(?:https?://|mailto:)[^\s()]+(?:\([^\s()]*\)[^\s()]*)*)\)"
_BARE_URL = r"(?P<url>https?://[^\s<>\"'\[\]]+)"
_LINK_IN_TEXT = re.compile(f"{_MARKDOWN_LINK}|{_BARE_URL}", re.I)
_TRAILING_PUNCTUATION = ".,;:!?'\"*_"
_ANY_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)")
# Elements a parser closes by itself (or that have no content): they do not nest.
_SELF_CLOSING = frozenset(
    {"area", "base", "br", "col", "dd", "dt", "embed", "hr", "img", "input", "li", "link", "meta", "option", "p"}
    | {"param", "source", "td", "th", "tr", "track", "wbr"}
)
# The HTML parser under the sanitiser takes time growing with the square of the
# nesting depth (a megabyte of `<div>` takes a minute); real mail nests a few dozen
# deep (tables in tables), so a body nesting deeper than this is refused.
MAX_NESTING = 1000


class BodyTooComplex(ValueError):
    """An HTML body nesting deeper than `MAX_NESTING` elements."""


class Link(NamedTuple):
    """One http(s) link of a message: its position (0 for the first; the link
    index of its click tokens), where it goes, and its text."""

    position: int
    url: str
    text: str


class RenderedEmail(NamedTuple):
    html: str
    text: str
    links: list[Link]


@dataclass(frozen=True)
class Tracking:
    """Where recipients reach this installation, and how to sign a token for a
    kind ("o", "c", "u") and, for a click, a link index."""

    public_url: str
    token: Callable[[str, int | None], str]

    @classmethod
    def for_step(cls, public_url: str, key: str, step_id: int) -> Tracking:
        """Tracking of step `step_id`'s message, its tokens signed with `key`."""
        return cls(public_url.rstrip("/"), lambda kind, link: make_token(key, kind, step_id, link))

    def click_url(self, index: int) -> str:
        return f"{self.public_url}/t/c/{self.token(CLICK, index)}"

    def open_url(self) -> str:
        return f"{self.public_url}/t/o/{self.token(OPEN, None)}"

    def unsubscribe_url(self) -> str:
        return f"{self.public_url}/t/u/{self.token(UNSUBSCRIBE, None)}"


def looks_like_html(body: str) -> bool:
    """Whether `body` is written in HTML (it has at least one HTML tag)."""
    return _HTML_TAG.search(body) is not None


def render_email(subject: str, body: str, *, tracking: Tracking | None) -> RenderedEmail:
    """The HTML part, the plain-text part and the http(s) links of a message.

    With `tracking`, every http(s) link of the HTML part goes through
    `{public_url}/t/c/<token>` and a 1×1 open pixel is appended; the text part
    keeps the original URLs.
    """
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    is_html = looks_like_html(body)
    if is_html and nesting_depth(body) > MAX_NESTING:
        raise BodyTooComplex(f"the body's HTML nests deeper than {MAX_NESTING} elements")
    fragment = body if is_html else _plain_to_html(body)
    walker = _Walker(tracking)
    walker.feed(sanitize_html(fragment))
    walker.close()
    content = "".join(walker.html)
    if tracking is not None:
        content += f'<img src="{html.escape(tracking.open_url())}" width="1" height="1" alt="">'
    document = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head>\n<body>\n{content}\n</body></html>\n"
    )
    text = walker.text() if is_html else _plain_to_text(body)
    return RenderedEmail(document, text, walker.links)


def nesting_depth(fragment: str) -> int:
    """How deep the elements of `fragment` nest at most (counting open and close
    tags, elements that close by themselves left out): an upper bound a parser may
    meet, found without parsing. `<div/>` counts as open, as HTML parsers take it."""
    depth = deepest = 0
    for match in _ANY_TAG.finditer(fragment):
        closing, name = match.groups()
        if name.lower() in _SELF_CLOSING:
            continue
        if closing:
            depth = max(0, depth - 1)
        else:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


def sanitize_html(fragment: str) -> str:
    """`fragment` with only the allowed tags, attributes and URLs left."""
    return nh3.clean(
        fragment,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_attribute_filter,
        url_schemes=set(URL_SCHEMES),
        strip_comments=True,
    )


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    # A relative URL means nothing in a mail client; an image only from the web
    # (no `mailto:` or `data:` images).
    if attribute == "href":
        return value if _WEB_URL.match(value) or value.lower().startswith("mailto:") else None
    if attribute == "src":
        return value if _WEB_URL.match(value) else None
    if attribute in ("width", "height"):
        return value if _SIZE.fullmatch(value.strip()) else None
    return value


# --- plain text ----------------------------------------------------------------


def _split_url(url: str) -> tuple[str, str]:
    """A bare URL without the punctuation that ends the sentence around it (a
    closing parenthesis only when the URL has no opening one for it)."""
    end, unmatched = len(url), url.count(")") - url.count("(")
    while end:
        last = url[end - 1]
        if last in _TRAILING_PUNCTUATION:
            end -= 1
        elif last == ")" and unmatched > 0:
            unmatched -= 1
            end -= 1
        else:
            break
    return url[:end], url[end:]


def _links_in(line: str) -> list[tuple[str, str | None, str, str]]:
    """`line` as pieces (before, url or None, label, after-punctuation)."""
    pieces: list[tuple[str, str | None, str, str]] = []
    position = 0
    for match in _LINK_IN_TEXT.finditer(line):
        before = line[position : match.start()]
        if match.group("target"):
            pieces.append((before, match.group("target"), match.group("label"), ""))
        else:
            url, trailing = _split_url(match.group("url"))
            pieces.append((before, url, url, trailing))
        position = match.end()
    pieces.append((line[position:], None, "", ""))
    return pieces


def _plain_to_html(body: str) -> str:
    paragraphs = [p for p in re.split(r"\n\s*\n", body.strip("\n")) if p.strip()]
    out = []
    for paragraph in paragraphs:
        lines = []
        for line in paragraph.split("\n"):
            parts = []
            for before, url, label, trailing in _links_in(line):
                parts.append(html.escape(before))
                if url is not None:
                    parts.append(f'<a href="{html.escape(url)}">{html.escape(label)}</a>{html.escape(trailing)}')
            lines.append("".join(parts))
        out.append("<p>" + "<br>\n".join(lines) + "</p>")
    return "\n".join(out)


def _plain_to_text(body: str) -> str:
    lines = []
    for line in body.split("\n"):
        parts = []
        for before, url, label, trailing in _links_in(line):
            parts.append(before)
            if url is not None:
                parts.append(_link_as_text(label, url) + trailing)
        text = "".join(parts)
        lines.append(text if text == "-- " else text.rstrip())  # "-- " opens a signature
    return "\n".join(lines).strip("\n") + "\n"


def _link_as_text(label: str, url: str) -> str:
    shown = url[len("mailto:") :] if url.lower().startswith("mailto:") else url
    label = label.strip()
    if not label or label in (url, shown):
        return shown
    return f"{label} ({shown})"


# --- HTML ----------------------------------------------------------------------

_VOID = frozenset({"br", "img", "hr"})
_BLOCK = frozenset(
    {"p", "div", "h1", "h2", "h3", "h4", "ul", "ol", "table", "thead", "tbody", "tfoot", "tr", "blockquote", "hr"}
)


class _Walker(HTMLParser):
    """One pass over sanitised HTML: writes it out again with link targets
    rewritten, collects the http(s) links, and builds the text alternative."""

    def __init__(self, tracking: Tracking | None):
        super().__init__(convert_charrefs=True)
        self.tracking = tracking
        self.html: list[str] = []
        self.links: list[Link] = []
        self._text: list[str] = []
        self._breaks = 0  # line breaks owed before the next text
        self._link: tuple[str, list[str]] | None = None  # (href, its text) of the open <a>

    # text part
    def _owe(self, breaks: int) -> None:
        if self._text:
            self._breaks = max(self._breaks, breaks)

    def _write(self, words: str) -> None:
        at_line_start = bool(self._breaks) or not self._text or self._text[-1].endswith("\n")
        if at_line_start:
            words = words.lstrip()
        if not words:
            return
        if self._breaks:
            self._text.append("\n" * self._breaks)
            self._breaks = 0
        self._text.append(words)

    def text(self) -> str:
        lines = [line.rstrip() for line in "".join(self._text).split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"

    # parser callbacks
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img" and not values.get("src"):
            return  # its source was not a web URL
        if tag == "a":
            href = values.get("href") or ""
            self._link = (href, [])
            if self.tracking is not None and _WEB_URL.match(href):
                values["href"] = self.tracking.click_url(len(self.links))
        written = "".join(f' {name}="{html.escape(value or "")}"' for name, value in values.items())
        self.html.append(f"<{tag}{written}>")
        if tag in _BLOCK:
            self._owe(2 if tag in ("p", "h1", "h2", "h3", "h4", "blockquote", "table", "ul", "ol") else 1)
        elif tag == "br":
            self._text.append("\n")
            self._breaks = 0
        elif tag == "li":
            self._owe(1)
            self._write("- ")
        elif tag in ("td", "th") and self._text and not self._text[-1].endswith(("\n", " ")):
            self._text.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        self.html.append(f"</{tag}>")
        if tag == "a" and self._link is not None:
            href, words = self._link
            self._link = None
            label = re.sub(r"\s+", " ", "".join(words)).strip()
            if _WEB_URL.match(href):
                self.links.append(Link(len(self.links), href, label))
            if href:
                shown = _link_as_text("", href)
                if not label:
                    self._write(shown)
                elif label not in (href, shown):
                    self._write(f" ({shown})")
        elif tag in _BLOCK or tag == "li":
            self._owe(2 if tag in ("p", "h1", "h2", "h3", "h4", "blockquote", "table", "ul", "ol") else 1)

    def handle_data(self, data: str) -> None:
        self.html.append(html.escape(data, quote=False))
        words = re.sub(r"\s+", " ", data)
        if self._link is not None:
            self._link[1].append(data)
        if words.strip() or (self._text and not self._text[-1].endswith((" ", "\n"))):
            self._write(words)
