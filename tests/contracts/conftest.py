"""Fixture projects on disk for the import-linter contract tests.

A fixture project mirrors mlrig: a PEP 420 namespace ``fx`` (no ``fx/__init__.py``) with the portions
``fx.paths``, ``fx.naming``, ``fx.storage``, ``fx.tracking``, ``fx.orchestration``, ``fx.cli`` (built like the
mlrig packages: an ``__init__.pyi`` stub lists the public names, read by ``lazy_loader.attach_stub`` in the
``__init__.py``) and two fake external libraries
``fakemlflow`` and ``fakeoptuna``. Its ``.importlinter`` is the repository's own config with
``mlrig.`` renamed to ``fx.`` and ``mlflow``/``optuna`` to the fakes, so tests exercise the real contracts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grimp
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
REPO_CONFIG = REPO_ROOT / ".importlinter"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("paths", "naming", "storage", "tracking", "orchestration")
ROOTS = tuple(f"fx.{package}" for package in PACKAGES)
# Root package -> the distribution (``packages/<name>``) that ships it: mlrig.cli comes with orchestration.
PORTIONS = {**{package: package for package in PACKAGES}, "cli": "orchestration"}

# Every fixture package's __init__.py, as in mlrig: the names come from the stub beside it.
LAZY_INIT = """
    import lazy_loader as lazy

    __getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
