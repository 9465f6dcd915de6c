"""Rendering under a size and a time budget (SPEC section 9).

A template is a small program: `{{ 'a' * 10**9 }}` builds a gigabyte, nested
loops run for minutes. Rendering the runner's steps (and the save-time trial
render) in-process would let one such step stall or swell the runner, so every
field is rendered in a worker process (`content.worker`):

- its output is cut off as soon as it passes the field's size limit, and one
  operation may not build more than the largest budget;
- its address space is capped, so what escapes those checks gets a MemoryError
  in the worker, not in the runner;
- a field that is not done within its time budget gets its worker killed (a
  loop in Jinja cannot be interrupted otherwise) and a new one started for the
  next field.

The caller stays responsive meanwhile: it waits on the worker's pipe with a
timeout, so signals are handled between waits. Fields whose source holds no
`{` are plain text and never leave the process.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from automations.content.templating import compile_template, contact_context, human_size, is_plainly_bounded

FIELD_TIME_BUDGET_S = 0.25
WORKER_START_TIMEOUT_S = 20.0  # a fresh interpreter on a busy machine


@dataclass(frozen=True)
class Field:
    """One text to render: its template, its size limit (characters) and what
    to call it in a reason ("the subject")."""

    source: str
    limit: int
    label: str


@dataclass(frozen=True)
class Rendered:
    """The texts of one item's fields in order, or why they could not be made."""

    texts: list[str] | None
    problem: str | None = None
    kind: str | None = None  # "size", "time", "memory", "error"
    exception: str | None = None  # for "error": the template error's class name
    message: str | None = None  # and its message


class _Worker:
    def __init__(self) -> None:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "automations.content.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=root,
            env={**os.environ, "PYTHONPATH": root},
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin = self.process.stdin
        self.fd = self.process.stdout.fileno()
        self.lines: list[bytes] = []  # complete answers read ahead, oldest last
        self.partial = b""
        self.fresh = True  # the interpreter is still starting: the first answer may take a while

    def send(self, lines: list[bytes]) -> threading.Thread:
        """Write the requests from a thread: the worker answers while they are written."""

        def write() -> None:
            try:
                for line in lines:
                    self.stdin.write(line)
                self.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass  # the worker was killed: the reader sees it

        thread = threading.Thread(target=write, daemon=True, name="render-writer")
        thread.start()
        return thread

    def read_line(self, timeout: float) -> dict[str, Any] | None:
        """The next answer, or None when `timeout` passed or the worker died."""
        if self.fresh:
            self.fresh = False
            if self._next_line(WORKER_START_TIMEOUT_S) is None:
                return None
        return self._next_line(timeout)

    def _next_line(self, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while not self.lines:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                return None
            *complete, self.partial = (self.partial + chunk).split(b"\n")
            self.lines = complete[::-1]
        return json.loads(self.lines.pop())

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


class BoundedRenderer:
    """Renders fields in a worker process under size and time budgets. One
    renderer serves one thread at a time (calls are serialised); the runner,
    the API and the dashboard each keep one."""

    def __init__(self, time_budget: float = FIELD_TIME_BUDGET_S):
        self.time_budget = time_budget
        self._worker: _Worker | None = None
        self._lock = threading.Lock()

    def render_many(
        self, items: Sequence[tuple[Sequence[Field], Mapping[str, Any], Mapping[str, Any]]]
    ) -> list[Rendered]:
        """Render each item's fields with `contact=context` and the `extra`
        variables (campaign, step). Never raises for a template's fault."""
        results: list[Rendered | None] = [None] * len(items)
        todo: list[int] = []
        for i, (fields, context, extra) in enumerate(items):
            if all(is_plainly_bounded(f.source) for f in fields):
                results[i] = _render_here(fields, context, extra)
            else:
                todo.append(i)
        with self._lock:
            while todo:
                todo = self._render_in_worker(items, todo, results)
        return [r if r is not None else Rendered(None, "not rendered", "error") for r in results]

    def _render_in_worker(
        self,
        items: Sequence[tuple[Sequence[Field], Mapping[str, Any], Mapping[str, Any]]],
        todo: list[int],
        results: list[Rendered | None],
    ) -> list[int]:
        """Render `todo` in one worker; returns the items still to do when the
        worker had to be killed (the item it was on has its reason)."""
        if self._worker is None or self._worker.process.poll() is not None:
            self._worker = _Worker()
        worker = self._worker
        lines = [
            (
                json.dumps(
                    {
                        "fields": [[f.source, f.limit] for f in items[i][0]],
                        "budget": self.time_budget,
                        "context": dict(items[i][1]),
                        "extra": dict(items[i][2]),
                    },
                    default=str,
                )
                + "\n"
            ).encode()
            for i in todo
        ]
        worker.send(lines)
        for n, i in enumerate(todo):
            fields = items[i][0]
            texts: list[str] = []
            failure: Rendered | None = None
            for field in fields:
                answer = worker.read_line(self.time_budget + 0.5)
                if answer is None:
                    worker.kill()
                    self._worker = None
                    results[i] = Rendered(
                        None, f"{field.label} took longer than {self.time_budget * 1000:.0f} ms to render", "time"
                    )
                    return todo[n + 1 :]
                if failure is None and "error" in answer:
                    failure = Rendered(
                        None,
                        f"{field.label} {answer['error']}",
                        answer.get("kind"),
                        answer.get("exception"),
                        answer.get("message"),
                    )
                elif failure is None:
                    texts.append(answer["text"])
            results[i] = failure or Rendered(texts)
        return []

    def close(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._worker.kill()
                self._worker = None


def _render_here(fields: Sequence[Field], context: Mapping[str, Any], extra: Mapping[str, Any]) -> Rendered:
    """Fields that only print variables: rendered in this process (microseconds),
    their size checked after."""
    texts = []
    for field in fields:
        try:
            text = (
                compile_template(field.source).render(contact=context, **extra) if "{" in field.source else field.source
            )
        except Exception as exc:  # the template's own error
            return Rendered(None, f"{field.label}: {type(exc).__name__}: {exc}", "error", type(exc).__name__, str(exc))
        if len(text) > field.limit:
            return Rendered(None, f"{field.label} grew past {human_size(field.limit)} while rendering", "size")
        texts.append(text)
    return Rendered(texts)


_shared: BoundedRenderer | None = None
_shared_lock = threading.Lock()


def shared_renderer() -> BoundedRenderer:
    """The process's renderer (started on first use, its worker on first render)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = BoundedRenderer()
        return _shared


def render_bounded(source: str, contact: Any, *, limit: int, label: str = "the text", **extra: Any) -> str:
    """One field for `contact` (a model or a mapping) under its budgets; raises
    `ContentError` with the reason when it exceeds one."""
    from automations.content.templating import ContentError

    [rendered] = shared_renderer().render_many([([Field(source, limit, label)], contact_context(contact), extra)])
    if rendered.texts is None:
        raise ContentError(rendered.problem or "cannot render")
    return rendered.texts[0]


__all__ = [
    "FIELD_TIME_BUDGET_S",
    "BoundedRenderer",
    "Field",
    "Rendered",
    "render_bounded",
    "shared_renderer",
    "human_size",
]
