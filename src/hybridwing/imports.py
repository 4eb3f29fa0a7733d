"""What Python source imports, read from the source without running it: the modules of this package
that the challenge export carries, and the third-party packages that declared dependencies must
provide."""

from __future__ import annotations

import ast
import sys
from importlib import metadata
from pathlib import Path

PACKAGE = "hybridwing"
PACKAGE_ROOT = Path(__file__).resolve().parent


def imported_modules(source: Path) -> set[str]:
    """Every module `source` imports anywhere (top level, functions, type checks), fully named; for
    ``from a import b`` both ``a`` and ``a.b`` (b may be a module or a name in a)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module_file(name: str) -> Path | None:
    """The source file of a module of this package (``hybridwing.x.y``), or None."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_ROOT.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def package_closure(module: str) -> list[Path]:
    """The source files of this package that importing `module` reads: the module, what it imports of
    this package (transitively), and the ``__init__.py`` of every package on the way."""
    seen: set[Path] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            path = module_file(".".join(parts[:depth]))
            if path is not None and path not in seen:
                seen.add(path)
                pending.extend(imported_modules(path))
    return sorted(seen)


def third_party(modules: set[str]) -> set[str]:
    """The top-level names in `modules` that are neither the standard library nor this package."""
    tops = {name.split(".")[0] for name in modules}
    return {top for top in tops if top not in sys.stdlib_module_names and top not in (PACKAGE, "__future__")}


def distributions_of(top_level: set[str]) -> dict[str, list[str]]:
    """The installed distributions that provide each top-level module (none for one not installed)."""
    provided = metadata.packages_distributions()
    return {name: sorted(set(provided.get(name, []))) for name in sorted(top_level)}
