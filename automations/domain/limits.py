"""Bounds on free-form JSON a user or an integration may store (SPEC: bad input
gets a clear error naming the field and the limit)."""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 32
MAX_PAYLOAD_BYTES = 256 * 1024  # a webhook payload, an inbound event's payload, a rule's configuration
MAX_CUSTOM_FIELDS = 100
MAX_CUSTOM_FIELDS_BYTES = 64 * 1024


def depth(value: Any) -> int:
    """How deeply `value` nests lists and objects (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            return deepest  # enough to refuse; the rest need not be walked
        stack.extend((child, level) for child in children)
    return deepest


def json_problem(value: Any, *, max_bytes: int = MAX_PAYLOAD_BYTES, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why `value` cannot be stored as JSON (a sentence naming the limit), or None."""
    if depth(value) > max_depth:
        return f"Too deep: nested more than {max_depth} levels."
    try:
        size = len(json.dumps(value, ensure_ascii=False, default=str).encode())
    except (TypeError, ValueError) as exc:
        return f"Cannot be stored as JSON: {exc}."
    if size > max_bytes:
        return f"Too large: {size:,} bytes as JSON, at most {max_bytes // 1024} KB."
    return None


def custom_fields_problem(fields: dict[str, Any]) -> str | None:
    if len(fields) > MAX_CUSTOM_FIELDS:
        return f"Too many custom fields: {len(fields):,}, at most {MAX_CUSTOM_FIELDS}."
    return json_problem(fields, max_bytes=MAX_CUSTOM_FIELDS_BYTES)
