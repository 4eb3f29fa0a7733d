"""Run a program as the HDR challenge's container would import it.

Usage: python challenge_container.py WHITELIST SUBMISSION_DIR PROGRAM [ARG ...]

Before PROGRAM runs (as __main__), an import hook refuses every top-level module that is installed
here but would not be in the challenge's container: not in the standard library, not provided by a
distribution on WHITELIST or one they require, and not in SUBMISSION_DIR. A refused module is still
seen by `importlib.util.find_spec` probes (torch probes many); importing it fails. Modules named like
one in SUBMISSION_DIR are loaded from there only. The program's own folder is importable, and so is
`packaging`, which the official ingestion program imports itself. At exit, the names whose import was
refused are printed to stderr: ``refused: a, b``.
"""

from __future__ import annotations

import atexit
import importlib.abc
import importlib.machinery
import pkgutil
import re
import runpy
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def allowed_distributions(whitelist: list[str]) -> set[str]:
    """The whitelisted distributions installed here and, transitively, those they require."""
    pending, seen = [normalised(name) for name in whitelist], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(normalised(requirement.name))
    return seen


class ChallengeImports(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, allowed: set[str], submission: Path):
        self.allowed = allowed
        self.submission = submission
        self.local = {path.stem for path in submission.glob("*.py")} | {
            path.parent.name for path in submission.glob("*/__init__.py")
        }
        self.refused: set[str] = set()

    def find_spec(self, fullname, path=None, target=None):
        top = fullname.split(".")[0]
        if top in self.local and "." not in fullname:
            spec = importlib.machinery.PathFinder.find_spec(fullname, [str(self.submission)])
            if spec is None:
                raise ModuleNotFoundError(f"{fullname} not found in the submission", name=fullname)
            return spec
        if top in self.local or top in self.allowed or importlib.machinery.PathFinder.find_spec(top) is None:
            return None  # allowed, or absent here as in the container
        return importlib.machinery.ModuleSpec(fullname, self)  # probes see it; importing it fails

    def create_module(self, spec):
        self.refused.add(spec.name.split(".")[0])
        raise ModuleNotFoundError(f"No module named {spec.name!r} in the challenge's container", name=spec.name)

    def exec_module(self, module):
        raise AssertionError("create_module always refuses")


def main() -> None:
    whitelist, submission, program = sys.argv[1], Path(sys.argv[2]).resolve(), Path(sys.argv[3]).resolve()
    distributions = allowed_distributions(Path(whitelist).read_text().split())
    provided = metadata.packages_distributions()
    stdlib = [sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")]
    stdlib.append(str(Path(stdlib[1]) / "lib-dynload"))
    allowed = set(sys.stdlib_module_names) | {module.name for module in pkgutil.iter_modules(stdlib)} | {"packaging"}
    allowed |= {top for top, names in provided.items() if any(normalised(n) in distributions for n in names)}
    allowed |= {path.stem for path in program.parent.glob("*.py")}
    hook = ChallengeImports(allowed, submission)
    sys.meta_path.insert(0, hook)
    atexit.register(lambda: print(f"refused: {', '.join(sorted(hook.refused))}", file=sys.stderr))
    sys.argv = [str(program), *sys.argv[4:]]
    sys.path.insert(0, str(program.parent))
    runpy.run_path(str(program), run_name="__main__")


if __name__ == "__main__":
    main()
