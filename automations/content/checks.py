"""The save-time check of a template: it must parse, stay inside the sandbox and
render a sample contact within the size and time budgets.

Templates that only print variables are tried in-process (microseconds); the
others in the bounded renderer's worker, so a template bomb is refused within a
second instead of stalling the dashboard or the API that saves it.

The reasons are written for the person who typed the template: Jinja's own
messages ("unexpected end of template, expected 'end of print statement'") are
turned into what is wrong and where ("The template is missing a closing `}}`
after `contact.first_name`.").
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from jinja2 import TemplateSyntaxError
from jinja2.exceptions import TemplateAssertionError
from jinja2.lexer import Token, TokenStream, ignored_tokens
from jinja2.parser import Parser

from automations.content.bounded import Field, shared_renderer

# `_env` is the sandbox that compiles the templates: its lexer, parser, filters and
# globals, so that the check reads a template exactly as rendering will.
from automations.content.templating import (
    MAX_VALUE_CHARS,
    SAMPLE_CONTACT,
    TEMPLATE_CACHE_SIZE,
    ContentError,
    compile_template,
    contact_context,
    extra_context,
    is_plainly_bounded,
    undeclared_names,
)
from automations.content.templating import _env as _sandbox

# The variables a template sees (`contact_context`, `extra_context`).
TEMPLATE_NAMES = ("contact", "campaign", "step")
# Block tags and the tag that ends each.
_BLOCK_ENDS = {
    "if": "endif",
    "for": "endfor",
    "macro": "endmacro",
    "call": "endcall",
    "filter": "endfilter",
    "with": "endwith",
    "autoescape": "endautoescape",
    "block": "endblock",
    "set": "endset",  # `{% set x %}...{% endset %}`; `{% set x = 1 %}` is not a block
}
_KNOWN_TAGS = (*_BLOCK_ENDS, *_BLOCK_ENDS.values(), "elif", "else", "raw", "endraw")
# Tokens the lexer yields that the parser never sees.
_SKIPPED = ignored_tokens | {"raw_begin", "raw_end"}
# How Jinja names the end of a tag in its messages, and what the user types.
_TOKEN_WORDS = {"end of print statement": "}}", "end of statement block": "%}", "end of template": "the end"}
_SHORT = 40  # characters of the template quoted in a message


def check_template(source: str) -> None:
    """Raise `ContentError` with the reason, in plain words, when `source` cannot be used."""
    if not source:
        return
    problem = _template_problem(source)
    if problem is not None:
        raise ContentError(problem)


@lru_cache(maxsize=TEMPLATE_CACHE_SIZE)
def _template_problem(source: str) -> str | None:
    # The verdict depends on the source alone (the sample contact and the sandbox
    # are fixed), so starting the 1,000th campaign from a template does not
    # compile and trial-render its steps again.
    try:
        template = compile_template(source)
    except TemplateSyntaxError as exc:
        return syntax_problem(source, exc)
    # A bare unknown name (`{{ first_name }}`) would print as nothing in every message.
    unknown = sorted(undeclared_names(source) - set(TEMPLATE_NAMES))
    if unknown:
        return _unknown_name_message(unknown[0])
    if not is_plainly_bounded(source):
        return _trial_in_worker(source)
    try:
        template.render(contact=contact_context(SAMPLE_CONTACT), **extra_context())
    except Exception as exc:  # the template's own error: unsafe, undefined, a division by zero ...
        return render_problem(type(exc).__name__, str(exc))
    return None


def _trial_in_worker(source: str) -> str | None:
    """The trial render of a template that loops, calls or computes: in the
    bounded renderer's worker, so a template bomb is refused within a second
    instead of stalling the process that saves it."""
    [rendered] = shared_renderer().render_many(
        [([Field(source, MAX_VALUE_CHARS, "the template")], contact_context(SAMPLE_CONTACT), extra_context())]
    )
    if rendered.texts is not None:
        return None
    if rendered.kind in ("size", "time", "memory") or not rendered.exception:
        reason = (rendered.problem or "").removeprefix("the template").strip() or "cannot be rendered"
        return f"The template is too costly to render: it {reason}."
    return render_problem(rendered.exception, rendered.message or "")


# --- what a render reports -----------------------------------------------------


def render_problem(exception: str, message: str) -> str:
    """A sentence for the error (class name and message) of a trial render."""
    if exception == "SizeBudgetExceeded":
        return f"The template is too costly to render: it {message}."
    if exception == "SecurityError":
        attribute = re.search(r"attribute '([^']+)'", message)
        if attribute:
            return f"The template uses `{attribute.group(1)}`, which is not allowed."
        if "exponent" in message:
            return "The template computes a power that is too large."
        return f"The template does something that is not allowed: {message}."
    if exception == "UndefinedError":
        undefined = re.match(r"'([^']+)' is undefined", message)
        if undefined:
            return _unknown_name_message(undefined.group(1))
        missing = re.search(r"has no attribute '([^']+)'", message)
        if missing:
            return f"The template uses `{missing.group(1)}`, which does not exist: check the spelling."
        return f"The template uses something that does not exist: {message}."
    if exception == "ZeroDivisionError":
        return "The template divides by zero."
    return f"The template fails when filled in for a sample contact: {message or exception}."


def _unknown_name_message(name: str) -> str:
    """For a name that is none of `TEMPLATE_NAMES` (a typo such as `contatc`)."""
    if name in contact_context(SAMPLE_CONTACT):  # `{{ first_name }}` for `{{ contact.first_name }}`
        return f"Unknown name `{name}`: did you mean `contact.{name}`?"
    guess = difflib.get_close_matches(name, TEMPLATE_NAMES, n=1)
    if guess:
        return f"Unknown name `{name}`: did you mean `{guess[0]}`?"
    return (
        f"Unknown name `{name}`: a template can use `contact` (e.g. `{{{{ contact.first_name }}}}`), "
        "`campaign.name` and `step.name`."
    )


# --- what the parser reports ---------------------------------------------------


@dataclass(frozen=True)
class _Spot:
    """Where the parser stopped: inside which tag (`{{` or `{%`, None in plain text),
    what the tag holds before the problem, and the lines."""

    opener: str | None
    before: str
    line: int
    opener_line: int
    closed_later: bool
    blocks: tuple[tuple[str, str, int], ...]  # the block tags still open there: (tag, text, line)


def syntax_problem(source: str, exc: TemplateSyntaxError) -> str:
    """A sentence saying what is wrong with a template that does not parse, and
    where: what precedes the problem, and the line when there are several."""
    message = exc.message or ""
    # Jinja reports this one after stepping past the token that is not a name.
    spot = _locate(source, exc.lineno, step_back=message.startswith("expected name or number"))
    at = _on_line(source, spot.line)
    at_opener = _on_line(source, spot.opener_line)
    after = f" after `{_quote(spot.before)}`" if spot.before else ""

    if isinstance(exc, TemplateAssertionError):  # found when compiling: the source parsed
        at = _on_line(source, exc.lineno or 1)
        filter_name = re.match(r"No filter named '([^']+)'", message)
        if filter_name:
            name = filter_name.group(1)
            guess = difflib.get_close_matches(name, _sandbox.filters, n=1)
            hint = f"did you mean `{guess[0]}`?" if guess else "use one such as `default`, `upper` or `title`."
            return f"Unknown filter `{name}`{at}: {hint}"
        test_name = re.match(r"No test named '([^']+)'", message)
        if test_name:
            return f"Unknown test `is {test_name.group(1)}`{at}."
    if message.startswith("Missing end of comment tag"):
        return f"A comment opened with `{{#` is never closed{at}: add `#}}`."
    if message.startswith("Missing end of raw directive"):
        return f"The `{{% raw %}}` block is never closed{at}: add `{{% endraw %}}`."
    char = re.match(r"unexpected char (['\"])(.)\1 at (\d+)", message)
    if char:
        found, position = char.group(2), int(char.group(3))
        closer = {"{{": "}}", "{%": "%}"}.get(spot.opener or "")
        if closer and closer not in source[position:]:
            return _unclosed_tag(spot, at_opener)
        if found in "'\"":
            rest = source[position + 1 : position + 1 + _SHORT].split("\n")[0].strip()
            return f"The quote `{found}` before `{rest}` is never closed{at}: add the closing `{found}`."
        return f"Unexpected character `{found}`{after}{at}."

    innermost = re.search(r"innermost block that needs to be closed is '([^']+)'", message)
    unknown_tag = re.match(r"Encountered unknown tag '([^']+)'", message)
    if unknown_tag:
        return _unknown_tag(unknown_tag.group(1), innermost.group(1) if innermost else None, at)
    if innermost:  # the template ends inside a block
        return _unclosed_block(innermost.group(1), spot, source)

    if message.startswith("unexpected end of template") and spot.opener:
        return _unclosed_tag(spot, at_opener)
    expected_token = re.match(r"expected token '([^']+)', got '([^']*)'", message)
    if expected_token:
        wanted = _TOKEN_WORDS.get(expected_token.group(1), expected_token.group(1))
        if spot.opener and not spot.closed_later:
            return _unclosed_tag(spot, at_opener)
        got = _TOKEN_WORDS.get(expected_token.group(2), expected_token.group(2))
        if wanted in ("}}", "%}"):
            return f"Unexpected `{got}`{after}{at}: close the tag with `{wanted}` first."
        if wanted == "name":
            return f"A name is missing{after}{at}."
        return f"Expected `{wanted}`{after}{at}, not `{got}`."
    if message.startswith("tag name expected"):
        return f"A `{{% %}}` is empty{at}: write a tag in it, e.g. `{{% if contact.company %}}`."
    if message.startswith("Expected an expression"):
        return _missing_expression(spot, at)
    if message.startswith("expected name or number") and spot.before.endswith("."):
        return f"A field name is missing after `{_quote(spot.before)}`{at}, e.g. `contact.first_name`."
    unexpected = re.match(r"unexpected '([^']+)'(?:, expected '([^']+)')?", message)
    if unexpected:
        found, wanted_char = unexpected.group(1), unexpected.group(2)
        # `{% if x }}` and `{{ x %}`: the tag is closed with the other kind's end.
        if found == "}" and spot.opener == "{%":
            opened = f"{{% {_quote(spot.before)}".strip()
            return f"The tag `{opened}` must end with `%}}`, not `}}}}`{at}."
        if found == "}" and spot.opener == "{{" and spot.before.endswith("%"):
            return f"The `{{{{ {_quote(spot.before[:-1].strip())}` must end with `}}}}`, not `%}}`{at}."
        if spot.opener and (found == "end of template" or not spot.closed_later):
            return _unclosed_tag(spot, at_opener)
        found = _TOKEN_WORDS.get(found, found)
        if found in ("}}", "%}") and spot.before:
            return f"Something is missing after `{_quote(spot.before)}`{at}."
        if wanted_char:
            return f"Missing `{wanted_char}`{after}{at}."
        return f"Unexpected `{found}`{after}{at}."
    return f"The template has a mistake{after}{at}: {message.rstrip('.')}."


def _unclosed_tag(spot: _Spot, at: str) -> str:
    closer = "}}" if spot.opener == "{{" else "%}"
    leading = re.match(r"[\w.]+(?:\s*\|\s*\w+(?:\([^)]*\))?)*", spot.before)
    what = leading.group(0) if leading and spot.opener == "{{" else spot.before
    if not what:
        return f"A `{spot.opener}` is never closed{at}: add `{closer}`."
    return f"The template is missing a closing `{closer}` after `{_quote(what)}`{at}."


def _unclosed_block(tag: str, spot: _Spot, source: str) -> str:
    end = _BLOCK_ENDS.get(tag, f"end{tag}")
    opened = next((block for block in reversed(spot.blocks) if block[0] == tag), None)
    if opened is None:
        return f"The `{{% {tag} %}}` block is never closed: add `{{% {end} %}}`."
    _, text, line = opened
    return f"The `{{% {_quote(text)} %}}` block{_on_line(source, line)} is never closed: add `{{% {end} %}}`."


def _unknown_tag(tag: str, innermost: str | None, at: str) -> str:
    if tag in _KNOWN_TAGS:
        if innermost is not None:
            end = _BLOCK_ENDS.get(innermost, f"end{innermost}")
            return (
                f"`{{% {tag} %}}`{at} does not fit here: "
                f"close the open `{{% {innermost} %}}` block with `{{% {end} %}}` first."
            )
        if tag in ("else", "elif"):
            return f"`{{% {tag} %}}`{at} can only be used inside an `{{% if %}}` … `{{% endif %}}` block."
        opening = next((start for start, end in _BLOCK_ENDS.items() if end == tag), tag.removeprefix("end"))
        return f"`{{% {tag} %}}`{at} has no `{{% {opening} %}}` to close: remove it or add the opening tag."
    guess = difflib.get_close_matches(tag, _KNOWN_TAGS, n=1)
    if guess:
        return f"Unknown tag `{{% {tag} %}}`{at}: did you mean `{{% {guess[0]} %}}`?"
    return f"Unknown tag `{{% {tag} %}}`{at}: use `{{% if %}}`, `{{% for %}}` or `{{% set %}}`."


def _missing_expression(spot: _Spot, at: str) -> str:
    examples = {
        "if": "needs a condition, e.g. `{% if contact.company %}`",
        "elif": "needs a condition, e.g. `{% elif contact.company %}`",
        "for": "needs a loop, e.g. `{% for tag in contact.tags %}`",
        "set": "needs a name and a value, e.g. `{% set greeting = 'Hi' %}`",
    }
    if spot.opener == "{%" and spot.before in examples:
        return f"`{{% {spot.before} %}}`{at} {examples[spot.before]}."
    if spot.opener == "{{" and not spot.before:
        return f"A `{{{{ }}}}` is empty{at}: put a value in it, e.g. `{{{{ contact.first_name }}}}`."
    return f"Something is missing after `{_quote(spot.before)}`{at}."


def _locate(source: str, fallback_line: int | None, *, step_back: bool = False) -> _Spot:
    """Run Jinja's lexer and parser over `source` again, keeping the tokens, to
    find the token the parser stopped at (its messages give only a line)."""
    raw: list[tuple[int, str, str]] = []
    lexed = True
    try:
        raw.extend(_sandbox.lexer.tokeniter(source, None))
    except TemplateSyntaxError:
        lexed = False  # the lexer itself stopped: the problem is right after the last token
    stop = len(raw)
    if lexed:
        significant = [i for i, (_, kind, _) in enumerate(raw) if kind not in _SKIPPED]
        produced: list[Token] = []

        def tokens() -> Iterator[Token]:
            for token in _sandbox.lexer.wrap(iter(raw)):
                produced.append(token)
                yield token

        parser = Parser(_sandbox, source)
        parser.stream = TokenStream(tokens(), None, None)
        try:
            parser.parse()
        except TemplateSyntaxError:
            current = parser.stream.current
            index = next((n for n, token in enumerate(produced) if token is current), len(produced))
            index = max(index - 1, 0) if step_back else index
            stop = significant[index] if index < len(significant) else len(raw)
    # A lexer error's own line is exact; after a parser error, the token's line is.
    return _spot(source, raw, stop, None if lexed else fallback_line)


def _spot(source: str, raw: list[tuple[int, str, str]], stop: int, known_line: int | None) -> _Spot:
    opened: int | None = None
    blocks: list[tuple[str, str, int]] = []
    for index, (_, kind, _) in enumerate(raw[:stop]):
        if kind in ("variable_begin", "block_begin"):
            opened = index
        elif kind in ("variable_end", "block_end"):
            if opened is not None and raw[opened][1] == "block_begin":
                _track_block(blocks, raw[opened + 1 : index], raw[opened][0])
            opened = None
    line = known_line or (raw[stop][0] if stop < len(raw) else (raw[-1][0] if raw else 1))
    if opened is None:
        return _Spot(None, "", line, line, False, tuple(blocks))
    opener = "{{" if raw[opened][1] == "variable_begin" else "{%"
    closer = "}}" if opener == "{{" else "%}"
    before = "".join(value for _, _, value in raw[opened + 1 : stop]).strip()
    # From the text, not the tokens: after a lexer error there are no tokens left.
    offset = sum(len(value) for _, _, value in raw[:stop])
    closed_later = closer in source[offset:]
    return _Spot(opener, before, line, raw[opened][0], closed_later, tuple(blocks))


def _track_block(blocks: list[tuple[str, str, int]], inside: list[tuple[int, str, str]], line: int) -> None:
    words = [value for _, kind, value in inside if kind not in ignored_tokens]
    if not words:
        return
    tag = words[0]
    if tag in _BLOCK_ENDS and not (tag == "set" and "=" in words):
        text = "".join(value for _, _, value in inside).strip()
        blocks.append((tag, text, line))
    elif tag.startswith("end"):
        for position in range(len(blocks) - 1, -1, -1):
            if _BLOCK_ENDS.get(blocks[position][0]) == tag:
                del blocks[position:]
                break


def _on_line(source: str, line: int) -> str:
    """` on line N` when the template has several lines (else nothing)."""
    return f" on line {line}" if "\n" in source.strip() else ""


def _quote(text: str) -> str:
    """A piece of the template short enough to quote: its end, which is next to the problem."""
    text = " ".join(text.split())
    return text if len(text) <= _SHORT else "…" + text[-_SHORT:]


__all__ = ["ContentError", "TEMPLATE_NAMES", "check_template", "render_problem", "syntax_problem"]
