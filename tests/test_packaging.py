"""Packaging proof: ``uv build --all-packages`` yields artifacts that install and import in isolation.

Each wheel goes into its own fresh virtual environment together with the wheels of the mlrig packages it needs
(never the workspace sources); third-party dependencies come from the package index, through the uv cache.
"""

from __future__ import annotations

import email.message
import email.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]
UV = shutil.which("uv") or "uv"

# Distribution -> the mlrig distributions it may depend on (its lower layers).
LOWER_LAYERS: dict[str, set[str]] = {
    "mlrig-paths": set(),
    "mlrig-naming": {"mlrig-paths"},
    "mlrig-storage": {"mlrig-paths"},
    "mlrig-tracking": {"mlrig-paths", "mlrig-naming", "mlrig-storage"},
    "mlrig-orchestration": {"mlrig-paths", "mlrig-naming", "mlrig-storage", "mlrig-tracking"},
}
# The mlrig namespace portions each wheel ships: its own package, and for orchestration the CLI above it.
PORTIONS: dict[str, set[str]] = {
    "mlrig-paths": {"paths"},
    "mlrig-naming": {"naming"},
    "mlrig-storage": {"storage"},
    "mlrig-tracking": {"tracking"},
    "mlrig-orchestration": {"orchestration", "cli"},
}
# Third-party distributions a package may pull in only from the given layers up.
HEAVY_DEPENDENCIES: dict[str, set[str]] = {
    "mlflow": {"mlrig-tracking", "mlrig-orchestration"},
    "mlflow-skinny": {"mlrig-tracking", "mlrig-orchestration"},
    "optuna": {"mlrig-orchestration"},
}


@dataclass(frozen=True)
class Artifacts:
    """The built wheels and sdists, keyed by distribution name."""

    out_dir: Path
    wheels: dict[str, Path]
    sdists: dict[str, Path]


def _distribution(filename: str) -> str:
    return filename.split("-")[0].replace("_", "-").lower()


