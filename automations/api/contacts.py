"""/api/contacts/: list and search, create, read, update, delete."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from automations.api.deps import NO_NUL, Context, Limit, Offset, reject_nul
from automations.api.schemas import (
    MAX_ID,
    ContactIn,
    ContactOut,
    ContactPage,
    ContactUpdate,
    ImportSummary,
    Problem,
    Responses,
)
from automations.domain.errors import ValidationError
from automations.domain.models import Contact
from automations.services import contacts
from automations.services.contact_import import import_contacts
from automations.services.contacts import ContactFilter

router = APIRouter(prefix="/api/contacts", tags=["contacts"])

ContactId = Annotated[int, Path(ge=1, le=MAX_ID, description="Contact id.")]
NOT_FOUND: Responses = {404: {"model": Problem, "description": "No contact with this id."}}


def contact_out(contact: Contact) -> ContactOut:
    return ContactOut(
        id=contact.id,
        first_name=contact.first_name,
        last_name=contact.last_name,
        full_name=contact.full_name,
        email=contact.email,
        phone=contact.phone,
        company=contact.company,
        timezone=contact.timezone,
        tags=sorted(contact.tags),
        custom_fields=dict(contact.custom_fields or {}),
        email_opt_out=contact.email_opt_out,
        sms_opt_out=contact.sms_opt_out,
        created_at=contact.created_at,
        updated_at=contact.updated_at,
    )


@router.get("/", response_model=ContactPage, summary="List or search contacts")
def list_contacts(
    context: Context,
    search: Annotated[
        str, Query(max_length=200, pattern=NO_NUL, description="Part of the name, email, company or phone.")
    ] = "",
    tag: Annotated[str | None, Query(max_length=64, pattern=NO_NUL, description="Only contacts with this tag.")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> ContactPage:
    """Contacts ordered by last name, first name."""
    with context.db.read_session() as session:
        rows, total = contacts.search_contacts(
            session, ContactFilter(search=search, tag=tag), limit=limit, offset=offset
        )
        return ContactPage(items=[contact_out(c) for c in rows], total=total)


@router.post("/", response_model=ContactOut, status_code=status.HTTP_201_CREATED, summary="Create a contact")
def create_contact(context: Context, body: ContactIn) -> ContactOut:
    data = body.model_dump(exclude_unset=True)
    reject_nul(data)
    with context.db.session() as session:
        return contact_out(contacts.create_contact(session, data, now=context.now()))


@router.get("/{contact_id}/", response_model=ContactOut, responses=NOT_FOUND, summary="Get a contact")
def get_contact(context: Context, contact_id: ContactId) -> ContactOut:
    with context.db.read_session() as session:
        return contact_out(contacts.get_contact(session, contact_id))


@router.put("/{contact_id}/", response_model=ContactOut, responses=NOT_FOUND, summary="Update a contact")
def update_contact(context: Context, contact_id: ContactId, body: ContactUpdate) -> ContactOut:
    """Changes only the fields given; `tags` replaces the tag list."""
    changes = body.model_dump(exclude_unset=True)
    reject_nul(changes)
    with context.db.session() as session:
        return contact_out(contacts.update_contact(session, contact_id, changes, now=context.now()))


@router.delete(
    "/{contact_id}/",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        **NOT_FOUND,
        409: {"model": Problem, "description": "The contact has active or paused campaigns."},
    },
    summary="Delete a contact",
)
def delete_contact(
    context: Context,
    contact_id: ContactId,
    cancel_campaigns: Annotated[
        bool,
        Query(
            description="Cancel the contact's active and paused campaigns first "
            "(otherwise such a contact is not deleted: 409)."
        ),
    ] = False,
) -> Response:
    """Deletes the contact with their campaigns and follow-ups."""
    with context.db.session() as session:
        contacts.delete_contact(session, contact_id, cancel_campaigns=cancel_campaigns, now=context.now())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/import",
    response_model=ImportSummary,
    summary="Import contacts from a CSV file",
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}},
    },
    responses={413: {"model": Problem, "description": "The file is larger than the import allows."}},
)
async def import_csv(
    request: Request,
    context: Context,
    encoding: Annotated[str | None, Query(max_length=40, pattern=NO_NUL, description="Default: detected.")] = None,
    delimiter: Annotated[str | None, Query(max_length=3, pattern=NO_NUL, description="Default: detected.")] = None,
    dry_run: Annotated[bool, Query(description="Check every row, import nothing.")] = False,
) -> ImportSummary:
    """The body is the CSV file itself (`Content-Type: text/csv`), with a header row
    (`first_name` required). The answer counts what was created and names every
    rejected row with its line and problems, as the dashboard's import does."""
    kind = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if kind not in ("text/csv", "application/csv", "text/plain", "application/octet-stream"):
        raise ValidationError.single("body", "send the CSV file as the body with Content-Type: text/csv")
    body = await request.body()
    result = await run_in_threadpool(
        import_contacts,
        context.db.session,
        io.BytesIO(body),
        encoding=encoding,
        delimiter=delimiter,
        dry_run=dry_run,
        now=context.now(),
    )
    return ImportSummary.model_validate(result.as_dict())
