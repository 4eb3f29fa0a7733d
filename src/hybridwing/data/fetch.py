"""Materialise the images of a dataset table in a checksum-addressed store under ``resources/``.

The store lives outside the rule's outputs, so a failed run keeps everything it fetched: a rerun
reuses every stored file whose checksum still matches and only fetches what is missing. Files land
atomically (written under ``.partial/`` then renamed), so a cut-short download never looks complete.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import re
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urljoin, urlparse
from urllib.request import url2pathname

import pandas as pd
import requests
import urllib3
from requests.adapters import HTTPAdapter
from tqdm import tqdm

from hybridwing.atomic import atomic_file
from hybridwing.data.images import ImageDecodeError, check_proportions, decode_image
from hybridwing.data.tables import Taxa, carried_columns, normalise_table, read_csv_table
from hybridwing.text import printable

log = logging.getLogger(__name__)

SAFE_NAME = re.compile(r"^[\w][\w .+-]*$")
FAILURE_COLUMNS = ["image_id", "filename", "file_url", "reason"]
#: How a failure to store an image for want of space begins, so that the rule can say so once.
STORE_FULL = "no space left to store the image in"


@dataclass(frozen=True)
class FetchSettings:
    """The ``fetch`` block of the config."""

    max_parallel: int = 8
    retries: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 60.0
    total_timeout_s: float = 600.0
    max_bytes: int = 200_000_000
    allow_missing: bool = False

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> FetchSettings:
        return cls(**block)


class FetchError(Exception):
    """One image could not be fetched; the message is the reason written to the failures table."""


class RetryableError(FetchError):
    """A failure worth another attempt: a network error, a 5xx, a short or corrupted response."""


class FetchFailed(RuntimeError):
    """Some images of a table failed and ``fetch.allow_missing`` is off."""


URL_SCHEMES = ("http", "https", "file")
SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


def is_url(location: str) -> bool:
    return urlparse(location).scheme in URL_SCHEMES


def md5_of(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def check_file_name(filename: str) -> None:
    """Reject names that would leave the target folder or that no file system keeps as they are."""
    if not SAFE_NAME.match(filename) or ".." in filename:
        raise FetchError(f"unsafe file name {filename!r}: only a plain file name is allowed (no folders, no '..')")


def resolve_location(file_url: str, table_location: str) -> str:
    """Where an image lives: an absolute URL as it is, a relative path against the table's folder.
    A table read over HTTP may only name http(s) locations (never a file on this machine)."""
    scheme = SCHEME.match(file_url)
    if scheme and scheme.group(1).lower() not in URL_SCHEMES:
        raise FetchError(f"file_url {file_url!r}: unsupported scheme {scheme.group(1)!r} (only http, https and file)")
    remote_table = urlparse(table_location).scheme in {"http", "https"}
    if is_url(file_url):
        if remote_table and urlparse(file_url).scheme == "file":
            raise FetchError(f"file_url {file_url!r}: a table read over HTTP may not name local files")
        return file_url
    parts = PurePosixPath(unquote(file_url).replace("\\", "/")).parts
    if file_url.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", file_url):
        raise FetchError(f"file_url {file_url!r} leaves the table's folder; give a URL or a path inside it")
    if is_url(table_location):
        return urljoin(table_location, file_url)
    # A symbolic link in the folder is followed, as a file:// URL to its target would be; what it
    # points at must still be a regular file (read_regular_file).
    return str(Path(table_location).parent / Path(*parts))


FILE_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a local file (symlinks followed), read as a download is: anything but a regular
    file (a FIFO that would block, a device that never ends) is refused by name, and so is a file
    over `max_bytes`."""
    try:
        mode = path.stat().st_mode
        kind = next((name for test, name in FILE_KINDS if test(mode)), "not a regular file")
        if not stat.S_ISREG(mode):
            raise FetchError(f"{printable(path)} is {kind}, not a regular file")
        with open(path, "rb") as stream:
            data = stream.read(max_bytes + 1)
    except FileNotFoundError:
        raise FetchError(f"file not found: {printable(path)}") from None
    except OSError as error:
        raise FetchError(f"cannot read {printable(path)}: {error.strerror or error}") from None
    if len(data) > max_bytes:
        raise FetchError(f"{printable(path)} is over fetch.max_bytes ({max_bytes}) bytes")
    return data


