"""Requests generated from the API's own OpenAPI document: no input makes it fail.

For every operation, schemathesis generates requests that fit the document and
requests that do not (a bounded number of each, derandomised so that CI is
repeatable) and checks that none gets a 500, that every status, content type
and body is the documented one, and that the token is really required.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis import checks as core_checks
from schemathesis.specs.openapi import checks as openapi_checks

from automations.api import create_app
from automations.domain.config import Settings
from automations.domain.db import Database
from automations.services import campaigns, contacts
from automations.services.seed import seed_system_templates
from tests.api.conftest import AUTH, EMAIL_STEP, TASK_STEP, Clock, api_settings
from tests.conftest import NOW

EXAMPLES_PER_OPERATION = 12

# Raw messages for the inbound endpoint: well-formed ones of each kind, and bytes.
_HEADERS = st.sampled_from(
    [
        b"From: a@example.com\r\nSubject: Re: Hi\r\nIn-Reply-To: <nobody@example.com>\r\n\r\nYes, call me.\r\n",
        b"From: a@example.com\r\nAuto-Submitted: auto-replied\r\nSubject: Out of office\r\n\r\nBack on 5 May.\r\n",
        b"From: MAILER-DAEMON@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\n550 5.1.1\r\n",
    ]
)
schemathesis.openapi.media_type("message/rfc822", st.one_of(_HEADERS, st.binary(max_size=2000)))

CHECKS = [
    core_checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.ignored_auth,
]


def _operations() -> list[tuple[str, str]]:
    # The document does not depend on the data: an unconnected database will do.
    app = create_app(Database("sqlite://", settings=Settings(_env_file=None)), api_settings())
    return [(method.upper(), path) for path, operations in app.openapi()["paths"].items() for method in operations]


@pytest.fixture
def api_schema(sqlite_db: Database) -> schemathesis.BaseSchema:
    """The API over a database with templates, contacts and campaigns to find."""
    with sqlite_db.session() as session:
        seed_system_templates(session)
        for n in range(3):
            contact = contacts.create_contact(session, {"first_name": f"P{n}", "email": f"p{n}@example.com"}, now=NOW)
            campaigns.create_campaign(
                session,
                {"name": f"C{n}", "contact_id": contact.id, "steps": [EMAIL_STEP, TASK_STEP]},
                now=NOW,
            )
    app = create_app(sqlite_db, api_settings(), clock=Clock(NOW))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def fuzz(operation: schemathesis.APIOperation, mode: GenerationMode) -> None:
    """Send generated requests of one kind to one operation and check every answer."""

    @given(data=st.data())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy(generation_mode=mode))
        case.call_and_validate(headers=AUTH, checks=CHECKS)

    run()


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), _operations())
def test_no_generated_request_fails(api_schema: schemathesis.BaseSchema, method: str, path: str) -> None:
    operation = api_schema[path][method]
    fuzz(operation, GenerationMode.POSITIVE)
    fuzz(operation, GenerationMode.NEGATIVE)
