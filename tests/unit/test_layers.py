"""The code's layers hold: no import cycle between files or packages, each package imports only those below it,
and the pure cores load no framework (docs/architecture.md, "Layers").

Imports are read from the source (module level and inside functions alike), so a cycle cannot hide in a function.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Lowest first. A package may import itself and any package of a lower layer, never one of its own layer or above.
LAYERS = [
    {"common", "privacy"},
    {"settlement"},
    {"contracts"},
    {"ledger"},
    {"web", "protocol"},
    {"participants", "provider"},
    {"catalog"},
    {"authorization"},
    {"jobs"},
    {"migrations"},
    {"exchange"},
    {"app"},
    {"client"},
    {"bench"},
]
LAYER = {package: index for index, packages in enumerate(LAYERS) for package in packages}

# Pure cores: the rules and the mathematics, importable with no web framework, ORM, chain client or HTTP client.
PURE = ["ledger.merkle", "ledger.entries", "ledger.notes", "ledger.errors", "ledger.receipts", "ledger.replay",
        "ledger.audit", "ledger.audit_report", "ledger.anchor.verify", "ledger.anchor.records", "ledger.reconcile",
        "privacy.aggregation", "privacy.he", "privacy.fixedpoint", "privacy.dp", "privacy.release", "privacy.scoring",
        "privacy.federated", "privacy.accountant", "authorization.engine", "authorization.terms", "authorization.odrl",
        "authorization.lifecycle", "jobs.declarations", "protocol.tickets", "protocol.grantstatus",
        "protocol.identity", "protocol.receipts", "catalog.rules", "participants.rules", "participants.keys",
        "common.crypto", "common.jsonlimits", "common.key_vouch", "common.errors", "common.vocab", "common.grant_rules",
        "settlement.money", "settlement.errors", "settlement.pricing", "settlement.sharing", "settlement.shapley",
        "settlement.statement"]
FRAMEWORKS = ("flask", "werkzeug", "flask_smorest", "marshmallow", "sqlalchemy", "alembic", "web3", "requests")


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in {".venv", "tests", "node_modules", "build"} or "node_modules" in relative.parts:
            continue
        if relative.parts[0] not in LAYER:
            continue
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in MODULES:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one cycle of ``graph`` as a path, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _top(module: str) -> str:
    return module.split(".")[0]


def test_no_file_imports_another_that_imports_it_back():
    assert _cycle(GRAPH) is None, " -> ".join(_cycle(GRAPH))


def test_no_package_imports_another_that_imports_it_back():
    packages: dict[str, set[str]] = {}
    for name, targets in GRAPH.items():
        packages.setdefault(_top(name), set()).update(_top(t) for t in targets if _top(t) != _top(name))
    assert _cycle(packages) is None, " -> ".join(_cycle(packages))


def test_every_import_goes_down_the_layers():
    upward = sorted(f"{name} -> {target}" for name, targets in GRAPH.items() for target in targets
                    if _top(target) != _top(name) and LAYER[_top(target)] >= LAYER[_top(name)])
    assert upward == []


def test_every_package_has_a_layer():
    top_level = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists() and p.name != "tests"} | {"app"}
    assert top_level - set(LAYER) == set(), "add the new package to LAYERS and to docs/architecture.md"


@pytest.mark.parametrize("module", PURE)
def test_a_pure_core_loads_no_framework(module):
    code = (f"import sys, {module}; loaded = [m for m in {FRAMEWORKS!r} if m in sys.modules]; "
            f"print(','.join(loaded))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"{module} loads {done.stdout.strip()}"
