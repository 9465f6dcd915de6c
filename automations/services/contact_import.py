"""Import contacts from a CSV file, as spreadsheets write them: a preview with
every row's problems, then the valid rows are created in bulk and each invalid
row is reported with its line, field and problem (none is dropped silently).

What it accepts:
- UTF-8 with or without a BOM, UTF-16 with a BOM, and legacy encodings (Windows
  code pages, Latin-1, ...) detected with charset-normalizer; the preview shows
  the encoding and the delimiter found, and both can be given instead;
- comma, semicolon, tab or pipe delimiters (sniffed from the first lines);
- LF, CRLF and CR-only line endings; a stray CR inside a line is a space;
- the `'` our own exports put before a cell starting with `=`, `+`, `-` or `@`
  (so that spreadsheets do not run it) is taken off again: export -> import is a
  round trip.

Columns: first_name (required), last_name, email, phone, company, timezone, tags
(separated by `,` or `;`), email_opt_out, sms_opt_out, custom_fields (a JSON
object, as the export writes it). Any other column becomes a custom field of
that name; the export's id, created_at and updated_at are left out.

The dashboard, `python -m automations import contacts FILE` and
`POST /api/contacts/import` all call `import_contacts`.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import csv
import io
import json
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from charset_normalizer import from_bytes
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from automations.domain.db import insert_rows, table_of
from automations.domain.errors import ValidationError
from automations.domain.models import Contact, ContactEvent, ContactTag
from automations.domain.search import email_in
from automations.domain.timeutil import as_utc, utcnow
from automations.services.schemas import ContactInput, parse

log = logging.getLogger(__name__)

STANDARD_COLUMNS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "timezone",
    "tags",
    "email_opt_out",
    "sms_opt_out",
)
MAX_IMPORT_ROWS = 1_000_000
DELIMITERS = (",", ";", "\t", "|")
SAMPLE_BYTES = 256 * 1024  # what the encoding and the delimiter are detected from
BATCH_ROWS = 2000  # rows validated, checked for duplicates and inserted together
_TRUE = {"1", "true", "yes", "y", "x"}
_FALSE = {"", "0", "false", "no", "n"}
_NEUTRALISED = ("'=", "'+", "'-", "'@")
# Columns of our own contacts export that an import does not take (the database sets them).
_EXPORT_ONLY_COLUMNS = frozenset({"id", "created_at", "updated_at"})
_LATIN_CODE_PAGES = frozenset(
    {"cp1250", "cp1252", "cp1257", "cp775", "cp850", "cp852", "cp858", "latin_1", "mac_roman", "mac_latin2",
     "mac_iceland"} | {f"iso8859_{n}" for n in (1, 2, 3, 4, 9, 10, 13, 14, 15, 16)}
)  # fmt: skip
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


@dataclass
class ImportRow:
    line: int  # line number in the file (the header is line 1)
    data: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class CsvFormat:
    """How the file is written: its encoding and delimiter."""

    encoding: str
    delimiter: str

    @property
    def delimiter_name(self) -> str:
        return _DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))


@dataclass
class ImportResult:
    """What an import did (or, with `dry_run`, would do)."""

    format: CsvFormat
    rows: int = 0  # data rows read (blank lines left out)
    created: int = 0
    rejected: list[ImportRow] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self, *, max_rejected: int = 1000) -> dict[str, Any]:
        return {
            "encoding": self.format.encoding,
            "delimiter": self.format.delimiter,
            "rows": self.rows,
            "created": self.created,
            "rejected": len(self.rejected),
            "dry_run": self.dry_run,
            "errors": [{"line": r.line, "errors": r.errors} for r in self.rejected[:max_rejected]],
        }


# --- reading the file -----------------------------------------------------------------


def _codec_name(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError as exc:
        raise ValidationError.single("encoding", f"unknown encoding {name!r}") from exc


def detect_encoding(sample: bytes) -> str:
    """The encoding of a file that begins with `sample`."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    # Cut at the last line break, so a sample ending inside a character decodes.
    cut = sample.rfind(b"\n")
    head = sample[: cut + 1] if cut >= 0 and len(sample) == SAMPLE_BYTES else sample
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(head).best()
    if best is None:
        return "cp1252"
    # Short samples leave the Latin code pages tied; Windows-1252 (a superset of
    # Latin-1 for text) is what spreadsheets in the West write, so it wins a tie.
    if best.encoding in _LATIN_CODE_PAGES:
        try:
            head.decode("cp1252")
            return "cp1252"
        except UnicodeDecodeError:
            pass
    return _codec_name(best.encoding)


