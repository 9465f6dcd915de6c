"""Services that change state: contacts, templates, campaigns and scheduling, follow-ups, rules."""