class Reader:
    """Reads local paths, ``file://`` and ``http(s)://`` locations; one HTTP session per thread."""

    def __init__(self, settings: FetchSettings):
        self.settings = settings
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.settings.max_parallel)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return self._local.session

    def read_once(self, location: str) -> bytes:
        scheme = urlparse(location).scheme
        if scheme in {"http", "https"}:
            return self._read_http(location)
        path = Path(url2pathname(urlparse(location).path)) if scheme == "file" else Path(location)
        return read_regular_file(path, self.settings.max_bytes)

    def _read_http(self, url: str) -> bytes:
        """The decoded body; the length on the wire is checked against Content-Length (which counts
        encoded bytes), the size against ``max_bytes`` and the whole download against
        ``total_timeout_s``."""
        started = time.monotonic()
        try:
            response = self._session().get(url, timeout=self.settings.timeout_s, stream=True)
        except (
            requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidURL,
            requests.exceptions.TooManyRedirects,
        ) as error:
            raise FetchError(f"refused: {error}") from None
        except requests.RequestException as error:
            raise RetryableError(f"network error: {error.__class__.__name__}: {error}") from None
        with response:
            if response.status_code >= 500 or response.status_code == 429:
                raise RetryableError(f"HTTP {response.status_code} from {url}")
            if response.status_code >= 400:
                raise FetchError(f"HTTP {response.status_code} from {url}")
            expected = response.headers.get("Content-Length", "")
            if expected.isdigit() and int(expected) > self.settings.max_bytes:
                raise FetchError(f"{url} is {int(expected)} bytes, over fetch.max_bytes ({self.settings.max_bytes})")
            body = bytearray()
            try:
                while chunk := response.raw.read1(65536, decode_content=True):
                    body += chunk
                    if len(body) > self.settings.max_bytes:
                        raise FetchError(f"{url} sent more than fetch.max_bytes ({self.settings.max_bytes}) bytes")
                    if time.monotonic() - started > self.settings.total_timeout_s:
                        raise RetryableError(
                            f"download took longer than fetch.total_timeout_s ({self.settings.total_timeout_s:g} s)"
                        )
            except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as error:
                raise RetryableError(f"response cut short: connection closed early ({error})") from None
            received = response.raw.tell()
        if expected.isdigit() and int(expected) != received:
            raise RetryableError(f"response cut short: {received} of {expected} bytes")
        return bytes(body)

    def read(self, location: str, expected_md5: str = "") -> bytes:
        """Read with retries and exponential backoff; a wrong checksum counts as a failed attempt."""
        attempts = self.settings.retries + 1
        for attempt in range(attempts):
            try:
                data = self.read_once(location)
                if expected_md5 and md5_of(data) != expected_md5:
                    raise RetryableError(f"md5 mismatch: expected {expected_md5}, got {md5_of(data)}")
                return data
            except RetryableError as error:
                if attempt + 1 == attempts:
                    raise RetryableError(f"{error} (after {attempts} attempts)") from None
                time.sleep(self.settings.backoff_s * 2**attempt)
        raise AssertionError("unreachable")


