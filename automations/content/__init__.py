"""Rendering of subjects, bodies and payloads: sandboxed Jinja2 templates."""
