"""Digests of file contents: what resumable work (checkpoints, caches) is keyed by, so that a file
rewritten at the same path, with the same size or even the same modification time, is never taken
for the one it replaced."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from hybridwing.imports import PACKAGE_ROOT, package_files


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a file's bytes."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def contents_digest(paths: Iterable[str | Path], root: Path | None = None) -> str:
    """One SHA-256 over the paths and the contents of the files, in order; with `root`, the paths
    are relative to it, so the same files give the same digest wherever `root` lies."""
    digest = hashlib.sha256()
    for path in paths:
        name = Path(path).relative_to(root).as_posix() if root else path
        digest.update(f"{name}\0{file_digest(path)}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def library_digest(script: str | Path, package_dir: Path = PACKAGE_ROOT) -> str:
    """A digest of the code of `package_dir` (hybridwing) that `script` runs: the script when it is
    a module of the package, every package module it imports, directly or through another (imports
    inside functions too), their packages' ``__init__`` files and the data files beside them (model
    configs). As a rule's param it reruns the rule when that code changes, which Snakemake's code
    trigger (the script alone) does not see; in a checkpoint's key it keeps a run of other code from
    resuming. The same code gives the same digest wherever the package lies."""
    files = package_files(Path(script), package_dir)
    data = {path for module in files if module.name == "__init__.py" for path in data_files(module.parent)}
    return contents_digest(sorted(files | data), root=package_dir)[:16]


def data_files(package: Path) -> list[Path]:
    """The files in a package folder's plain subfolders (not packages, not caches): its model configs."""
    return [
        path
        for folder in sorted(package.iterdir())
        if folder.is_dir() and folder.name != "__pycache__" and not (folder / "__init__.py").is_file()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    ]
