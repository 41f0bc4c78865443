"""End to end: the real ``lint-imports`` with the repository's contracts, on fixture projects and the repo."""

from __future__ import annotations

import ast
import importlib

import pytest

LAYERS = "mlrig layers: cli > orchestration > tracking > naming | storage > paths"
MLFLOW = "Only tracking and orchestration import mlflow"
OPTUNA = "Only orchestration imports optuna"
FACADES = "No facade modules (re-export shims)"
REEXPORTS = "No package re-exports another package's names"
DUPLICATES = "No duplicate function or class definitions across modules"


def _only_broken(result_output: str, names: list[str], broken: set[str]) -> None:
    for name in names:
        expected = "BROKEN" if name in broken else "KEPT"
        assert f"{name} {expected}" in result_output, f"{name} should be {expected}:\n{result_output}"


def test_repo_config_registers_all_contracts(repo) -> None:
    text = repo.config.read_text(encoding="utf-8")
    names = repo.contract_names()
    assert set(names) == {LAYERS, MLFLOW, OPTUNA, FACADES, REEXPORTS, DUPLICATES}
    for type_name in ("no_facades", "no_cross_package_reexports", "no_duplicate_definitions"):
        assert f"{type_name}: tests.contracts.mlrig_contracts." in text
        assert f"type = {type_name}" in text


def test_repo_contracts_are_kept(repo) -> None:
    result = repo.lint()
    names = repo.contract_names()
    assert result.returncode == 0, result.output
    _only_broken(result.output, names, broken=set())
    assert f"Contracts: {len(names)} kept, 0 broken." in result.output


def test_repo_copy_is_kept_before_it_is_broken(repo_copy) -> None:
    result = repo_copy.lint()
    assert result.returncode == 0, result.output
    assert f"Contracts: {len(repo_copy.contract_names())} kept, 0 broken." in result.output
    # The copy, not the workspace, is what gets linted: breaking it breaks the run.
    (repo_copy.package_dir("orchestration") / "broken_syntax_probe.py").write_text("def (:\n")
    assert repo_copy.lint().returncode != 0


def _largest_function(package_dir, package: str) -> tuple[str, str, int, str]:
    """(module, name, line, source) of the top-level function with the most statements in a package."""
    best: tuple[int, str, str, int, str] | None = None
    for path in sorted(package_dir.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        relative = path.relative_to(package_dir).with_suffix("")
        module = ".".join(["mlrig", package, *relative.parts]).removesuffix(".__init__")
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef):
                size = sum(isinstance(child, ast.stmt) for child in ast.walk(node))
                segment = ast.get_source_segment(text, node)
                if segment and (best is None or size > best[0]):
                    best = (size, module, node.name, node.lineno, segment)
    assert best is not None and best[0] >= 10, f"no function big enough to copy in mlrig.{package}"
    return best[1], best[2], best[3], best[4]


def test_acceptance_upward_import_in_paths_fails_lint(repo_copy) -> None:
    init = repo_copy.package_dir("paths") / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + "\nimport mlrig.tracking  # noqa: E402\n")
    result = repo_copy.lint()
    assert result.returncode == 1, result.output
    assert result.status(LAYERS) == "BROKEN"
    assert "mlrig.paths -> mlrig.tracking" in result.output


def test_acceptance_reexport_shim_in_orchestration_fails_lint(repo_copy) -> None:
    names = sorted(importlib.import_module("mlrig.naming").__all__)[:3]
    shim = repo_copy.package_dir("orchestration") / "naming.py"
    shim.write_text(f"from mlrig.naming import {', '.join(names)}\n\n__all__ = {names!r}\n")
    result = repo_copy.lint()
    assert result.returncode == 1, result.output
    assert result.status(FACADES) == "BROKEN"
    assert result.status(REEXPORTS) == "BROKEN"
    assert "mlrig.orchestration.naming is a facade module" in result.output
    assert f"mlrig.orchestration.naming exports {names[0]!r}" in result.output


def test_acceptance_copied_function_body_fails_lint(repo_copy) -> None:
    module, name, line, source = _largest_function(repo_copy.package_dir("naming"), "naming")
    copy = source.replace(f"def {name}(", "def copied_helper(", 1)
    (repo_copy.package_dir("orchestration") / "helpers.py").write_text(copy + "\n")
    result = repo_copy.lint()
    assert result.returncode == 1, result.output
    assert result.status(DUPLICATES) == "BROKEN"
    assert f"{module}:{name}:{line}" in result.output
    assert "mlrig.orchestration.helpers:copied_helper:1" in result.output


def test_clean_fixture_keeps_every_contract(project) -> None:
    result = project.lint()
    names = project.contract_names()
    assert result.returncode == 0, result.output
    _only_broken(result.output, names, broken=set())
    assert f"Contracts: {len(names)} kept, 0 broken." in result.output


