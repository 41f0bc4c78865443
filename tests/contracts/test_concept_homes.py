"""Each concept has one home: tag keys in naming's tags registry, study/trial folders and the config dir in
mlrig.paths. A literal written elsewhere is a second home that drifts; this test fails on one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGES = Path(__file__).resolve().parents[2] / "packages"

# The homes: the tags registry (its Python side; the keys themselves live in tags.yaml) and mlrig.paths.
TAGS_HOME = ("naming/src/mlrig/naming/tags.py",)
PATHS_HOME = "paths/src/mlrig/paths/"
CONFIG_DIR_HOME = ("paths/src/mlrig/paths/config.py",)


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _string_pieces(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string literal and every literal part of an f-string, with its line (docstrings left out)."""
    skip = _docstrings(tree)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            out.append((node.lineno, node.value))
    return out


def violations(source: str, rel: str) -> list[str]:
    """The concept-home violations of one module (``rel``: its path below ``packages/``)."""
    tree = ast.parse(source)
    found = []
    for line, text in _string_pieces(tree):
        if text.startswith("code.") and rel not in TAGS_HOME:
            found.append(f"{rel}:{line}: tag key literal {text!r} outside the tags registry")
        if text.startswith(("study-", "trial-")) and not rel.startswith(PATHS_HOME):
            found.append(f"{rel}:{line}: hand-built folder name {text!r} outside mlrig.paths")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Div)
            and isinstance(node.right, ast.Constant)
            and node.right.value == "config"
            and rel not in CONFIG_DIR_HOME
        ):
            found.append(f"{rel}:{node.lineno}: '/ \"config\"' outside mlrig.paths (use infer_config_dir)")
    return found


def test_no_second_home_in_the_packages() -> None:
    found = []
    for path in sorted(PACKAGES.glob("*/src/mlrig/**/*.py")):
        rel = path.relative_to(PACKAGES).as_posix()
        found += violations(path.read_text(encoding="utf-8"), rel)
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('tags = {"code.stage": "hpo"}', "tag key literal 'code.stage'"),
        ('key = f"code.{section}"', "tag key literal 'code.'"),
        ('d = root / f"study-{h[:8]}"', "hand-built folder name 'study-'"),
        ('name = "trial-" + t8', "hand-built folder name 'trial-'"),
        ('cfg = Path(root) / "config"', "outside mlrig.paths"),
    ],
)
def test_a_second_home_is_reported(source: str, expected: str) -> None:
    found = violations(source, "orchestration/src/mlrig/orchestration/x.py")
    assert len(found) == 1 and expected in found[0] and found[0].startswith("orchestration/")


def test_docstrings_and_the_homes_are_allowed() -> None:
    doc = '"""code.stage is written by the tracker."""\n'
    assert violations(doc, "orchestration/src/mlrig/orchestration/x.py") == []
    assert violations('k = "code.stage"', TAGS_HOME[0]) == []
    assert violations('d = f"study-{h}"', "paths/src/mlrig/paths/parse.py") == []
