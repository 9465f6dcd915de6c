from automations.services import contacts, templates
from automations.services.seed import seed_system_templates


def test_migrated_database_takes_a_contact_and_templates(db):
    with db.session() as session:
        contact = contacts.create_contact(session, {"first_name": "Ada", "email": "ada@example.com"})
        seed_system_templates(session)
    with db.read_session() as session:
        assert contacts.get_contact(session, contact.id).email == "ada@example.com"
        assert len(templates.list_templates(session)) == 6