# One violation class from the seeds per case: (files to write, files to append to, contracts it must break,
# texts the report must contain).
SEED_VIOLATIONS = {
    "facade": (
        {
            "fx/orchestration/paths.py": """
                import warnings

                from fx.paths import freeze, render_output_path

                warnings.warn("fx.orchestration.paths is deprecated", DeprecationWarning, stacklevel=2)

                __all__ = ["freeze", "render_output_path"]
            """
        },
        {},
        {FACADES, REEXPORTS},
        [
            "fx.orchestration.paths is a facade module",
            "render_output_path (from fx.paths)",
            "fx.orchestration.paths exports 'freeze'",
        ],
    ),
    "facade within a package": (
        {
            "fx/orchestration/api.py": (
                "from fx.orchestration.sweep import run_sweep\nfrom fx.tracking import start_run\n"
            )
        },
        {},
        {FACADES},
        ["fx.orchestration.api is a facade module", "run_sweep (from fx.orchestration.sweep)"],
    ),
    "cross-package re-export": (
        {},
        {"fx/naming/__init__.pyi": "from fx.paths import render_output_path as render_output_path\n"},
        {REEXPORTS},
        [
            "fx.naming exports 'render_output_path' (lists it in its __init__.pyi)",
            "its home is fx.paths.core in package fx.paths",
        ],
    ),
    "cross-package re-export in __init__.py": (
        {
            "fx/naming/__init__.py": """
                from fx.naming.keys import build_study_key
                from fx.paths import render_output_path

                __all__ = ["build_study_key", "render_output_path"]
            """
        },
        {},
        {REEXPORTS},
        ["fx.naming exports 'render_output_path' (lists it in __all__)", "its home is fx.paths.core"],
    ),
    "external re-export in a stub": (
        {},
        {"fx/tracking/__init__.pyi": "from fakemlflow import log_metric as log_metric\n"},
        {FACADES},
        ["fx.tracking (package __init__", "re-exports log_metric from fakemlflow.log_metric (listed in"],
    ),
    "identical class pair": (
        {
            "fx/orchestration/handles.py": '''
                from dataclasses import dataclass


                @dataclass(frozen=True)
                class SweepRunHandle:
                    """Copied from tracking, then renamed."""

                    sweep_id: str
                    study_id: str
                    name: str

                    def describe(self):
                        label = f"{self.name} ({self.sweep_id})"
                        if self.study_id:
                            label += f" under {self.study_id}"
                        size = len(label)
                        line = "=" * size
                        return "\\n".join([line, label, line])
            '''
        },
        {},
        {DUPLICATES},
        ["fx.orchestration.handles:SweepRunHandle:5", "fx.tracking.runs:RunHandle:9"],
    ),
    # A lazy package's __init__ imports none of its modules (grimp does not read the stub), so the chain to
    # fakemlflow ends at fx.tracking: the layers contract is the one that catches an upward import.
    "upward import": (
        {},
        {"fx/paths/core.py": "import fx.tracking\n"},
        {LAYERS},
        ["fx.paths.core -> fx.tracking"],
    ),
    "upward import of a module": (
        {},
        {"fx/paths/core.py": "import fx.tracking.runs\n"},
        {LAYERS, MLFLOW},
        ["fx.paths.core -> fx.tracking.runs", "fx.tracking.runs -> fakemlflow"],
    ),
    "lazy upward import": (
        {},
        {
            "fx/storage/backup.py": (
                "def _late():\n    from fx.orchestration import run_sweep\n\n    return run_sweep\n"
            )
        },
        {LAYERS},
        ["fx.storage.backup -> fx.orchestration"],
    ),
    "lazy upward import of a module": (
        {},
        {
            "fx/storage/backup.py": (
                "def _late():\n    from fx.orchestration.sweep import run_sweep\n\n    return run_sweep\n"
            )
        },
        {LAYERS, OPTUNA},
        ["fx.storage.backup -> fx.orchestration.sweep", "fx.orchestration.sweep -> fakeoptuna"],
    ),
    "sibling import": (
        {},
        {"fx/naming/keys.py": "from fx.storage import BackupStore\n"},
        {LAYERS},
        ["fx.naming.keys -> fx.storage"],
    ),
    "mlflow imported from paths": (
        {"fx/paths/tracking_helpers.py": "import fakemlflow\n\nLOG = fakemlflow.log_metric\nVERSION = 1\n"},
        {},
        {MLFLOW},
        ["fx.paths is not allowed to import fakemlflow", "fx.paths.tracking_helpers -> fakemlflow"],
    ),
    "optuna imported lazily from tracking": (
        {},
        {
            "fx/tracking/runs.py": """
                def sweep_names(model):
                    import fakeoptuna

                    return fakeoptuna.create_study(model)["name"]
            """
        },
        {OPTUNA},
        ["fx.tracking.runs -> fakeoptuna"],
    ),
}


@pytest.mark.parametrize("case", list(SEED_VIOLATIONS))
def test_seed_violation_breaks_its_contract(project, case: str) -> None:
    writes, appends, broken, expected_texts = SEED_VIOLATIONS[case]
    for relative, text in writes.items():
        project.write(relative, text)
    for relative, text in appends.items():
        project.append(relative, text)
    result = project.lint()
    assert result.returncode == 1, result.output
    _only_broken(result.output, project.contract_names(), broken=broken)
    for text in expected_texts:
        assert text in result.output, f"{text!r} missing from:\n{result.output}"
