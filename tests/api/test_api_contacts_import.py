"""POST /api/contacts/import: the CSV file as the body, the import's summary as JSON."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.services.test_contact_import import _file


def test_the_api_imports_a_csv_body(api: TestClient) -> None:
    answer = api.post(
        "/api/contacts/import",
        content=_file("utf-16", "\t") + "Bob\tRay\tnot-an-email\n".encode("utf-16")[2:],
        headers={"Content-Type": "text/csv"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["encoding"], body["delimiter"], body["rows"], body["created"], body["rejected"]) == (
        "utf-16", "\t", 3, 2, 1
    )  # fmt: skip
    assert body["errors"][0]["line"] == 4 and "email" in body["errors"][0]["errors"]
    refused = api.post("/api/contacts/import", content=b"\x00\x01\x02" * 100, headers={"Content-Type": "text/csv"})
    assert refused.status_code == 422 and set(refused.json()["errors"]) <= {"file", "encoding"}
    wrong = api.post("/api/contacts/import", json={"first_name": "x"})
    assert wrong.status_code == 422 and "text/csv" in wrong.json()["errors"]["body"]