@dataclass(frozen=True)
class ImageStore:
    """Checksum-addressed image files: ``<root>/<key[:2]>/<key><ext>`` plus an RGB PNG when needed."""

    root: Path

    def original(self, key: str, suffix: str) -> Path:
        return self.root / key[:2] / f"{key}{suffix}"

    def normalised(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.rgb.png"

    def write_atomically(self, path: Path, write) -> None:
        """Write through a temporary file in ``.partial/`` and rename it into place; a write that
        fails (a full disk, a read-only store) is this image's failure, and nothing half-written stays."""
        try:
            with atomic_file(path, self.root / ".partial") as temporary, open(temporary, "wb") as stream:
                write(stream)
        except OSError as error:
            full = error.errno in (errno.ENOSPC, errno.EDQUOT)
            raise FetchError(f"{STORE_FULL if full else 'cannot store'} {printable(self.root)}: {error}") from None


@dataclass(frozen=True)
class FetchedImage:
    path: str
    md5: str
    reused: bool


def fetch_image(row: pd.Series, table_location: str, store: ImageStore, reader: Reader) -> FetchedImage:
    """Fetch, verify, decode and store one image; raise FetchError with the reason otherwise."""
    check_file_name(row["filename"])
    location = resolve_location(row["file_url"], table_location)
    suffix = Path(row["filename"]).suffix.lower() or ".img"
    # A local file without a checksum is read as it is now: the store could only hold what it was.
    data = reader.read(location) if not row["md5"] and urlparse(location).scheme not in {"http", "https"} else None
    expected = row["md5"] or (md5_of(data) if data is not None else "")
    key = expected or "url-" + hashlib.sha256(location.encode()).hexdigest()[:32]
    original = store.original(key, suffix)
    stored = original.read_bytes() if original.exists() else None
    reused = stored is not None and (not expected or md5_of(stored) == expected)
    if data is None:
        data = stored if reused else reader.read(location, expected)
    try:
        decoded = decode_image(data, row["filename"])
        check_proportions(decoded.image, row["filename"])
    except ImageDecodeError as error:
        raise FetchError(str(error)) from None
    if not reused:
        store.write_atomically(original, lambda stream: stream.write(data))
    path = original
    if decoded.changed:
        path = store.normalised(key)
        if not path.exists():
            store.write_atomically(path, lambda stream: decoded.image.save(stream, format="PNG"))
    return FetchedImage(str(path), md5_of(data), reused)


def read_table_bytes(location: str, reader: Reader) -> bytes:
    """The bytes of a table given as a path or a URL."""
    try:
        return reader.read(location)
    except FetchError as error:
        raise FetchFailed(f"cannot read table {location}: {error}") from None


def fetch_table(
    table_location: str,
    source: str,
    taxa: Taxa,
    store: ImageStore,
    settings: FetchSettings,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate a table and fetch its images; returns (manifest of fetched images, failures)."""
    reader = Reader(settings)
    raw = read_csv_table(read_table_bytes(table_location, reader), table_location)
    table = normalise_table(raw, source, table_location, taxa)
    table = pd.concat([table, carried_columns(raw).reset_index(drop=True)], axis=1)
    results: list[FetchedImage | FetchError] = [FetchError("not attempted")] * len(table)

    def work(position: int) -> None:
        try:
            results[position] = fetch_image(table.iloc[position], table_location, store, reader)
        except FetchError as error:
            results[position] = error

    with (
        ThreadPoolExecutor(max_workers=settings.max_parallel) as pool,
        tqdm(total=len(table), desc=f"fetch {source}", unit="img") as bar,
    ):
        for _ in pool.map(work, range(len(table))):
            bar.update()

    fetched = [isinstance(result, FetchedImage) for result in results]
    manifest = table[fetched].copy()
    manifest["path"] = [result.path for result in results if isinstance(result, FetchedImage)]
    manifest["md5"] = [result.md5 for result in results if isinstance(result, FetchedImage)]
    failures = table.loc[[not ok for ok in fetched], ["image_id", "filename", "file_url"]].copy()
    failures["reason"] = [str(result) for result in results if isinstance(result, FetchError)]
    reused = sum(isinstance(result, FetchedImage) and result.reused for result in results)
    log.info(
        "%s: %d images, %d fetched, %d already stored, %d failed",
        source,
        len(table),
        len(manifest) - reused,
        reused,
        len(failures),
    )
    if len(failures):
        first = failures.iloc[0]
        log.error(
            "%s: %d image(s) failed, each with its reason in the failures table; the first, %s: %s",
            source,
            len(failures),
            first["image_id"],
            first["reason"],
        )
    return manifest.reset_index(drop=True), failures.reset_index(drop=True)[FAILURE_COLUMNS]


def write_fetch_outputs(
    manifest: pd.DataFrame,
    failures: pd.DataFrame,
    manifest_path: str | Path,
    failures_path: str | Path,
    allow_missing: bool,
) -> None:
    """Write the failures table (always) and the manifest; fail when images are missing."""
    failures.to_csv(failures_path, index=False)
    full = int(failures["reason"].astype(str).str.startswith(STORE_FULL).sum())
    if full:
        raise FetchFailed(
            f"the disk is full: {full} image(s) could not be stored (reasons in {failures_path}). Free space "
            "and rerun: the images stored so far are kept and not fetched again."
        )
    if len(failures) and not allow_missing:
        raise FetchFailed(
            f"{len(failures)} image(s) failed; reasons in {failures_path}. Fix the table or the "
            "source and rerun (stored images are kept), or set fetch.allow_missing: true to go on without them."
        )
    manifest.to_csv(manifest_path, index=False)
