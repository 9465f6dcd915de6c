"""Automations: follow-up campaigns over Email, SMS, Task and Webhook steps (see docs/architecture.md)."""
