"""The layout docs/architecture.md describes: imports go one way, without cycles,
and pages/ holds only the pages the router lists."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "automations"

# What each subpackage may import from the project (besides itself).
ALLOWED = {
    "domain": set(),
    "content": {"domain"},
    "services": {"domain", "content"},
    "channels": {"domain", "content"},
    "runner": {"domain", "content", "services", "channels"},
    "reports": {"domain", "content", "services"},
    "api": {"domain", "content", "services", "reports"},
    "cli": {"domain", "content", "services", "reports", "runner", "channels", "api"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Project modules `path` imports at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            if base.split(".")[0] in ("automations", "ui", "pages"):
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] in ("automations", "ui", "pages"))
    return found


def _package_modules() -> dict[str, Path]:
    return {
        _module_name(p): p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts and p.name != "__main__.py"
    }


def test_subpackages_import_only_the_layers_below_them():
    modules = _package_modules()
    wrong = []
    for name, path in modules.items():
        parts = name.split(".")
        if len(parts) < 2 or parts[1] not in ALLOWED:
            continue
        own = parts[1]
        for target in _imports(path):
            tparts = target.split(".")
            if tparts[0] != "automations":
                wrong.append(f"{name} imports {target} (automations/ never imports the dashboard)")
            elif len(tparts) > 1 and tparts[1] in ALLOWED and tparts[1] != own and tparts[1] not in ALLOWED[own]:
                wrong.append(f"{name} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles_between_modules():
    modules = _package_modules()
    graph = {name: {t for t in _imports(path) if t in modules and t != name} for name, path in modules.items()}
    # A package's __init__ that only loads its submodules by name is not an edge back.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for name in sorted(graph):
        if name not in state:
            cycle = visit(name)
            assert cycle is None, " -> ".join(cycle)


def test_automations_never_imports_streamlit():
    offenders = [
        name
        for name, path in _package_modules().items()
        if any(
            isinstance(n, (ast.Import, ast.ImportFrom))
            and any(
                (getattr(n, "module", None) or a.name).split(".")[0] == "streamlit" for a in getattr(n, "names", [])
            )
            for n in ast.walk(ast.parse(path.read_text()))
        )
    ]
    assert offenders == []


def test_pages_holds_only_the_pages_the_router_lists():
    router = (REPO / "app.py").read_text()
    files = sorted(p.name for p in (REPO / "pages").iterdir() if p.name != "__pycache__")
    unlisted = [name for name in files if f'"pages/{name}"' not in router]
    assert unlisted == [], f"pages/ holds files that are not pages: {unlisted} (helpers go in ui/)"


def test_the_package_and_every_page_import_in_a_fresh_interpreter():
    """`import automations` and each module, in the order a user's process would meet them."""
    names = sorted(_package_modules())
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    done = subprocess.run(
        [sys.executable, "-c", code, "automations", *names, "ui.common", "ui.steps_editor"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
