"""Plain text from inbound bodies: HTML converted to text, and a reply's own words
with the quoted history, forwarded blocks and signature taken off.

Mail clients mark history differently (Gmail and Apple Mail with an attribution
line and a `<blockquote>`, Outlook with a `From: … Sent: …` block under a rule),
so the stripping works on the text and knows each client's markers, in English,
German, French and Spanish.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

FIRST_LINES_LIMIT = 500

_BLOCK_TAGS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset", "figcaption", "figure"),
        *("footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p"),
        *("pre", "section", "table", "tbody", "thead", "tfoot", "tr", "ul"),
    }
)
_SKIP_TAGS = frozenset({"head", "script", "style", "title", "template"})


class _TextExtractor(HTMLParser):
    """Collects text with line breaks at block boundaries; text inside a
    `<blockquote>` gets a `> ` per level, as a plain-text client would quote it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._current: list[str] = []
        self._quote_depth = 0
        self._skip_depth = 0
        self._pre_depth = 0

    def _break(self) -> None:
        text = "".join(self._current)
        if self._pre_depth == 0:
            text = re.sub(r"[ \t\r\n\f\u00a0]+", " ", text).strip()
        self._current = []
        prefix = "> " * self._quote_depth
        for line in text.split("\n") if text else [""]:
            self.lines.append(prefix + line if line else prefix.rstrip())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth += 1
        elif tag == "br":
            self._break()
        elif tag in _BLOCK_TAGS:
            if "".join(self._current).strip():
                self._break()
            self._current = []
            if tag == "blockquote":
                self._quote_depth += 1
            elif tag == "pre":
                self._pre_depth += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br" or (tag == "hr" and "".join(self._current).strip()):
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCK_TAGS:
            if "".join(self._current).strip():
                self._break()
            self._current = []
            if tag == "blockquote":
                self._quote_depth = max(0, self._quote_depth - 1)
            elif tag == "pre":
                self._pre_depth = max(0, self._pre_depth - 1)
            if tag in ("p", "div", "table"):
                self.lines.append("> " * self._quote_depth if self._quote_depth else "")

    def handle_data(self, data: str) -> None:
        if self._skip_depth == 0:
            self._current.append(data)

    def text(self) -> str:
        if "".join(self._current).strip():
            self._break()
        return tidy("\n".join(line.rstrip() for line in self.lines))


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML body (links' text kept, markup dropped)."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):
        # html.parser gives up on some malformed markup; what it read so far is kept.
        pass
    return parser.text()


def tidy(text: str) -> str:
    """Unix newlines, no trailing blanks, at most one empty line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def unflow(text: str, delsp: bool = False) -> str:
    """Undo RFC 3676 `format=flowed`: a line ending in a space goes on in the next
    line of the same quote depth (the "-- " signature line excepted)."""
    out: list[tuple[int, str]] = []
    joining = False
    for line in text.replace("\r\n", "\n").split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        body = line[depth:]
        if body.startswith(" "):  # space-stuffing
            body = body[1:]
        if joining and out and out[-1][0] == depth:
            out[-1] = (depth, out[-1][1] + body)
        else:
            out.append((depth, body))
        joining = body.endswith(" ") and body != "-- "
        if joining and delsp:
            out[-1] = (depth, out[-1][1][:-1])
    return "\n".join(("> " * depth if depth else "") + body for depth, body in out)


# An attribution line that introduces quoted history ("On … wrote:" and its translations).
_ATTRIBUTION = re.compile(
    r"""^\s*(?:
        on\s.{3,300}?\s(?:wrote|writes)\s?:
      | am\s.{3,300}?\s(?:schrieb|hat\s.{0,60}?geschrieben)\s?.{0,80}?:
      | le\s.{3,300}?\sa\sécrit\s?:
      | el\s.{3,300}?\sescribió\s?:
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
# "Jane Doe <jane@example.com> wrote:" (Thunderbird, Apple Mail), only on one line of its own.
_ATTRIBUTION_SHORT = re.compile(r"^\s*\S.{1,200}?\s(?:wrote|schrieb|a\sécrit|escribió)\s?:\s*$", re.IGNORECASE)
_SEPARATOR = re.compile(
    r"""^\s*(?:
        -{2,}\s*(?:original\smessage|ursprüngliche\snachricht|originalnachricht|message\sd'origine
                 |message\sd’origine|mensaje\soriginal|forwarded\smessage|weitergeleitete\snachricht
                 |message\stransféré|mensaje\sreenviado)\s*-{2,}
      | begin\sforwarded\smessage\s?:
      | anfang\sder\sweitergeleiteten\snachricht\s?:
      | début\sdu\smessage\sréexpédié\s?:
      | _{10,}
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
# Outlook's header block of the message being answered.
_HEADER_FROM = re.compile(r"^\s*\*?(?:from|von|de)\s?:\*?\s", re.IGNORECASE)
_HEADER_SENT = re.compile(r"^\s*\*?(?:sent|date|gesendet|datum|envoyé|date|enviado|fecha)\s?:\*?\s", re.IGNORECASE)
_MOBILE_SIGNATURE = re.compile(
    r"^\s*(?:sent\sfrom\smy\s|get\soutlook\sfor\s|von\smeinem\s.{1,40}\sgesendet|envoyé\sde\smon\s"
    r"|enviado\sdesde\smi\s)",
    re.IGNORECASE | re.VERBOSE,
)


def _history_starts(lines: list[str], i: int) -> bool:
    line = lines[i]
    if _SEPARATOR.match(line) or _MOBILE_SIGNATURE.match(line):
        return True
    # A signature delimiter is "-- " by convention, but many clients trim the blank.
    if line.rstrip() in ("--", "-- "):
        return True
    if _ATTRIBUTION_SHORT.match(line):
        return True
    # Gmail and Apple Mail wrap a long attribution over two or three lines.
    for span in (1, 2, 3):
        part = lines[i : i + span]
        if len(part) < span or not all(p.strip() for p in part):
            break
        # A wrapped attribution breaks mid-phrase, never after a finished sentence of the reply.
        if span > 1 and part[0].rstrip().endswith((".", "!", "?")):
            break
        if _ATTRIBUTION.match(" ".join(p.strip() for p in part)):
            return True
    if _HEADER_FROM.match(line):
        return any(_HEADER_SENT.match(nxt) for nxt in lines[i + 1 : i + 5])
    return False


def own_text(text: str) -> str:
    """The part of a message its sender wrote: everything before the first
    history marker or signature, without `>`-quoted lines."""
    lines = tidy(text).split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        if _history_starts(lines, i):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return tidy("\n".join(kept))


def first_lines(text: str, limit: int = FIRST_LINES_LIMIT) -> str:
    """A reply's own text, cut at about `limit` characters on a word boundary."""
    own = own_text(text)
    if len(own) <= limit:
        return own
    cut = own[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + "…"