"""

# A clean project: each package defines its own code and imports only downwards, through public __init__s.
CLEAN_FILES: dict[str, str] = {
    "fakemlflow/__init__.py": """
        def log_metric(key, value):
            return (key, value)
    """,
    "fakeoptuna/__init__.py": """
        def create_study(name):
            return {"name": name}
    """,
    "fx/paths/__init__.py": LAZY_INIT,
    "fx/paths/__init__.pyi": """
        from .core import PathsError as PathsError
        from .core import freeze as freeze
        from .core import render_output_path as render_output_path
    """,
    "fx/paths/core.py": '''
        from pathlib import Path


        class PathsError(ValueError):
            """Bad path."""


        def freeze(value):
            """Deep-immutable copy."""
            if isinstance(value, dict):
                return tuple(sorted((key, freeze(item)) for key, item in value.items()))
            if isinstance(value, list):
                return tuple(freeze(item) for item in value)
            return value


        def render_output_path(root, process_type, tokens):
            """Render the output path for a process type."""
            if not process_type:
                raise PathsError(f"empty process type for {root}")
            parts = [process_type]
            for key in sorted(tokens):
                parts.append(f"{key}={tokens[key]}")
            return Path(root).joinpath(*parts)
    ''',
    "fx/naming/__init__.py": LAZY_INIT,
    "fx/naming/__init__.pyi": """
        from .keys import build_study_key as build_study_key
    """,
    "fx/naming/keys.py": '''
        import hashlib

        from fx.paths import freeze


        def build_study_key(config, model):
            """Stable key of a study."""
            frozen = freeze(config)
            text = repr((frozen, model))
            digest = hashlib.sha256(text.encode()).hexdigest()
            return digest[:16]
    ''',
    "fx/storage/__init__.py": LAZY_INIT,
    "fx/storage/__init__.pyi": """
        from .backup import BackupStore as BackupStore
    """,
    "fx/storage/backup.py": '''
        import shutil

        from fx.paths import render_output_path


        class BackupStore:
            """Copies outputs to a backup root."""

            def __init__(self, root, backup_root):
                self.root = root
                self.backup_root = backup_root

            def backup(self, process_type, tokens):
                source = render_output_path(self.root, process_type, tokens)
                target = render_output_path(self.backup_root, process_type, tokens)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
                return target
    ''',
    "fx/tracking/__init__.py": LAZY_INIT,
    "fx/tracking/__init__.pyi": """
        from .runs import RunHandle as RunHandle
        from .runs import start_run as start_run
    """,
    "fx/tracking/runs.py": '''
        from dataclasses import dataclass

        import fakemlflow

        from fx.naming import build_study_key


        @dataclass(frozen=True)
        class RunHandle:
            """A started run."""

            run_id: str
            experiment_id: str
            run_name: str

            def describe(self):
                text = f"{self.run_name} ({self.run_id})"
                if self.experiment_id:
                    text += f" in {self.experiment_id}"
                width = len(text)
                border = "-" * width
                return "\\n".join([border, text, border])


        def start_run(config, model):
            key = build_study_key(config, model)
            fakemlflow.log_metric("started", 1)
            return RunHandle(run_id=key, experiment_id="0", run_name=model)
    ''',
    "fx/orchestration/__init__.py": LAZY_INIT,
    "fx/orchestration/__init__.pyi": """
        from .sweep import run_sweep as run_sweep
    """,
    "fx/cli/__init__.py": LAZY_INIT,
    "fx/cli/__init__.pyi": """
        from .commands import main as main
    """,
    "fx/cli/commands.py": '''
        def main(argv):
            """The command line: imports the layer below only when a command runs."""
            from fx.orchestration import run_sweep

            return run_sweep(argv[0], argv[1], argv[2])
    ''',
    "fx/orchestration/sweep.py": '''
        import fakeoptuna

        from fx.storage import BackupStore
        from fx.tracking import start_run


        def run_sweep(config, model, root):
            """Run a sweep and back it up."""
            study = fakeoptuna.create_study(model)
            handle = start_run(config, model)
            store = BackupStore(root, root + "-backup")
            return study, handle, store
    ''',
}


def fixture_config_text() -> str:
    """The repository's ``.importlinter`` translated to the fixture's package names."""
    text = REPO_CONFIG.read_text(encoding="utf-8")
    text = re.sub(r"\bmlrig\.", "fx.", text)
    return re.sub(r"^([ \t]+)(mlflow|optuna)[ \t]*$", r"\1fake\2", text, flags=re.MULTILINE)


@dataclass(frozen=True)
class LintResult:
    """Exit code and plain-text output of one ``lint-imports`` run."""

    returncode: int
    output: str

    def status(self, contract_name: str) -> str:
        """``KEPT`` or ``BROKEN`` for the named contract, from the summary lines."""
        match = re.search(rf"^{re.escape(contract_name)} (KEPT|BROKEN)\s*$", self.output, flags=re.MULTILINE)
        assert match is not None, f"no status line for {contract_name!r} in:\n{self.output}"
        return match.group(1)


def run_lint_imports(cwd: Path, config: Path | None = None, extra_paths: Sequence[Path] = ()) -> LintResult:
    """Run the real ``lint-imports`` console script in ``cwd`` (which it puts on ``sys.path``).

    ``extra_paths`` go first on ``PYTHONPATH``, ahead of the workspace's editable installs.
    """
    env = dict(os.environ)
    # The contract types are imported as tests.contracts.mlrig_contracts, from the repository root.
    paths = [*map(str, extra_paths), str(REPO_ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    env.update({"COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"})
    command = [str(LINT_IMPORTS), "--no-cache"]
    if config is not None:
        command += ["--config", str(config)]
    completed = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    return LintResult(completed.returncode, completed.stdout + completed.stderr)


class LintedProject:
    """A directory with an ``.importlinter`` config that ``lint-imports`` runs in."""

    def __init__(self, root: Path, config: Path, extra_paths: Sequence[Path] = ()) -> None:
        self.root = root
        self.config = config
        self.extra_paths = list(extra_paths)

    def lint(self) -> LintResult:
        """``lint-imports`` over the project, in a subprocess."""
        return run_lint_imports(self.root, self.config, self.extra_paths)

    def contract_names(self) -> list[str]:
        """The ``name`` of every contract section of the config."""
        text = self.config.read_text(encoding="utf-8")
        sections = re.split(r"^\[importlinter:contract:[^\]]+\]\s*$", text, flags=re.MULTILINE)[1:]
        names = []
        for section in sections:
            match = re.search(r"^name\s*=\s*(.+)$", section, flags=re.MULTILINE)
            assert match is not None, section
            names.append(match.group(1).strip())
        return names


class RepoCopy(LintedProject):
    """A copy of the repository's ``mlrig`` portions and ``.importlinter``, to break on purpose.

    Each portion keeps its own ``src``-like directory; they go on ``PYTHONPATH`` ahead of the editable
    installs, so ``mlrig.<pkg>`` resolves to the copy.
    """

    def __init__(self, root: Path) -> None:
        portions = []
        for package, distribution in PORTIONS.items():
            source = REPO_ROOT / "packages" / distribution / "src" / "mlrig" / package
            target = root / f"{package}-src" / "mlrig" / package
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
            portions.append(target.parent.parent)
        config = root / ".importlinter"
        shutil.copyfile(REPO_CONFIG, config)
        super().__init__(root, config, portions)

    def package_dir(self, package: str) -> Path:
        """The copied ``mlrig/<package>`` directory."""
        return self.root / f"{package}-src" / "mlrig" / package


class FixtureProject(LintedProject):
    """A fixture project in a temporary directory."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, root / ".importlinter")
        self.config.write_text(fixture_config_text(), encoding="utf-8")
        for relative, text in CLEAN_FILES.items():
            self.write(relative, text)

    def write(self, relative: str, text: str) -> Path:
        """Write a (dedented) source file; parent packages must already exist or be namespace dirs."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def append(self, relative: str, text: str) -> None:
        """Append (dedented) source to an existing file."""
        path = self.root / relative
        path.write_text(
            path.read_text(encoding="utf-8") + "\n" + textwrap.dedent(text).lstrip("\n"), encoding="utf-8"
        )

    def graph(self) -> grimp.ImportGraph:
        """A fresh grimp graph of the project (the project dir must be on ``sys.path``)."""
        return grimp.build_graph(*ROOTS, include_external_packages=True, cache_dir=None)


def _forget_fixture_modules() -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in {"fx", "fakemlflow", "fakeoptuna"}:
            del sys.modules[name]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FixtureProject]:
    """A clean fixture project, importable in this process for in-process contract checks."""
    _forget_fixture_modules()
    monkeypatch.syspath_prepend(str(tmp_path))
    yield FixtureProject(tmp_path)
    _forget_fixture_modules()


@pytest.fixture
def repo() -> LintedProject:
    """The repository itself, with its real ``.importlinter``."""
    return LintedProject(REPO_ROOT, REPO_CONFIG)


@pytest.fixture
def repo_copy(tmp_path: Path) -> RepoCopy:
    """A throw-away copy of the repository's packages and contracts."""
    return RepoCopy(tmp_path)
