"""Each vocabulary is spelled once (common/vocab.py): product code names the enum member, never the string.

The scan reads every product module's string constants, leaving out the places where a word is a field name rather
than a value (dict keys, subscripts, ``.get``/``.pop`` arguments), docstrings and f-string text. What remains and
is a vocabulary word must be the member. ``ALLOWED`` lists the few places where the same word means something else,
each with why.
"""

from __future__ import annotations

import ast
from enum import StrEnum
from pathlib import Path

import pytest

from common import vocab
from common.vocab import ComputationKind, GrantStatus, JobStatus

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "privacy", "ledger", "web", "protocol", "participants", "provider", "catalog", "authorization",
            "jobs", "exchange", "client")  # bench and migrations are fixtures and frozen history, like tests
VOCABULARIES = [value for value in vars(vocab).values()
                if isinstance(value, type) and issubclass(value, StrEnum) and value is not StrEnum]
WORDS = {member.value: f"{enum.__name__}.{member.name}" for enum in VOCABULARIES for member in enum}

# (file, word): the word there is not the vocabulary's
ALLOWED = {
    ("catalog/services.py", "domain"): "the asset field's public name",
    ("authorization/workflow.py", "scenario"): "the request field a per-scenario grant must name",
    ("ledger/anchor/chain.py", "pending"): "web3's block tag",
    ("ledger/anchor/models.py", "pending"): "an anchor's status, not a participant's",
    ("ledger/reconcile.py", "provider"): "a field label in a difference",
    ("ledger/reconcile.py", "consumer"): "a field label in a difference",
    ("ledger/reconcile.py", "domain"): "a field label in a difference",
    ("ledger/reconcile.py", "revoked"): "a field label in a difference",
    ("ledger/replay/catalog.py", "provider"): "a field of the asset entry's body",
    ("ledger/replay/catalog.py", "domain"): "a field of the asset entry's body",
    ("ledger/replay/participants.py", "domain"): "the kind of id an entry references",
    ("client/training_cli.py", "train"): "the CLI command's name",
    ("exchange/bootstrap.py", "operator"): "the first key's label",
    ("exchange/demo.py", "regulator"): "the demo participant's nickname",
    ("common/key_vouch.py", "expired"): "a key vouch's failure code",
    ("privacy/flower/server_app.py", "failed"): "the Flower run's status file",
    ("privacy/flower/task.py", "moments"): "the Flower app's phases (privacy sits beside common, importing none of it)",
    ("privacy/flower/task.py", "train"): "the Flower app's phases (privacy sits beside common, importing none of it)",
}


def _spellings(path: Path) -> list[tuple[int, str]]:
    """Return (line, word) for each string constant in ``path`` that is a vocabulary word used as a value."""
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            names.update(id(key) for key in node.keys if key is not None)
        elif isinstance(node, ast.Subscript):
            names.add(id(node.slice))
        elif isinstance(node, ast.JoinedStr):
            names.update(id(value) for value in node.values)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args \
                and node.func.attr in ("get", "pop", "setdefault"):
            names.add(id(node.args[0]))
        elif isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body \
                and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
            names.add(id(node.body[0].value))
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in WORDS
                  and id(node) not in names)


def _product_modules() -> list[Path]:
    found = [ROOT / "app.py"]
    for package in PACKAGES:
        found += sorted(p for p in (ROOT / package).rglob("*.py") if "node_modules" not in p.parts)
    return [p for p in found if p != ROOT / "common" / "vocab.py"]


def test_no_product_module_spells_a_vocabulary_word_the_enum_names():
    found = [f"{path.relative_to(ROOT)}:{line}: {word!r} (use {WORDS[word]})"
             for path in _product_modules() for line, word in _spellings(path)
             if (str(path.relative_to(ROOT)), word) not in ALLOWED]
    assert found == [], "\n".join(found)


def test_every_allowed_spelling_is_still_there():
    """An exception that no longer matches anything is removed, so the list cannot hide a new spelling."""
    present = {(str(path.relative_to(ROOT)), word) for path in _product_modules() for _, word in _spellings(path)}
    assert set(ALLOWED) - present == set()


@pytest.mark.parametrize("source, expected", [
    ('KIND = "he-statistics"', [(1, "he-statistics")]),
    ('if job.status == "admitted": pass', [(1, "admitted")]),
    ('row = {"provider": p, "kind": k}', []),
    ('x = entry["domain"]', []),
    ('x = body.get("consumer")', []),
    ('msg = f"grant {g} is active"', []),
])
def test_the_scan_sees_values_and_passes_over_field_names(tmp_path, source, expected):
    module = tmp_path / "module.py"
    module.write_text(source + "\n")
    assert _spellings(module) == expected


def test_a_member_is_its_string_in_comparisons_json_and_text():
    import json

    assert ComputationKind.FEDERATED_LEARNING == "federated-learning" and JobStatus.ADMITTED in {"admitted"}
    assert json.dumps({"status": GrantStatus.PROVIDER_APPROVED}) == '{"status": "provider-approved"}'
    assert f"{GrantStatus.ACTIVE}" == "active" and str(ComputationKind.HE_SCORING) == "he-scoring"
