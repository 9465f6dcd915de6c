"""An index on contacts.phone: an inbound SMS (STOP, START, a reply) finds its
contacts by the sender's number (stored in E.164)

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_contacts_phone"), "contacts", ["phone"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_contacts_phone"), table_name="contacts")
