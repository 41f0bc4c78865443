"""The custom contract types, checked in-process against fixture projects built on disk."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from importlinter.domain.contract import Contract, ContractCheck, InvalidContractOptions

from tests.contracts.conftest import LAZY_INIT
from tests.contracts.mlrig_contracts import (
    NoCrossPackageReexportsContract,
    NoDuplicateDefinitionsContract,
    NoFacadesContract,
)

ROOTS = ["fx.paths", "fx.naming", "fx.storage", "fx.tracking", "fx.orchestration"]

# A function with enough statements to be compared (five), and a renamed copy of it: other identifiers,
# strings, numbers and docstring, same structure.
ORIGINAL_FUNCTION = '''
def summarise_metrics(history, prefix="val"):
    """Summarise a metric history."""
    best = None
    for step, value in enumerate(history):
        if best is None or value > best[1]:
            best = (step, value)
    total = sum(history)
    return {f"{prefix}_best": best, f"{prefix}_mean": total / max(len(history), 1)}
'''
RENAMED_COPY = '''
def describe_scores(scores, label="test"):
    """Copied and renamed."""
    top = None
    for index, score in enumerate(scores):
        if top is None or score > top[1]:
            top = (index, score)
    overall = sum(scores)
    return {f"best-{label}": top, f"mean-{label}": overall / max(len(scores), 2)}
'''


def _check(project, contract_class: type[Contract], **options: Any) -> ContractCheck:
    contract = contract_class(
        name="under test", session_options={"root_packages": ROOTS}, contract_options=options
    )
    return contract.check(project.graph(), verbose=False)


def _violations(check: ContractCheck) -> list[str]:
    violations: list[str] = check.metadata["violations"]
    assert check.kept == (not violations)
    return violations


@pytest.mark.parametrize(
    "contract_class", [NoFacadesContract, NoCrossPackageReexportsContract, NoDuplicateDefinitionsContract]
)
def test_clean_fixture_keeps_contract(project, contract_class: type[Contract]) -> None:
    check = _check(project, contract_class)
    assert check.kept, check.metadata
    assert check.warnings == []


# --- no facades -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "source", "mentions"),
    [
        (
            "fx/orchestration/backup.py",
            "import warnings\nfrom fx.storage import BackupStore\n\n"
            "warnings.warn('moved', DeprecationWarning)\n",
            ["BackupStore (from fx.storage)", "warnings (from warnings)"],
        ),
        ("fx/paths/compat.py", "from fx.paths.core import *\n", ["fx.paths.core.*"]),
        (
            "fx/paths/aliases.py",
            "from fx.paths import core as _core\n\nfreeze = _core.freeze\n"
            "render = _core.render_output_path\n",
            ["freeze (from fx.paths.core)", "render (from fx.paths.core, as render_output_path)"],
        ),
        (
            "fx/tracking/lazy.py",
            "import importlib\n\n__all__ = ['start_run']\n\n\n"
            "def __getattr__(name):\n    return getattr(importlib.import_module('fx.tracking.runs'), name)\n",
            ["start_run (from module __getattr__)"],
        ),
        (
            "fx/naming/legacy.py",
            "try:\n    from fx.naming.keys import build_study_key\nexcept ImportError:\n    raise\n"
            "__all__ = ('build_study_key',)\n",
            ["build_study_key (from fx.naming.keys)"],
        ),
        (
            "fx/orchestration/compat.py",
            "from ..paths import freeze\nfrom .sweep import run_sweep as sweep\n",
            ["freeze (from fx.paths)", "sweep (from fx.orchestration.sweep, as run_sweep)"],
        ),
    ],
    ids=["imports-only", "star-import", "attribute-aliases", "lazy-getattr", "inside-try", "relative"],
)
def test_facade_module_breaks(project, relative: str, source: str, mentions: list[str]) -> None:
    project.write(relative, source)
    violations = _violations(_check(project, NoFacadesContract))
    module = relative.removesuffix(".py").replace("/", ".")
    assert len(violations) == 1, violations
    assert violations[0].startswith(f"{module} is a facade module")
    for mention in mentions:
        assert mention in violations[0]


@pytest.mark.parametrize(
    ("relative", "source"),
    [
        # Imports plus a definition of its own: a real module, not a shim.
        (
            "fx/paths/extra.py",
            "from fx.paths.core import freeze\n\n\ndef freeze_all(items):\n    return freeze(items)\n",
        ),
        # A fallback assignment makes the name local.
        (
            "fx/paths/compat.py",
            "try:\n    from tomllib import loads\nexcept ImportError:\n    loads = None\n",
        ),
        # An annotated alias is a declaration of the module's own.
        (
            "fx/paths/types.py",
            "from typing import Any, TypeAlias\n\nJSON: TypeAlias = Any\n__all__ = ['JSON']\n",
        ),
        # Only private names.
        ("fx/paths/_private.py", "from fx.paths.core import freeze as _freeze\n"),
        # A script entry point calls what it imports.
        (
            "fx/orchestration/__main__.py",
            "from fx.orchestration.sweep import run_sweep\n\nrun_sweep({}, 'm', '/tmp')\n",
        ),
    ],
    ids=["own-definition", "fallback", "annotated-alias", "private-only", "dunder-main"],
)
def test_module_that_is_not_a_facade_keeps_contract(project, relative: str, source: str) -> None:
    project.write(relative, source)
    check = _check(project, NoFacadesContract)
    assert check.kept, check.metadata


def test_package_init_reexporting_external_library_breaks(project) -> None:
    project.write(
        "fx/tracking/__init__.py",
        "from fakemlflow import log_metric\nfrom fx.tracking.runs import RunHandle, start_run\n\n"
        "__all__ = ['RunHandle', 'log_metric', 'start_run']\n",
    )
    violations = _violations(_check(project, NoFacadesContract))
    assert len(violations) == 1, violations
    assert "fx.tracking (package __init__" in violations[0]
    assert "re-exports log_metric from fakemlflow.log_metric" in violations[0]


@pytest.mark.parametrize(
    "init_source",
    [
        "from fx.tracking.runs import RunHandle, start_run\n\n__all__ = ['RunHandle', 'start_run']\n",
        "from fx.tracking.runs import RunHandle, start_run\n",
    ],
    ids=["with-all", "without-all"],
)
def test_subpackage_init_reexporting_parent_modules_breaks(project, init_source: str) -> None:
    # The seeds' tracking/mlflow/ shims: a sub-package that only forwards its parent package's modules.
    project.write("fx/tracking/mlflow/__init__.py", init_source)
    violations = _violations(_check(project, NoFacadesContract))
    assert len(violations) == 2, violations
    assert all(violation.startswith("fx.tracking.mlflow (package __init__") for violation in violations)
    assert "re-exports RunHandle from fx.tracking.runs.RunHandle" in violations[0]
    assert "re-exports start_run from fx.tracking.runs.start_run" in violations[1]


def test_package_init_reexporting_own_nested_package_keeps_contract(project) -> None:
    project.write("fx/tracking/stores/__init__.py", "from fx.tracking.stores.sqlite import SqliteStore\n")
    project.write("fx/tracking/stores/sqlite.py", "class SqliteStore:\n    kind = 'sqlite'\n")
    project.write(
        "fx/tracking/__init__.py",
        "from fx.tracking.runs import RunHandle, start_run\nfrom fx.tracking.stores import SqliteStore\n\n"
        "__all__ = ['RunHandle', 'SqliteStore', 'start_run']\n",
    )
    check = _check(project, NoFacadesContract)
    assert check.kept, check.metadata


def test_namespace_portions_in_several_directories_are_all_read(project, monkeypatch) -> None:
    # Like mlrig: each portion of the namespace lives in its own distribution's src/ directory.
    second = project.root / "second-portion"
    (second / "fx").mkdir(parents=True)
    shutil.move(project.root / "fx" / "tracking", second / "fx" / "tracking")
    monkeypatch.syspath_prepend(str(second))
    (second / "fx" / "tracking" / "shim.py").write_text("from fx.naming import build_study_key\n")
    violations = _violations(_check(project, NoFacadesContract))
    assert len(violations) == 1, violations
    assert violations[0].startswith("fx.tracking.shim is a facade module")
    assert str(second / "fx" / "tracking" / "shim.py") in violations[0]


# --- a package's names listed in its __init__.pyi (the mlrig idiom, read by lazy_loader.attach_stub) ---


def test_stub_reexporting_another_packages_name_breaks(project) -> None:
    project.append("fx/tracking/__init__.pyi", "from fx.naming import build_study_key as build_study_key\n")
    violations = _violations(_check(project, NoCrossPackageReexportsContract))
    assert violations == [
        "fx.tracking exports 'build_study_key' (lists it in its __init__.pyi), but its home is "
        "fx.naming.keys in package fx.naming. Import it from fx.naming where it is needed instead of "
        "re-exporting it."
    ]
    # A stub is a list of re-exports of its own package's modules: naming another package is no facade.
    assert _check(project, NoFacadesContract).kept


def test_stub_reexporting_an_external_name_breaks(project) -> None:
    project.append("fx/tracking/__init__.pyi", "from fakemlflow import log_metric as log_metric\n")
    violations = _violations(_check(project, NoFacadesContract))
    assert len(violations) == 1, violations
    assert violations[0].startswith("fx.tracking (package __init__")
    assert "re-exports log_metric from fakemlflow.log_metric (listed in " in violations[0]
    assert str(project.root / "fx" / "tracking" / "__init__.pyi") in violations[0]


def test_stub_naming_a_name_its_module_does_not_define_breaks(project) -> None:
    project.append("fx/tracking/__init__.pyi", "from .runs import stop_run as stop_run\n")
    violations = _violations(_check(project, NoFacadesContract))
    assert len(violations) == 1, violations
    assert "fx.tracking (package __init__, " in violations[0]
    assert (
        "lists stop_run in its stub, but neither it nor the modules it imports define that name"
        in (violations[0])
    )


def test_stub_following_a_name_through_an_own_submodule_names_its_true_home(project) -> None:
    project.write(
        "fx/tracking/helpers.py",
        "from fx.naming import build_study_key\n\n\n"
        "def run_key(config):\n    return build_study_key(config, 'm')\n",
    )
    project.append("fx/tracking/__init__.pyi", "from .helpers import build_study_key as build_study_key\n")
    violations = _violations(_check(project, NoCrossPackageReexportsContract))
    assert len(violations) == 1, violations
    assert violations[0].startswith("fx.tracking exports 'build_study_key' (lists it in its __init__.pyi)")
    assert "its home is fx.naming.keys" in violations[0]


def test_subpackage_stub_reexporting_parent_modules_breaks(project) -> None:
    project.write("fx/tracking/mlflow/__init__.py", LAZY_INIT)
    project.write(
        "fx/tracking/mlflow/__init__.pyi",
        "from fx.tracking.runs import RunHandle as RunHandle\n"
        "from fx.tracking.runs import start_run as start_run\n",
    )
    violations = _violations(_check(project, NoFacadesContract))
    assert len(violations) == 2, violations
    assert all(violation.startswith("fx.tracking.mlflow (package __init__") for violation in violations)
    assert "re-exports RunHandle from fx.tracking.runs.RunHandle" in violations[0]
    assert "re-exports start_run from fx.tracking.runs.start_run" in violations[1]


def test_stub_listing_its_own_submodule_keeps_contract(project) -> None:
    project.append("fx/tracking/__init__.pyi", "from . import runs as runs\n")
    for contract_class in (NoFacadesContract, NoCrossPackageReexportsContract):
        check = _check(project, contract_class)
        assert check.kept, check.metadata


# --- __all__ built from the modules' own lists (an eager __init__) ---------------------------------

SPLICED_INIT = """
from fx.tracking import {modules}
{stars}

