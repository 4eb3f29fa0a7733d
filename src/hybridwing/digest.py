"""Digests of file contents: what resumable work (checkpoints, caches) is keyed by, so that a file
rewritten at the same path, with the same size or even the same modification time, is never taken
for the one it replaced."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a file's bytes."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def contents_digest(paths: Iterable[str | Path]) -> str:
    """One SHA-256 over the paths and the contents of the files, in order."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path}\0{file_digest(path)}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()
