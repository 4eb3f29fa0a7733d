"""The package outside its checkout: declared dependencies that match what the library imports, and
a built wheel that installs and predicts from a folder elsewhere."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml
from packaging.requirements import Requirement

from hybridwing.imports import PACKAGE_ROOT, distributions_of, module_imports, package_closure, third_party
from hybridwing.score.export import normalised

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
#: Imported only when present, by a module that works without them, and not installed here.
OPTIONAL = {"umap": "umap-learn"}
#: Declared dependencies that the library uses through another package, never by import.
USED_THROUGH = {"timm": "open_clip builds the timm towers", "pyarrow": "pandas reads and writes parquet"}


def names(requirements: list[str]) -> set[str]:
    return {normalised(Requirement(line).name) for line in requirements}


def library_imports() -> set[str]:
    return third_party(set().union(*(module_imports(path) for path in PACKAGE_ROOT.rglob("*.py"))))


def test_the_declared_dependencies_provide_every_import_and_nothing_unused():
    declared = names(PROJECT["dependencies"])
    extras = set().union(*(names(group) for group in PROJECT["optional-dependencies"].values()))
    imports = library_imports()
    providers = distributions_of(imports)
    missing = {
        module: found or [OPTIONAL.get(module, "not installed")]
        for module, found in providers.items()
        if not {normalised(name) for name in found or [OPTIONAL.get(module, "")]} & (declared | extras)
    }
    assert not missing, f"imported but not declared (module: distributions): {missing}"
    provided = {normalised(name) for found in providers.values() for name in found}
    unused = declared - provided - {normalised(name) for name in USED_THROUGH}
    assert not unused, f"declared but imported nowhere in src/hybridwing: {sorted(unused)}"
    assert all(Requirement(line).specifier for line in PROJECT["dependencies"]), "ranges, not bare names"


def test_the_wheel_works_outside_the_checkout(tiny_run, heliconius, tmp_path):
    """Built, installed without -e into a fresh environment (the pinned packages reused from this
    one), and run from a folder outside the checkout: --help, check-table and predict."""
    source = tmp_path / "source"  # built from a copy: setuptools writes build/ beside the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path, source],
        check=True,
        cwd=tmp_path,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("hybridwing-*.whl")
    environment = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", environment], check=True, timeout=120)
    site = Path(
        subprocess.run(
            [environment / "bin/python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # This environment's packages, read after the new one's own (a path line: the editable install
    # of hybridwing here is a .pth hook, which such a line does not run).
    (site / "pinned.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", environment / "bin/python", "install", "-q", "--no-deps", wheel],
        check=True,
        timeout=300,
    )
    command = environment / "bin/hybridwing"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([command, *args], capture_output=True, text=True, timeout=300, cwd=tmp_path)

    where = subprocess.run(
        [environment / "bin/python", "-c", "import hybridwing; print(hybridwing.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr
    assert run("--help").returncode == 0
    checked = run("check-table", str(heliconius / "dev.csv"))
    assert checked.returncode == 0, checked.stderr
    photographs = [str(path) for path in sorted((heliconius / "images").glob("*.jpg"))[:4]]
    model = str(tiny_run / "results/finetune/model")
    installed = run("predict", model, *photographs)
    assert installed.returncode == 0, installed.stderr[-3000:]
    checkout = subprocess.run(
        [sys.executable, "-m", "hybridwing.cli", "predict", model, *photographs], capture_output=True, text=True
    )
    assert checkout.returncode == 0, checkout.stderr[-3000:]
    ours, theirs = pd.read_csv(io.StringIO(installed.stdout)), pd.read_csv(io.StringIO(checkout.stdout))
    assert list(ours["path"]) == photographs and "hybrid_score" in ours
    pd.testing.assert_frame_equal(ours, theirs, check_exact=False, atol=1e-6)
    assert metadata.version("hybridwing") == PROJECT["version"]


#: Tools for developing and testing the project, which no job needs.
TEST_TOOLS = {"pytest", "pytest-xdist", "ruff", "playwright"}


def rule_environments() -> dict[str, tuple[Path | None, str | None]]:
    """Each rule's script and conda environment file as the rule files declare them."""
    rules: dict[str, tuple[Path | None, str | None]] = {}
    for path in sorted((REPO / "workflow/rules").glob("*.smk")):
        for block in re.split(r"\n(?=(?:rule|checkpoint|use rule) )", path.read_text()):
            own = re.match(r"(?:rule|checkpoint) (\w+):", block)
            if own:
                script = re.search(r'\n    script:\s*\n\s+"([^"]+)"', block)
                conda = re.search(r'\n    conda:\s*\n\s+"([^"]+)"', block)
                rules[own.group(1)] = (
                    (path.parent / script.group(1)).resolve() if script else None,
                    (path.parent / conda.group(1)).resolve().name if conda else None,
                )
    return rules


def environment_packages(name: str) -> dict[str, str]:
    """The pinned pip packages of envs/NAME (normalised name -> version)."""
    spec = yaml.safe_load((REPO / "envs" / name).read_text())
    (pip,) = [entry["pip"] for entry in spec["dependencies"] if isinstance(entry, dict)]
    pins = {}
    for line in pip:
        requirement = Requirement(line)
        assert str(requirement.specifier).startswith("=="), f"{name}: {line} is not pinned"
        pins[normalised(requirement.name)] = str(requirement.specifier)[2:]
    return pins


def test_each_environment_provides_what_its_rules_import_and_no_test_tool():
    lock = {
        normalised(line.split("==")[0]): line.split("==")[1].strip()
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    rules = rule_environments()
    assert len(rules) > 20 and all(conda for _, conda in rules.values()), "every rule names its environment"
    for name in sorted({conda for _, conda in rules.values()}):
        text = (REPO / "envs" / name).read_text()
        assert "-r " not in text and "-c " not in text and "-e " not in text and "../" not in text, name
        pins = environment_packages(name)
        assert not TEST_TOOLS & set(pins), f"{name} carries test tools: {sorted(TEST_TOOLS & set(pins))}"
        assert {package: lock[package] for package in pins} == pins, f"{name} differs from constraints.txt"
        for rule, (script, conda) in rules.items():
            if conda != name or script is None:
                continue
            modules = module_imports(script)
            for module in [m for m in modules if m.startswith("hybridwing")]:
                modules |= set().union(*(module_imports(path) for path in package_closure(module)))
            needed = {
                module: found
                for module, found in distributions_of(third_party(modules) - set(OPTIONAL)).items()
                if not {normalised(d) for d in found} & set(pins)
            }
            assert not needed, f"rule {rule} imports what {name} does not provide: {needed}"