__all__ = [{spliced}]
"""


def _spliced_init(project, *modules: str) -> None:
    project.write(
        "fx/tracking/__init__.py",
        SPLICED_INIT.format(
            modules=", ".join(modules),
            stars="\n".join(f"from fx.tracking.{module} import *" for module in modules),
            spliced=", ".join(f"*{module}.__all__" for module in modules),
        ),
    )


@pytest.mark.parametrize(
    "contract_class", [NoFacadesContract, NoCrossPackageReexportsContract, NoDuplicateDefinitionsContract]
)
def test_package_joining_its_modules_all_keeps_contract(project, contract_class: type[Contract]) -> None:
    project.append("fx/tracking/runs.py", '__all__ = ["RunHandle", "start_run"]\n')
    _spliced_init(project, "runs")
    check = _check(project, contract_class)
    assert check.kept, check.metadata


def test_spliced_all_exporting_another_packages_name_breaks(project) -> None:
    project.append("fx/tracking/runs.py", '__all__ = ["RunHandle", "build_study_key", "start_run"]\n')
    _spliced_init(project, "runs")
    violations = _violations(_check(project, NoCrossPackageReexportsContract))
    assert (
        "fx.tracking exports 'build_study_key' (lists it in __all__), but its home is fx.naming.keys in "
        "package fx.naming. Import it from fx.naming where it is needed instead of re-exporting it."
    ) in violations
    assert len(violations) == 2, violations  # the package and fx.tracking.runs itself


def test_spliced_all_exporting_an_external_name_breaks(project) -> None:
    project.write(
        "fx/tracking/metrics.py",
        "from fakemlflow import log_metric\n\n__all__ = ['log_metric', 'track']\n\n\n"
        "def track(key):\n    return log_metric(key, 1)\n",
    )
    project.append("fx/tracking/runs.py", '__all__ = ["RunHandle", "start_run"]\n')
    _spliced_init(project, "metrics", "runs")
    violations = _violations(_check(project, NoFacadesContract))
    assert len(violations) == 1, violations
    assert violations[0].startswith("fx.tracking (package __init__")
    assert "re-exports log_metric from fakemlflow, which is outside its package" in violations[0]


def test_spliced_all_naming_an_undefined_name_breaks(project) -> None:
    project.append("fx/tracking/runs.py", '__all__ = ["RunHandle", "start_run", "stop_run"]\n')
    _spliced_init(project, "runs")
    violations = _violations(_check(project, NoFacadesContract))
    assert len(violations) == 1, violations
    assert "fx.tracking (package __init__" in violations[0]
    assert (
        "lists stop_run in __all__, but neither it nor the modules it imports define that name"
        in (violations[0])
    )


def test_all_spliced_from_an_unchecked_module_breaks(project) -> None:
    project.write(
        "fx/tracking/__init__.py",
        "import os\n\nfrom fx.tracking.runs import RunHandle, start_run\n\n"
        "__all__ = ['RunHandle', 'start_run', *os.__all__]\n",
    )
    violations = _violations(_check(project, NoFacadesContract))
    assert len(violations) == 1, violations
    assert violations[0].startswith("fx.tracking (")
    assert "builds __all__ from os.__all__, which is not a module of the checked packages" in violations[0]


# --- no cross-package re-exports -------------------------------------------------------------------


def test_reexport_through_own_submodule_names_true_home(project) -> None:
    project.write(
        "fx/tracking/helpers.py",
        "from fx.naming import build_study_key\n\n\n"
        "def run_key(config):\n    return build_study_key(config, 'm')\n",
    )
    project.write(
        "fx/tracking/__init__.py",
        "from fx.tracking.helpers import build_study_key, run_key\nfrom fx.tracking.runs import RunHandle\n\n"
        "__all__ = ['RunHandle', 'build_study_key', 'run_key']\n",
    )
    violations = _violations(_check(project, NoCrossPackageReexportsContract))
    assert violations == [
        "fx.tracking exports 'build_study_key' (lists it in __all__), but its home is fx.naming.keys in "
        "package fx.naming. Import it from fx.naming where it is needed instead of re-exporting it."
    ]


@pytest.mark.parametrize(
    ("relative", "source", "expected"),
    [
        (
            "fx/storage/backup2.py",
            "from fx.paths import freeze as freeze\n",
            "re-exports it with 'import ... as",
        ),
        (
            "fx/storage/compat.py",
            "from fx.paths import *\n",
            "fx.storage.compat re-exports every public name of",
        ),
        (
            "fx/naming/modules.py",
            "from fx import paths\n\n__all__ = ['paths']\n\n\ndef here():\n    return paths\n",
            "its home is fx.paths in package fx.paths",
        ),
    ],
    ids=["explicit-as", "star", "module-object"],
)
def test_cross_package_reexport_forms_break(project, relative: str, source: str, expected: str) -> None:
    project.write(relative, source)
    violations = _violations(_check(project, NoCrossPackageReexportsContract))
    module = relative.removesuffix(".py").replace("/", ".")
    assert len(violations) == 1, violations
    assert violations[0].startswith(module)
    assert expected in violations[0]


def test_packages_option_limits_the_checked_packages(project) -> None:
    project.write("fx/storage/compat.py", "from fx.paths import *\n")
    assert not _check(project, NoCrossPackageReexportsContract).kept
    check = _check(project, NoCrossPackageReexportsContract, packages=["fx.paths", "fx.naming"])
    assert check.kept, check.metadata


# --- no duplicate definitions ---------------------------------------------------------------------


def test_renamed_function_copy_breaks_and_names_both_locations(project) -> None:
    project.write("fx/tracking/metrics.py", "import math\n" + ORIGINAL_FUNCTION)
    project.write("fx/orchestration/scores.py", RENAMED_COPY)
    violations = _violations(_check(project, NoDuplicateDefinitionsContract))
    assert violations == [
        "duplicate function: fx.orchestration.scores:describe_scores:1 has the same normalised body as "
        "fx.tracking.metrics:summarise_metrics:3. Keep one definition in its home package and import it."
    ]


def test_identical_class_pair_is_reported_once_with_both_locations(project) -> None:
    tracker = '''
class {name}:
    """Tracks a sweep."""

    def __init__(self, experiment):
        self.experiment = experiment
        self.{runs} = []

    def log(self, key, value):
        self.{runs}.append((key, value))
        if len(self.{runs}) > 100:
            self.{runs}.pop(0)
        return len(self.{runs})
'''
    project.write("fx/tracking/trackers.py", tracker.format(name="MLflowSweepTracker", runs="runs"))
    project.write(
        "fx/orchestration/trackers.py", "import os\n\n" + tracker.format(name="SweepTracker", runs="_logged")
    )
    violations = _violations(_check(project, NoDuplicateDefinitionsContract))
    assert violations == [
        "duplicate class: fx.orchestration.trackers:SweepTracker:4 has the same normalised body as "
        "fx.tracking.trackers:MLflowSweepTracker:1. Keep one definition in its home package and import it."
    ]


def test_duplicate_method_in_different_classes_is_reported_by_qualname(project) -> None:
    method = "    def summarise(self, history):\n" + "".join(
        f"        {line}\n" for line in ORIGINAL_FUNCTION.strip().splitlines()[1:]
    ).replace("prefix", "self.prefix")
    project.write("fx/tracking/sweep.py", "class SweepSummary:\n    prefix = 'a'\n\n" + method)
    project.write("fx/storage/report.py", "class Report:\n    prefix = 'b'\n    size = 3\n\n" + method)
    violations = _violations(_check(project, NoDuplicateDefinitionsContract))
    assert len(violations) == 1, violations
    assert "fx.storage.report:Report.summarise:5" in violations[0]
    assert "fx.tracking.sweep:SweepSummary.summarise:4" in violations[0]


NESTED_IN_FUNCTION = 'def report(histories):\n    """Summaries of several histories."""\n{inner}\n' + (
    "    return [summarise_metrics(history) for history in histories]\n"
)
NESTED_IN_METHOD = (
    "class Report:\n    def lines(self, histories, verbose):\n        if verbose:\n{inner}\n"
    + ("            return [summarise_metrics(history) for history in histories]\n        return []\n")
)


@pytest.mark.parametrize(
    ("template", "indent", "qualname"),
    [
        (NESTED_IN_FUNCTION, 4, "report.<locals>.summarise_metrics:3"),
        (NESTED_IN_METHOD, 12, "Report.lines.<locals>.summarise_metrics:4"),
    ],
    ids=["in-function", "in-method-under-if"],
)
def test_top_level_copy_of_a_nested_function_breaks(
    project, template: str, indent: int, qualname: str
) -> None:
    inner = "\n".join(" " * indent + line if line else "" for line in ORIGINAL_FUNCTION.strip().splitlines())
    project.write("fx/tracking/metrics.py", template.format(inner=inner))
    project.write("fx/orchestration/scores.py", RENAMED_COPY)
    violations = _violations(_check(project, NoDuplicateDefinitionsContract))
    assert violations == [
        "duplicate function: fx.orchestration.scores:describe_scores:1 has the same normalised body as "
        f"fx.tracking.metrics:{qualname}. Keep one definition in its home package and import it."
    ]


def test_nested_copy_inside_a_reported_copy_is_not_reported_again(project) -> None:
    inner = "\n".join("    " + line if line else "" for line in ORIGINAL_FUNCTION.strip().splitlines())
    outer = NESTED_IN_FUNCTION.format(inner=inner)
    project.write("fx/tracking/metrics.py", outer)
    project.write("fx/orchestration/scores.py", "import os\n\n" + outer)
    violations = _violations(_check(project, NoDuplicateDefinitionsContract))
    assert len(violations) == 1, violations
    assert violations[0].startswith("duplicate function: fx.orchestration.scores:report:3 has")


def test_copies_within_one_module_are_left_alone(project) -> None:
    project.write("fx/tracking/metrics.py", ORIGINAL_FUNCTION + "\n" + RENAMED_COPY)
    check = _check(project, NoDuplicateDefinitionsContract)
    assert check.kept, check.metadata


def test_three_copies_are_one_violation(project) -> None:
    for module in ("fx/paths/a.py", "fx/naming/b.py", "fx/storage/c.py"):
        project.write(module, ORIGINAL_FUNCTION)
    violations = _violations(_check(project, NoDuplicateDefinitionsContract))
    assert len(violations) == 1, violations
    for location in (
        "fx.naming.b:summarise_metrics:1",
        "fx.paths.a:summarise_metrics:1",
        "fx.storage.c:summarise_metrics:1",
    ):
        assert location in violations[0]


@pytest.mark.parametrize(
    "changed",
    [
        RENAMED_COPY.replace("score > top[1]", "score < top[1]"),
        RENAMED_COPY.replace(
            "    overall = sum(scores)\n", "    overall = sum(scores)\n    overall -= top[1]\n"
        ),
        RENAMED_COPY.replace("overall / max(len(scores), 2)", "max(len(scores), 2) / overall"),
    ],
    ids=["operator", "extra-statement", "swapped-operands"],
)
def test_changed_logic_is_not_a_duplicate(project, changed: str) -> None:
    project.write("fx/tracking/metrics.py", ORIGINAL_FUNCTION)
    project.write("fx/orchestration/scores.py", changed)
    check = _check(project, NoDuplicateDefinitionsContract)
    assert check.kept, check.metadata


def test_same_shape_using_different_globals_is_not_a_duplicate(project) -> None:
    loader = (
        "import json\nimport pathlib\n\n\ndef {name}(path):\n    file = pathlib.Path(path)\n"
        "    if not file.exists():\n        return None\n    text = file.read_text()\n"
        "    data = {module}.{function}(text)\n    return dict(data)\n"
    )
    project.write("fx/paths/load_json.py", loader.format(name="load_json", module="json", function="loads"))
    project.write(
        "fx/naming/load_yaml.py", loader.format(name="load_yaml", module="yaml", function="safe_load")
    )
    check = _check(project, NoDuplicateDefinitionsContract)
    assert check.kept, check.metadata
    # The same loader copied under another name is one.
    project.write("fx/storage/load.py", loader.format(name="read_config", module="json", function="loads"))
    violations = _violations(_check(project, NoDuplicateDefinitionsContract))
    assert len(violations) == 1, violations
    assert "fx.paths.load_json:load_json:5" in violations[0]
    assert "fx.storage.load:read_config:5" in violations[0]


def test_value_classes_with_the_same_field_types_are_not_duplicates(project) -> None:
    value_class = "from dataclasses import dataclass\n\n\n@dataclass(frozen=True)\nclass {name}:\n" + "".join(
        f"    {{field{index}}}: str\n" for index in range(8)
    )
    project.write(
        "fx/paths/spec.py", value_class.format(name="OutputSpec", **{f"field{i}": f"a{i}" for i in range(8)})
    )
    project.write(
        "fx/naming/spec.py", value_class.format(name="NameSpec", **{f"field{i}": f"b{i}" for i in range(8)})
    )
    check = _check(project, NoDuplicateDefinitionsContract)
    assert check.kept, check.metadata


def test_small_copies_are_ignored_below_the_configured_size(project) -> None:
    small = "def {name}(values):\n    total = sum(values)\n    return total / len(values)\n"
    project.write("fx/paths/stats.py", small.format(name="mean"))
    project.write("fx/naming/stats.py", small.format(name="average"))
    assert _check(project, NoDuplicateDefinitionsContract).kept
    violations = _violations(_check(project, NoDuplicateDefinitionsContract, min_statements="2"))
    assert len(violations) == 1
    assert "fx.naming.stats:average:1" in violations[0]
    assert "fx.paths.stats:mean:1" in violations[0]


def test_ignore_option_skips_listed_definitions(project) -> None:
    project.write("fx/tracking/metrics.py", ORIGINAL_FUNCTION)
    project.write("fx/orchestration/scores.py", RENAMED_COPY)
    check = _check(
        project, NoDuplicateDefinitionsContract, ignore=["fx.orchestration.scores:describe_scores"]
    )
    assert check.kept, check.metadata


def test_unknown_option_is_rejected() -> None:
    with pytest.raises(InvalidContractOptions) as raised:
        NoDuplicateDefinitionsContract(
            name="typo", session_options={"root_packages": ROOTS}, contract_options={"min_statement": "3"}
        )
    assert "min_statement" in raised.value.errors


def test_broken_contract_renders_each_violation(project, capsys: pytest.CaptureFixture[str]) -> None:
    project.write("fx/tracking/metrics.py", ORIGINAL_FUNCTION)
    project.write("fx/orchestration/scores.py", RENAMED_COPY)
    contract = NoDuplicateDefinitionsContract(
        name="under test", session_options={"root_packages": ROOTS}, contract_options={}
    )
    check = contract.check(project.graph(), verbose=False)
    contract.render_broken_contract(check)
    rendered = " ".join(capsys.readouterr().out.split())
    assert "fx.orchestration.scores:describe_scores:1" in rendered
    assert "fx.tracking.metrics:summarise_metrics:1" in rendered
