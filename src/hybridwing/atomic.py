"""Outputs that appear whole or not at all: written under a temporary name, then renamed."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_umask_lock = threading.Lock()


def _umask() -> int:
    """The process's umask (read by setting it, so under a lock)."""
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def follow_umask(path: str | Path) -> None:
    """Give a file the mode open() would have (for writers such as safetensors that make it 0600)."""
    Path(path).chmod(0o666 & ~_umask())


@contextmanager
def atomic_file(path: str | Path, scratch: str | Path | None = None) -> Iterator[Path]:
    """A temporary path to write; renamed to `path` when the block ends without an error, removed
    otherwise. The temporary file lives in `scratch` (default: beside `path`, same file system)."""
    path = Path(path)
    folder = Path(scratch) if scratch is not None else path.parent
    folder.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".partial")
    os.fchmod(handle, 0o666 & ~_umask())  # as open() would make it: readable by the group where the umask says so
    os.close(handle)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


@contextmanager
def atomic_folder(path: str | Path, replace: bool = True) -> Iterator[Path]:
    """A temporary folder to fill, removed if the block fails. When the block ends, it replaces
    `path` (and whatever was there); with `replace` false it is renamed into place only while `path`
    is still absent: a folder that appeared meanwhile is left as it is, the finished one is kept
    under its temporary name, and FileExistsError names both."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial"))
    temporary.chmod(0o777 & ~_umask())  # as mkdir would make it, not mkdtemp's 0700
    finished = False
    try:
        yield temporary
        finished = True
        if not replace:
            try:
                if path.exists():
                    raise FileExistsError(path)
                os.rename(temporary, path)  # refuses a non-empty folder that appears after the check
            except OSError:
                raise FileExistsError(
                    f"{path} appeared while it was being written: it is left as it is, and the new folder is "
                    f"{temporary}"
                ) from None
        elif path.exists():
            retired = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
            os.replace(path, retired / path.name)
            os.replace(temporary, path)
            shutil.rmtree(retired)
        else:
            os.replace(temporary, path)
    finally:
        if temporary.exists() and not (finished and not replace):
            shutil.rmtree(temporary)