def _run(command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 0, f"{' '.join(command)} failed:\n{completed.stdout}\n{completed.stderr}"
    return completed.stdout


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    out_dir = tmp_path_factory.mktemp("dist")
    _run([UV, "build", "--all-packages", "--out-dir", str(out_dir), "--quiet"], cwd=REPO_ROOT)
    wheels = {_distribution(path.name): path for path in out_dir.glob("*.whl")}
    sdists = {_distribution(path.name): path for path in out_dir.glob("*.tar.gz")}
    return Artifacts(out_dir, wheels, sdists)


def _wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        name = next(item for item in archive.namelist() if item.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode())


def _sdist_metadata(sdist: Path) -> email.message.Message:
    with tarfile.open(sdist) as archive:
        member = next(
            item
            for item in archive.getmembers()
            if item.name.count("/") == 1 and item.name.endswith("/PKG-INFO")
        )
        extracted = archive.extractfile(member)
        assert extracted is not None
        return email.parser.Parser().parsestr(extracted.read().decode())


def _requirements(metadata: email.message.Message) -> list[Requirement]:
    return [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]


def _mlrig_closure(distribution: str) -> set[str]:
    needed = {distribution}
    for lower in LOWER_LAYERS[distribution]:
        needed |= _mlrig_closure(lower)
    return needed


def test_build_yields_five_wheels_and_five_sdists(artifacts: Artifacts) -> None:
    files = sorted(path.name for path in artifacts.out_dir.iterdir() if path.suffix in {".whl", ".gz"})
    assert len(files) == 10, files
    assert set(artifacts.wheels) == set(LOWER_LAYERS)
    assert set(artifacts.sdists) == set(LOWER_LAYERS)


@pytest.mark.parametrize("distribution", sorted(LOWER_LAYERS))
def test_wheel_layout_is_a_namespace_portion(artifacts: Artifacts, distribution: str) -> None:
    with zipfile.ZipFile(artifacts.wheels[distribution]) as archive:
        names = archive.namelist()
    assert "mlrig/__init__.py" not in names
    for package in PORTIONS[distribution]:
        assert f"mlrig/{package}/__init__.py" in names
        assert f"mlrig/{package}/py.typed" in names
    # A wheel ships its own portions only.
    assert {name.split("/")[1] for name in names if name.startswith("mlrig/")} == PORTIONS[distribution]
    with tarfile.open(artifacts.sdists[distribution]) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md"} <= members
    assert {f"src/mlrig/{package}/__init__.py" for package in PORTIONS[distribution]} <= members
    assert "src/mlrig/__init__.py" not in members


@pytest.mark.parametrize("distribution", sorted(LOWER_LAYERS))
def test_metadata_pins_siblings_to_a_version_range(artifacts: Artifacts, distribution: str) -> None:
    wheel_metadata = _wheel_metadata(artifacts.wheels[distribution])
    sdist_metadata = _sdist_metadata(artifacts.sdists[distribution])
    versions = {name: Version(_wheel_metadata(path)["Version"]) for name, path in artifacts.wheels.items()}
    for metadata in (wheel_metadata, sdist_metadata):
        assert metadata["Name"] == distribution
        assert metadata["Requires-Python"] == ">=3.11"
        raw = metadata.get_all("Requires-Dist") or []
        for line in raw:
            # Workspace sources must not leak into published metadata.
            assert not re.search(r"file:|@\s*\S*/|\.\./|packages/", line), line
        requirements = _requirements(metadata)
        siblings = {req.name: req for req in requirements if req.name.startswith("mlrig-")}
        assert set(siblings) == LOWER_LAYERS[distribution], raw
        for name, requirement in siblings.items():
            assert requirement.url is None, requirement
            assert requirement.specifier.contains(versions[name]), f"{requirement} excludes the built {name}"
            assert any(spec.operator in {">=", "~=", "=="} for spec in requirement.specifier), requirement
            assert any(spec.operator in {"<", "~="} for spec in requirement.specifier), (
                f"{requirement} has no upper bound"
            )
        for heavy, allowed in HEAVY_DEPENDENCIES.items():
            if distribution not in allowed:
                assert heavy not in {req.name for req in requirements}, f"{distribution} requires {heavy}"


def _isolated_environment(artifacts: Artifacts, distribution: str, where: Path) -> Path:
    """A fresh venv with the wheel of ``distribution``, of the mlrig packages it needs, and their deps."""
    venv = where / f"venv-{distribution}"
    _run([UV, "venv", "--quiet", "--python", sys.executable, str(venv)], cwd=where)
    python = venv / "bin" / "python"
    wheels = [str(artifacts.wheels[name]) for name in sorted(_mlrig_closure(distribution))]
    _run([UV, "pip", "install", "--quiet", "--python", str(python), *wheels], cwd=where)
    return python


IMPORT_PROBE = """
import importlib, importlib.metadata, importlib.util, json, sys
module = importlib.import_module(sys.argv[1])
print(json.dumps({
    "file": module.__file__,
    "all": sorted(getattr(module, "__all__", [])),
    "distributions": sorted({dist.metadata["Name"].lower() for dist in importlib.metadata.distributions()}),
    "mlflow": importlib.util.find_spec("mlflow") is not None,
    "optuna": importlib.util.find_spec("optuna") is not None,
}))
"""


@pytest.mark.parametrize("distribution", sorted(LOWER_LAYERS))
def test_each_wheel_imports_in_its_own_environment(
    artifacts: Artifacts, distribution: str, tmp_path: Path
) -> None:
    python = _isolated_environment(artifacts, distribution, tmp_path)
    env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    module = "mlrig." + distribution.removeprefix("mlrig-")
    probe = json.loads(_run([str(python), "-c", IMPORT_PROBE, module], cwd=tmp_path, env=env))

    # Imported from the venv's site-packages, never from the workspace.
    assert Path(probe["file"]).is_relative_to(python.parent.parent), probe["file"]
    installed_mlrig = {name for name in probe["distributions"] if name.startswith("mlrig-")}
    assert installed_mlrig == _mlrig_closure(distribution)
    for heavy, allowed in HEAVY_DEPENDENCIES.items():
        if distribution not in allowed:
            assert heavy not in probe["distributions"], f"installing {distribution} brought in {heavy}"
    if distribution not in HEAVY_DEPENDENCIES["mlflow"]:
        assert probe["mlflow"] is False
    if distribution not in HEAVY_DEPENDENCIES["optuna"]:
        assert probe["optuna"] is False
    if "cli" in PORTIONS[distribution]:
        # The console script of the installed wheel (mlrig = "mlrig.cli:main").
        help_text = _run([str(python.parent / "mlrig"), "--help"], cwd=tmp_path, env=env)
        assert "demo" in help_text and "doctor" in help_text, help_text


@pytest.mark.parametrize("distribution", sorted(LOWER_LAYERS))
def test_license_classifiers_urls_and_keywords_ship(artifacts: Artifacts, distribution: str) -> None:
    license_text = (REPO_ROOT / "LICENSE").read_text()
    package_dir = REPO_ROOT / "packages" / distribution.removeprefix("mlrig-")
    assert (package_dir / "LICENSE").read_text() == license_text  # the copy each build ships is the repo's
    with zipfile.ZipFile(artifacts.wheels[distribution]) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE"))
        assert archive.read(name).decode() == license_text
    with tarfile.open(artifacts.sdists[distribution]) as archive:
        assert any(member.endswith("/LICENSE") and member.count("/") == 1 for member in archive.getnames())
    for metadata in (
        _wheel_metadata(artifacts.wheels[distribution]),
        _sdist_metadata(artifacts.sdists[distribution]),
    ):
        assert metadata["License-Expression"] == "MIT"
        classifiers = metadata.get_all("Classifier") or []
        assert "Programming Language :: Python :: 3.11" in classifiers and "Typing :: Typed" in classifiers
        urls = dict(line.split(", ", 1) for line in metadata.get_all("Project-URL") or [])
        assert {"Homepage", "Repository", "Issues"} <= set(urls)
        assert "mlops" in (metadata["Keywords"] or "")
    if distribution == "mlrig-orchestration":  # the MLflow UI the demo's hint runs
        wheel = _wheel_metadata(artifacts.wheels[distribution])
        assert "ui" in (wheel.get_all("Provides-Extra") or [])
        assert any(r.name == "mlflow" and r.marker is not None for r in _requirements(wheel))