def detect_delimiter(text: str) -> str:
    """The delimiter of the header and first lines in `text`."""
    lines = [line for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")[:20] if line.strip()]
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        header = lines[0]
        return max(DELIMITERS, key=lambda d: (header.count(d), d == ","))


def detect_format(sample: bytes, *, encoding: str | None = None, delimiter: str | None = None) -> CsvFormat:
    """The file's encoding and delimiter, detected from its first bytes unless given."""
    chosen = _codec_name(encoding) if encoding else detect_encoding(sample)
    if delimiter is not None:
        if delimiter in ("\\t", "tab"):
            delimiter = "\t"
        if len(delimiter) != 1 or delimiter in '\r\n"':
            raise ValidationError.single("delimiter", "one character, such as , or ; or tab")
        return CsvFormat(chosen, delimiter)
    text = sample.decode(chosen, errors="ignore")
    return CsvFormat(chosen, detect_delimiter(text))


def _lines(stream: IO[bytes], fmt: CsvFormat) -> Iterator[str]:
    """The file's text line by line with the line endings made `\\n`: a CR-only
    file is split at each CR; in other files a stray CR is a space."""
    text = io.TextIOWrapper(stream, encoding=fmt.encoding, errors="strict", newline="")
    cr_only: bool | None = None
    pending = ""
    line_no = 0
    try:
        for piece in text:
            if cr_only is None:
                cr_only = piece.endswith("\r") and "\n" not in piece
            if cr_only:
                yield piece[:-1] + "\n" if piece.endswith("\r") else piece
                continue
            if piece.endswith("\r") and not piece.endswith("\r\n"):
                pending += piece[:-1] + " "  # a stray CR: the line goes on
                continue
            line_no += 1
            yield (pending + piece).replace("\r\n", "\n").replace("\r", " ")
            pending = ""
        if pending:
            yield pending
    except UnicodeDecodeError as exc:
        raise ValidationError.single(
            "encoding",
            f"the file is not valid {fmt.encoding} after line {line_no + 1} ({exc.reason}); choose its encoding",
        ) from exc
    finally:
        with contextlib.suppress(ValueError):  # the caller closed its stream already
            text.detach()  # otherwise it stays open for the caller


def _cell(value: str | None) -> str:
    text = (value or "").strip()
    if text.startswith(_NEUTRALISED):
        text = text[1:]  # the quote our own export added
    return text


def _flag(value: str, name: str, errors: dict[str, str]) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text not in _FALSE:
        errors[name] = f"write yes or no (got {value!r})"
    return False


def _row_input(header: list[str], cells: list[str], errors: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    custom: dict[str, str] = {}
    if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
        errors["row"] = f"has {len(cells)} cells but the header has {len(header)} columns"
    for name, raw in zip(header, cells, strict=False):
        value = _cell(raw)
        if "\x00" in value:
            errors[name or "row"] = "contains a NUL character"
            value = value.replace("\x00", "")
        if not name or name in _EXPORT_ONLY_COLUMNS:
            continue
        if name == "custom_fields":
            # Our own export writes every custom field as one JSON object.
            try:
                fields = json.loads(value) if value else {}
            except ValueError:
                fields = None
            if not isinstance(fields, dict):
                errors["custom_fields"] = "write the custom fields as a JSON object, or one column per field"
                continue
            custom.update({str(k): v for k, v in fields.items() if v not in (None, "")})
        elif name in ("email_opt_out", "sms_opt_out"):
            data[name] = _flag(value, name, errors)
        elif name == "tags":
            data[name] = [t for t in value.replace(";", ",").split(",") if t.strip()]
        elif name in STANDARD_COLUMNS:
            data[name] = value
        elif value:
            custom[name] = value
    if custom:
        data["custom_fields"] = custom
    return data


def _raw_rows(stream: IO[bytes], fmt: CsvFormat) -> tuple[list[str], Iterator[tuple[int, list[str] | str]]]:
    """The header, and each data row as (line, cells), or (line, why it cannot be read)."""
    reader = csv.reader(_lines(stream, fmt), delimiter=fmt.delimiter)
    try:
        header_cells = next(reader)
    except StopIteration:
        raise ValidationError.single("file", "the file is empty") from None
    except csv.Error as exc:
        raise ValidationError.single("file", f"the header cannot be read: {exc}") from None
    header = [_cell(h).lower().replace("\x00", "") for h in header_cells]
    if "first_name" not in header:
        found = ", ".join(h for h in header if h) or "nothing"
        raise ValidationError.single(
            "file",
            f"the first line must be a header with a first_name column (found {found}, "
            f"reading it as {fmt.encoding} separated by {_DELIMITER_NAMES.get(fmt.delimiter, fmt.delimiter)})",
        )

    def rows() -> Iterator[tuple[int, list[str] | str]]:
        count = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield reader.line_num, f"cannot be read as CSV: {exc}"
                continue
            if not any(c.strip() for c in cells):
                continue
            count += 1
            if count > MAX_IMPORT_ROWS:
                raise ValidationError.single("file", f"at most {MAX_IMPORT_ROWS:,} rows per import")
            yield reader.line_num, cells

    return header, rows()


def validate_rows(header: list[str], raw: list[tuple[int, list[str] | str]]) -> list[ImportRow]:
    """Rows as contact input with their problems (no database needed: a batch
    of a big file is validated in a worker process)."""
    validated = []
    for line, cells in raw:
        if isinstance(cells, str):
            validated.append(ImportRow(line=line, data={}, errors={"row": cells}))
            continue
        errors: dict[str, str] = {}
        data = _row_input(header, cells, errors)
        try:
            data = parse(ContactInput, data).model_dump()
        except ValidationError as exc:
            for key, problem in exc.errors.items():
                errors.setdefault(key, problem)
        validated.append(ImportRow(line=line, data=data, errors=errors))
    return validated


def _mark_repeated(batch: list[ImportRow], seen: dict[str, int]) -> list[ImportRow]:
    """Rows whose email an earlier row of the file has (`seen`: email -> line)."""
    for row in batch:
        email = (row.data.get("email") or "").lower()
        if email and "email" not in row.errors:
            if email in seen:
                row.errors["email"] = f"same email as line {seen[email]}"
            else:
                seen[email] = row.line
    return batch


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def read_rows(stream: IO[bytes], fmt: CsvFormat, *, workers: int = 0) -> Iterator[list[ImportRow]]:
    """The file's data rows in batches of `BATCH_ROWS`, each row with its
    problems (validation, an email twice in the file). With `workers`, batches
    are validated in that many processes while the caller writes the previous
    ones. Raises `ValidationError` (on `file`, `encoding`) when the file is unusable."""
    header, raw = _raw_rows(stream, fmt)
    seen: dict[str, int] = {}

    def dedupe(batch: list[ImportRow]) -> list[ImportRow]:
        return _mark_repeated(batch, seen)

    if workers <= 1:
        for chunk in _chunks(raw, BATCH_ROWS):
            yield dedupe(validate_rows(header, chunk))
        return
    context = multiprocessing.get_context("spawn")  # the caller may have threads: no fork
    pending: collections.deque[tuple[list[Any], Future[list[ImportRow]] | None]] = collections.deque()
    broken = False

    def result(chunk: list[Any], future: Future[list[ImportRow]] | None) -> list[ImportRow]:
        nonlocal broken
        if future is not None and not broken:
            try:
                return future.result()
            except BrokenProcessPool:
                # A worker could not start (an interpreter fed from stdin, say):
                # the rest is validated here, slower but the same.
                log.warning("contacts import: validation workers unavailable; validating in-process")
                broken = True
        return validate_rows(header, chunk)

    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        for chunk in _chunks(raw, BATCH_ROWS):
            pending.append((chunk, None if broken else pool.submit(validate_rows, header, chunk)))
            if len(pending) > workers:
                yield dedupe(result(*pending.popleft()))
        while pending:
            yield dedupe(result(*pending.popleft()))


def _mark_taken(session: Session, rows: list[ImportRow]) -> None:
    """Rows whose email already belongs to a contact (one query a batch)."""
    emails = [r.data["email"].lower() for r in rows if r.ok and r.data.get("email")]
    taken: set[str] = set()
    for start in range(0, len(emails), 500):  # bounded IN lists
        chunk = emails[start : start + 500]
        taken.update(e.lower() for e in session.scalars(select(Contact.email).where(email_in(chunk))) if e)
    for row in rows:
        if row.ok and (row.data.get("email") or "").lower() in taken:
            row.errors["email"] = "a contact with this email already exists"


_CONTACT_COLUMNS = (
    "first_name", "last_name", "email", "phone", "company", "timezone", "custom_fields", "email_opt_out",
    "sms_opt_out", "email_bouncing", "email_bounced_at", "created_at", "updated_at",
)  # fmt: skip
_EVENT_COLUMNS = ("contact_id", "kind", "name", "payload", "occurred_at")


def _insert(session: Session, rows: list[ImportRow], now: datetime) -> int:
    """The valid rows as contacts, with their tags and the `contact_created` and
    `tag_added` events that `create_contact` records, in a few statements."""
    valid = [r.data for r in rows if r.ok]
    if not valid:
        return 0
    sqlite = session.get_bind().dialect.name == "sqlite"
    # SQLite: values as the dialect stores them, through the driver (SQLAlchemy's
    # per-value processing would be most of a big import's time). The write
    # transaction holds the database lock, so ids after the largest are free.
    when: Any = as_utc(now).strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else now
    dump: Any = json.dumps if sqlite else (lambda value: value)
    contacts = [
        (d["first_name"], d.get("last_name") or "", d.get("email"), d.get("phone"), d.get("company") or "",
         d.get("timezone") or "UTC", dump(d.get("custom_fields") or {}), bool(d.get("email_opt_out")),
         bool(d.get("sms_opt_out")), False, None, when, when)
        for d in valid
    ]  # fmt: skip
    if sqlite:
        last = session.execute(text("SELECT coalesce(max(id), 0) FROM contacts")).scalar_one()
        ids = list(range(last + 1, last + 1 + len(contacts)))
        _executemany(
            session, table_of(Contact), ("id", *_CONTACT_COLUMNS), [(i, *c) for i, c in zip(ids, contacts, strict=True)]
        )
    else:
        # PostgreSQL: ids drawn from the table's sequence in one query, then the
        # rows as one JSON document (`insert_rows`).
        ids = list(
            session.scalars(
                text("SELECT nextval(pg_get_serial_sequence('contacts', 'id')) FROM generate_series(1, :n)"),
                {"n": len(contacts)},
            )
        )
        insert_rows(
            session,
            table_of(Contact),
            [{"id": i, **dict(zip(_CONTACT_COLUMNS, c, strict=True))} for i, c in zip(ids, contacts, strict=True)],
        )
    empty = dump({})
    tag_payloads: dict[str, Any] = {}
    tags, events = [], []
    for contact_id, data in zip(ids, valid, strict=True):
        events.append((contact_id, "contact_created", None, empty, when))
        for tag in data.get("tags") or []:
            tags.append((contact_id, tag))
            payload = tag_payloads.setdefault(tag, dump({"tag": tag}))
            events.append((contact_id, "tag_added", None, payload, when))
    if sqlite:
        _executemany(session, table_of(ContactTag), ("contact_id", "tag"), tags)
        _executemany(session, table_of(ContactEvent), _EVENT_COLUMNS, events)
    else:
        insert_rows(session, table_of(ContactTag), [dict(zip(("contact_id", "tag"), r, strict=True)) for r in tags])
        insert_rows(session, table_of(ContactEvent), [dict(zip(_EVENT_COLUMNS, r, strict=True)) for r in events])
    return len(ids)


def _executemany(session: Session, table: Any, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """SQLite: one executemany through the driver of rows already converted."""
    if not rows:
        return
    connection = session.connection()
    compiled = table.insert().compile(connection, column_keys=list(columns))
    order = [columns.index(c) for c in compiled.positiontup or []]
    driver = connection.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        same = order == list(range(len(columns)))
        cursor.executemany(compiled.string, rows if same else [tuple(r[i] for i in order) for r in rows])
    finally:
        cursor.close()


def import_contacts(
    session_factory: Callable[[], Any],
    stream: IO[bytes],
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Read `stream` (a binary file) and create a contact for every valid row,
    `BATCH_ROWS` at a time, each batch in its own transaction of
    `session_factory()` (so a million rows never sit in one). With `dry_run`
    nothing is written. `progress(rows read)` is called after each batch.
    Raises `ValidationError` when the file itself cannot be read."""
    now = now or utcnow()
    sample = stream.read(SAMPLE_BYTES)
    fmt = detect_format(sample, encoding=encoding, delimiter=delimiter)
    result = ImportResult(format=fmt, dry_run=dry_run)
    whole = io.BufferedReader(_Rewound(sample, stream))
    # A big file is validated on every core (email and phone checks are most of
    # an import's time) while this process writes; a small one here.
    workers = (os.cpu_count() or 1) if len(sample) >= SAMPLE_BYTES else 0
    for batch in read_rows(whole, fmt, workers=workers):
        with session_factory() as session:
            _mark_taken(session, batch)
            if not dry_run:
                result.created += _insert(session, batch, now)
        result.rows += len(batch)
        result.rejected.extend(r for r in batch if not r.ok)
        if progress is not None:
            progress(result.rows)
    if dry_run:
        result.created = result.rows - len(result.rejected)
    return result


def preview_import(
    session: Session, data: bytes, *, encoding: str | None = None, delimiter: str | None = None, limit: int = 1000
) -> tuple[CsvFormat, list[ImportRow], int]:
    """The detected format, the first `limit` rows with their problems (emails
    already taken included), and how many rows the file has."""
    fmt = detect_format(data[:SAMPLE_BYTES], encoding=encoding, delimiter=delimiter)
    header, raw = _raw_rows(io.BytesIO(data), fmt)
    first: list[tuple[int, list[str] | str]] = []
    total = 0
    for item in raw:
        total += 1
        if len(first) < limit:
            first.append(item)
    shown = _mark_repeated(validate_rows(header, first), {})
    _mark_taken(session, shown)
    return fmt, shown, total


class _Rewound(io.RawIOBase):
    """`stream` with the bytes already read from it (`head`) put back in front."""

    def __init__(self, head: bytes, stream: IO[bytes]):
        self._head = memoryview(head)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
