"""The return date an out-of-office message states, in English, German, French or Spanish.

A small table of month names and a few date shapes ("12 January", "January 12th,
2027", "15. Januar", "15 de enero de 2027", "15.01.2027", "2027-01-15") read
near a word that says "back" or "until". A library such as `dateparser` would
read more shapes, but it also finds dates in words that are none; these
messages use few shapes, and a wrong date would hold a campaign for months.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

_MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        "january jan januar jänner janvier janv enero ene",
        "february feb februar février fevrier févr fevr febrero",
        "march mar märz maerz marz mars marzo",
        "april apr avril avr abril abr",
        "may mai mayo",
        "june jun juni juin junio",
        "july jul juli juillet juil julio",
        "august aug août aout agosto ago",
        "september sept sep septembre septiembre setiembre",
        "october oct oktober okt octobre octubre",
        "november nov novembre noviembre",
        "december dec dezember dez décembre decembre diciembre dic",
    ),
    start=1,
):
    for _name in _names.split():
        _MONTHS[_name] = _number

_MONTH = "|".join(sorted((re.escape(name) for name in _MONTHS), key=len, reverse=True))
_YEAR = r"(?P<y>\d{4})"
_DATE_SHAPES = (
    # 12 January 2027, 12th January, 15. Januar 2027, le 15 janvier, 15 de enero de 2027, 1er mars
    re.compile(
        rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th|er|\.)?\s*(?:de\s+)?(?P<m>{_MONTH})\b\.?(?:,?\s*(?:de\s+)?{_YEAR}\b)?",
        re.IGNORECASE,
    ),
    # January 12th, 2027 / Jan 12
    re.compile(rf"\b(?P<m>{_MONTH})\b\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s*{_YEAR}\b)?", re.IGNORECASE),
    # 2027-01-15
    re.compile(r"\b(?P<y>\d{4})-(?P<mn>\d{1,2})-(?P<d>\d{1,2})\b"),
    # 15.01.2027, 15/01/27, 15.01. (day first, as written in Europe)
    re.compile(r"\b(?P<d>\d{1,2})[./](?P<mn>\d{1,2})(?:[./](?P<y>\d{4}|\d{2})\b|\.)"),
)

# Words that say when the person is back, strongest first: a "back on" date
# wins over an "until" date in the same message.
_RETURN_WORDS = re.compile(
    r"\b(?:back|return|returning|returns|wieder|zurück|zurueck|ab|retour|reviens|reviendrai|rentre|rentrerai"
    r"|reprendrai|vuelta|vuelvo|volveré|volvere|regreso|regresaré|regresare|reincorporo)\b",
    re.IGNORECASE,
)
_UNTIL_WORDS = re.compile(
    r"\b(?:until|till|til|through|bis|jusqu'au|jusqu’au|jusqu'à|jusqu’à|jusqu|hasta)\b", re.IGNORECASE
)


def _to_date(match: re.Match[str], sent: date | None) -> date | None:
    groups = match.groupdict()
    day = int(groups["d"])
    month = _MONTHS[groups["m"].lower()] if groups.get("m") else int(groups["mn"])
    year_text = groups.get("y")
    if year_text:
        year = int(year_text) + (2000 if len(year_text) == 2 else 0)
    elif sent is not None:
        year = sent.year
    else:
        return None
    try:
        found = date(year, month, day)
    except ValueError:
        return None
    # "back on 5 January" written in December means next year's.
    if not year_text and sent is not None and found < sent - timedelta(days=7):
        try:
            found = found.replace(year=year + 1)
        except ValueError:
            return None
    return found


def _dates_in(line: str, sent: date | None) -> list[tuple[int, int, date]]:
    found: list[tuple[int, int, date]] = []
    taken: list[tuple[int, int]] = []
    for shape in _DATE_SHAPES:
        for match in shape.finditer(line):
            if any(match.start() < end and start < match.end() for start, end in taken):
                continue
            value = _to_date(match, sent)
            if value is not None:
                taken.append(match.span())
                found.append((match.start(), match.end(), value))
    return sorted(found)


def _near(words: re.Pattern[str], lines: list[str], sent: date | None) -> date | None:
    for line in lines:
        dates = _dates_in(line, sent)
        if not dates:
            continue
        for word in words.finditer(line):
            after = [d for start, _end, d in dates if start >= word.end()]
            if after:
                return after[0]
            before = [d for _start, end, d in dates if end <= word.start()]
            if before:
                return before[-1]
    return None


def stated_return_date(text: str, sent: date | None) -> date | None:
    """The date `text` says its writer is back (or away until), read relative to
    `sent` (the message's date) when the year is left out; None when it states none."""
    lines = [line for line in text.split("\n") if line.strip()]
    found = _near(_RETURN_WORDS, lines, sent) or _near(_UNTIL_WORDS, lines, sent)
    # A date before the message was sent is no return date ("your message of 2 January").
    if found is not None and sent is not None and found < sent:
        return None
    return found
