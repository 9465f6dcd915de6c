"""The contacts import, with files as spreadsheets write them: every encoding,
delimiter and line ending, bad bytes and bad rows named with their line, and
our own export imported back unchanged. The dashboard, the CLI and the REST API
share the implementation; the CLI and the API are tried here too."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from automations.domain.db import Database
from automations.domain.errors import ValidationError
from automations.domain.models import Contact, ContactEvent, ContactTag
from automations.reports.exports import csv_bytes
from automations.services.contact_import import import_contacts
from automations.services.contacts import create_contact
from tests.conftest import NOW

REPO = Path(__file__).resolve().parents[2]
PEOPLE = [("Jürgen", "Müller", "jurgen@example.com"), ("Zoë", "Ørsted", "zoe@example.com")]


def _file(encoding: str, delimiter: str = ",", newline: str = "\n", bom: bool = False) -> bytes:
    lines = [delimiter.join(("first_name", "last_name", "email"))]
    lines += [delimiter.join(person) for person in PEOPLE]
    text = newline.join(lines) + newline
    data = text.encode(encoding)
    return ("\ufeff".encode(encoding) if bom else b"") + data


def _names(db: Database) -> list[tuple[str, str]]:
    with db.read_session() as s:
        return sorted((r.first_name, r.last_name) for r in s.execute(select(Contact.first_name, Contact.last_name)))


def _counts(db: Database) -> tuple[int, int, int]:
    with db.read_session() as s:
        return tuple(  # type: ignore[return-value]
            s.scalar(select(func.count()).select_from(model)) for model in (Contact, ContactTag, ContactEvent)
        )


@pytest.mark.parametrize(
    ("data", "encoding", "delimiter"),
    [
        (_file("utf-8"), "utf-8", ","),
        (_file("utf-8", bom=True), "utf-8", ","),  # the BOM is read by its own codec
        (_file("utf-16", "\t"), "utf-16", "\t"),  # Excel's "Unicode text"
        (_file("cp1252", ";", "\r\n"), "cp1252", ";"),  # Excel in most of Europe
        (_file("utf-8", ",", "\r"), "utf-8", ","),  # old Mac exports: CR only
        (_file("latin-1", "\t", "\r\n"), "cp1252", "\t"),
    ],
    ids=["utf8", "utf8-bom", "utf16-tab", "cp1252-semicolon-crlf", "cr-only", "latin1-tab"],
)
def test_spreadsheet_files_import_with_their_names_intact(
    db: Database, data: bytes, encoding: str, delimiter: str
) -> None:
    result = import_contacts(db.session, io.BytesIO(data), now=NOW)
    assert (result.created, result.rejected) == (2, [])
    assert result.format.encoding.replace("utf-8-sig", "utf-8") == encoding and result.format.delimiter == delimiter
    assert _names(db) == sorted((first, last) for first, last, _ in PEOPLE)


def test_a_stray_cr_inside_a_line_is_a_space_not_a_traceback(sqlite_db: Database) -> None:
    data = b"first_name,last_name,email\nAda,Love\rlace,ada@example.com\nBob,Baker,bob@example.com\n"
    result = import_contacts(sqlite_db.session, io.BytesIO(data), now=NOW)
    assert result.created == 2
    assert ("Ada", "Love lace") in _names(sqlite_db)


def test_a_nul_byte_is_a_row_error_and_the_other_rows_are_imported(db: Database) -> None:
    """PostgreSQL cannot store NUL: the row is named, the import goes on."""
    data = b"first_name,last_name,email\nAda,Love\x00lace,ada@example.com\nBob,Baker,bob@example.com\n"
    result = import_contacts(db.session, io.BytesIO(data), now=NOW)
    assert result.created == 1
    assert [(r.line, r.errors) for r in result.rejected] == [(2, {"last_name": "contains a NUL character"})]


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (bytes(range(256)) * 20, "encoding", "choose its encoding"),
        (b"", "file", "empty"),
        (b"name;mail\nAda;ada@example.com\n", "file", "first_name"),
        (b"first_name,email\nAda,ada@example.com\n", "delimiter", "one character"),
    ],
    ids=["binary garbage", "empty", "no first_name column", "bad delimiter"],
)
def test_an_unreadable_file_is_refused_with_the_reason_and_nothing_written(
    sqlite_db: Database, data: bytes, field: str, words: str
) -> None:
    before = _counts(sqlite_db)
    delimiter = "ab" if field == "delimiter" else None
    with pytest.raises(ValidationError) as caught:
        import_contacts(sqlite_db.session, io.BytesIO(data), delimiter=delimiter, now=NOW)
    assert words in caught.value.errors[field]
    assert _counts(sqlite_db) == before


def test_a_file_given_with_its_encoding_and_delimiter_is_read_so(sqlite_db: Database) -> None:
    data = "first_name|last_name\nЗоя|Петрова\n".encode("cp1251")  # a Cyrillic file, said so by the user
    result = import_contacts(sqlite_db.session, io.BytesIO(data), encoding="cp1251", delimiter="|", now=NOW)
    assert (result.format.encoding, result.created) == ("cp1251", 1)
    assert _names(sqlite_db) == [("Зоя", "Петрова")]


def test_our_own_export_imports_back_unchanged(db: Database) -> None:
    """The `'` the export adds before =, +, - and @ is taken off again."""
    with db.session() as s:
        create_contact(s, {"first_name": "=Ann", "last_name": "-Lee", "email": "+ann@example.com",
                           "phone": "+14155550123", "company": "@Home", "tags": ["vip"],
                           "custom_fields": {"plan": "=gold"}}, now=NOW)  # fmt: skip
    with db.read_session() as s:
        exported = csv_bytes(s, "contacts")
    assert b"'+14155550123" in exported and b"'=Ann" in exported  # neutralised on the way out
    with db.session() as s:
        s.execute(Contact.__table__.delete())  # type: ignore[attr-defined]
    result = import_contacts(db.session, io.BytesIO(exported), now=NOW)
    assert (result.created, result.rejected) == (1, [])
    with db.read_session() as s:
        ann = s.scalars(select(Contact)).one()
        assert (ann.first_name, ann.last_name, ann.email, ann.phone, ann.company) == (
            "=Ann", "-Lee", "+ann@example.com", "+14155550123", "@Home"
        )  # fmt: skip
        assert ann.tags == ["vip"] and ann.custom_fields.get("plan") == "=gold"


def test_rows_are_checked_against_the_database_and_the_file_in_batches(sqlite_db: Database) -> None:
    with sqlite_db.session() as s:
        create_contact(s, {"first_name": "Old", "email": "Taken@Example.com"}, now=NOW)
    rows = ["first_name,email,tags"] + [f"P{i},p{i}@example.com,a;b" for i in range(4500)]
    rows += ["Dup,p7@example.com,", "Again,taken@example.com,"]
    result = import_contacts(sqlite_db.session, io.BytesIO("\n".join(rows).encode()), now=NOW)
    assert result.created == 4500
    assert [(r.line, r.errors["email"]) for r in result.rejected] == [
        (4502, "same email as line 9"),
        (4503, "a contact with this email already exists"),
    ]
    # contact_created and tag_added events, as create_contact records them
    assert _counts(sqlite_db) == (4501, 9000, 1 + 4500 * 3)


def test_a_dry_run_writes_nothing(sqlite_db: Database) -> None:
    before = _counts(sqlite_db)
    result = import_contacts(sqlite_db.session, io.BytesIO(_file("utf-8")), dry_run=True, now=NOW)
    assert (result.created, result.dry_run) == (2, True)
    assert _counts(sqlite_db) == before


def test_the_cli_imports_a_file_and_names_the_rejected_rows(sqlite_db: Database, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(_file("cp1252", ";", "\r\n") + "Bob;Ray;not-an-email\r\n".encode("cp1252"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "automations", "--database-url", sqlite_db.url, "import", "contacts", *args],
            cwd=REPO, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    dry = run(str(path), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "read 3 rows as cp1252, semicolon-separated: 2 contacts would be created, 1 rejected" in dry.stdout
    assert "line 4: email: Not a valid email address: it must have an @-sign." in dry.stdout
    assert _names(sqlite_db) == []
    done = run(str(path))
    assert done.returncode == 0 and "2 contacts created" in done.stdout
    assert ("Jürgen", "Müller") in _names(sqlite_db)
    missing = run(str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "cannot open" in missing.stderr
    (tmp_path / "junk.csv").write_bytes(bytes(range(256)) * 20)
    junk = run(str(tmp_path / "junk.csv"))
    assert junk.returncode == 2 and "encoding:" in junk.stderr and "Traceback" not in junk.stderr
