"""What Python source imports, read from the source without running it: the modules of this package
that a script or module runs (the code a rule's digest covers, the modules the challenge export
carries), and the third-party packages that declared dependencies must provide."""

from __future__ import annotations

import ast
import functools
import sys
from importlib import metadata
from pathlib import Path

#: This package's folder.
PACKAGE_ROOT = Path(__file__).resolve().parent


@functools.cache
def module_imports(path: Path) -> frozenset[str]:
    """The dotted names a Python file imports, or imports from, anywhere in it (read once per
    process: Snakemake asks for every rule's code when it parses the workflow)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # a submodule, or a name in it
    return frozenset(names)


def module_files(name: str, package_dir: Path = PACKAGE_ROOT) -> list[Path]:
    """The files that importing `name` runs: each enclosing package's ``__init__.py`` and the module
    (none for a name that is not a module, such as a function imported from one)."""
    parts = name.split(".")[1:]
    found = [package_dir / "__init__.py"]
    for depth in range(1, len(parts) + 1):
        base = package_dir.joinpath(*parts[:depth])
        found += [base / "__init__.py", base.with_suffix(".py")]
    return [path for path in found if path.is_file()]


def package_files(start: Path, package_dir: Path = PACKAGE_ROOT) -> set[Path]:
    """The files of the package that `start` (a script, or a module of the package) runs: itself
    when it is in the package, and every package module it imports, directly or through another."""
    start = start.resolve()
    files = {start} if package_dir in start.parents else set()
    pending = [start]
    while pending:
        for name in module_imports(pending.pop()):
            if name.split(".")[0] != package_dir.name:
                continue
            for module in module_files(name, package_dir):
                if module not in files:
                    files.add(module)
                    pending.append(module)
    return files


def package_closure(module: str) -> list[Path]:
    """The files of this package that importing `module` runs."""
    return sorted(set().union(*(package_files(path) | {path} for path in module_files(module))))


def third_party(modules: set[str] | frozenset[str]) -> set[str]:
    """The top-level names in `modules` that are neither the standard library nor this package."""
    tops = {name.split(".")[0] for name in modules}
    return {top for top in tops if top not in sys.stdlib_module_names and top not in (PACKAGE_ROOT.name, "__future__")}


def distributions_of(top_level: set[str]) -> dict[str, list[str]]:
    """The installed distributions that provide each top-level module (none for one not installed)."""
    provided = metadata.packages_distributions()
    return {name: sorted(set(provided.get(name, []))) for name in sorted(top_level)}
