"""The render worker: `python -m automations.content.worker`, started and fed by
`content.bounded.BoundedRenderer`.

It reads one JSON request per line on stdin and answers one JSON line per field
on stdout, in order. Its address space is capped (`WORKER_MEMORY_BYTES`), so a
template that builds a gigabyte string gets a MemoryError here instead of
growing the runner; a template that loops for ever is killed by the parent when
a field's time budget runs out. The worker also stops a field itself as soon as
its output passes the field's size limit or its time runs out.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

from automations.content.templating import SizeBudgetExceeded, compile_template, human_size

WORKER_MEMORY_BYTES = 256 * 1024 * 1024


def render_field(
    source: str, limit: int, budget: float, context: dict[str, Any], extra: dict[str, Any]
) -> dict[str, Any]:
    """`{"text": ...}` or `{"error": reason, "kind": "size" | "time" | "memory" | "error"}`."""
    deadline = time.monotonic() + budget
    try:
        template = compile_template(source)
        parts: list[str] = []
        size = 0
        for chunk in template.generate(contact=context, **extra):
            size += len(chunk)
            if size > limit:
                return {"kind": "size", "error": f"grew past {human_size(limit)} while rendering"}
            if time.monotonic() > deadline:
                return {"kind": "time", "error": f"took longer than {budget * 1000:.0f} ms to render"}
            parts.append(chunk)
        return {"text": "".join(parts)}
    except SizeBudgetExceeded as exc:
        return {"kind": "size", "error": f"grew past {human_size(min(limit, exc.limit))} while rendering"}
    except MemoryError:
        return {"kind": "memory", "error": "needed more memory than rendering allows"}
    except RecursionError:
        return {"kind": "error", "error": "nests too deeply to render"}
    except Exception as exc:  # the template's own error (undefined, not allowed, ...)
        return {"kind": "error", "error": f"{type(exc).__name__}: {exc}", "exception": type(exc).__name__,
                "message": str(exc)}  # fmt: skip


def main() -> int:
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))
    sys.setrecursionlimit(400)
    out = sys.stdout
    out.write('{"ready": true}\n')  # the parent times renders from here, not from its start
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        for source, limit in request["fields"]:
            answer = render_field(source, limit, request["budget"], request["context"], request["extra"])
            out.write(json.dumps(answer) + "\n")
            out.flush()  # each field's answer at once: the parent times fields one by one
    return 0


if __name__ == "__main__":
    sys.exit(main())
