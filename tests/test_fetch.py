"""Fetching from a server on 127.0.0.1 that misbehaves: 404, wrong checksum, cut-short responses."""

from __future__ import annotations

import collections
import gzip
import hashlib
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hybridwing.data.fetch import (
    FetchError,
    FetchFailed,
    FetchSettings,
    ImageStore,
    Reader,
    fetch_table,
    resolve_location,
    write_fetch_outputs,
)

SETTINGS = FetchSettings(max_parallel=4, retries=2, backoff_s=0.0, timeout_s=10.0)


class ImageServer(ThreadingHTTPServer):
    """Serves files from a folder; ``/cut/NAME`` promises the whole file and sends half of it."""

    def __init__(self, root: Path):
        self.root = root
        self.requests: collections.Counter[str] = collections.Counter()
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        server: ImageServer = self.server
        server.requests[self.path] += 1
        special = {
            "/huge": self.send_huge,
            "/endless": self.send_endless,
            "/trickle": self.send_trickle,
            "/to-file": self.send_redirect,
        }
        if self.path in special:
            special[self.path]()
            return
        if self.path.startswith("/gzip/"):
            self.send_gzip(server.root / self.path.removeprefix("/gzip/"))
            return
        cut = self.path.startswith("/cut/")
        path = server.root / self.path.removeprefix("/cut/").lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if cut else data)
        if cut:
            self.close_connection = True

    def send_gzip(self, path: Path):
        data = gzip.compress(path.read_bytes())
        self.send_response(200)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_huge(self):
        """Claims 3 GB (and would stream zeros)."""
        self.send_response(200)
        self.send_header("Content-Length", str(3 * 10**9))
        self.end_headers()
        self.wfile.write(bytes(10**6))

    def send_endless(self):
        """Zeros with no length, until the client hangs up."""
        self.send_response(200)
        self.end_headers()
        try:
            for _ in range(200):
                self.wfile.write(bytes(10**5))
        except OSError:
            pass
        self.close_connection = True

    def send_trickle(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            for _ in range(1000):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.3)
        except OSError:
            pass

    def send_redirect(self):
        self.send_response(302)
        self.send_header("Location", "file:///etc/passwd")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def server(tmp_path, heliconius):
    root = tmp_path / "served"
    root.mkdir()
    for image in sorted((heliconius / "images").glob("CAM01*.jpg"))[:12]:
        (root / image.name).write_bytes(image.read_bytes())
    photo = Image.open(root / sorted(p.name for p in root.iterdir())[0]).convert("RGB")
    photo.convert("CMYK").save(root / "cmyk.jpg", quality=95)
    grey16 = (np.asarray(photo.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(grey16).save(root / "grey16.png")
    (root / "corrupt.jpg").write_bytes((root / sorted(p.name for p in root.iterdir())[0]).read_bytes()[:3000])
    httpd = ImageServer(root)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def training_table(server: ImageServer, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A training table pointing at the server: good images plus one of every failure."""
    good = sorted(p.name for p in server.root.glob("CAM01*.jpg"))
    rows = []
    for name in good + ["cmyk.jpg", "grey16.png"]:
        rows.append((name, f"{server.url}/{name}", md5(server.root / name)))
    bad = {
        "missing": ("missing.jpg", f"{server.url}/missing.jpg", "0" * 32),
        "checksum": ("wrongsum.jpg", f"{server.url}/{good[0]}", "f" * 32),
        "cut": ("cut.jpg", f"{server.url}/cut/{good[1]}", ""),
        "unsafe": ("../escape.jpg", f"{server.url}/{good[2]}", md5(server.root / good[2])),
        "corrupt": ("corrupt.jpg", f"{server.url}/corrupt.jpg", md5(server.root / "corrupt.jpg")),
    }
    rows += list(bad.values())
    table = pd.DataFrame(
        {
            "CAMID": [f"S{i}" for i in range(len(rows))],
            "file_url": [url for _, url, _ in rows],
            "hybrid_stat": "non-hybrid",
            "split": "train",
            "zenodo_link": "",
            "md5": [checksum for _, _, checksum in rows],
            "subspecies": "8.0",
            "parent_subspecies_1": "",
            "parent_subspecies_2": "",
            "filename": [name for name, _, _ in rows],
        }
    )
    path = tmp_path / "table.csv"
    table.to_csv(path, index=False)
    return path, {key: Path(name).stem for key, (name, _, _) in bad.items()}


def test_fetch_keeps_good_images_and_lists_bad_ones(server, tmp_path, taxa):
    table, bad = training_table(server, tmp_path)
    store = ImageStore(tmp_path / "store")
    manifest, failures = fetch_table(str(table), "train", taxa, store, SETTINGS)

    assert len(manifest) == 14 and len(failures) == 5
    reasons = dict(zip(failures["image_id"], failures["reason"]))
    assert "HTTP 404" in reasons[bad["missing"]]
    assert "md5 mismatch" in reasons[bad["checksum"]] and "after 3 attempts" in reasons[bad["checksum"]]
    assert "cut short" in reasons[bad["cut"]]
    assert "unsafe file name" in reasons["escape"]
    assert "cannot decode" in reasons[bad["corrupt"]]
    assert server.requests["/cut/" + sorted(p.name for p in server.root.glob("CAM01*.jpg"))[1]] == 3

    for row in manifest.itertuples():
        stored = Path(row.path)
        assert stored.is_relative_to(store.root)
        with Image.open(stored) as image:
            assert image.mode == "RGB"
    normalised = manifest.set_index("image_id").loc[["cmyk", "grey16"], "path"]
    assert all(path.endswith(".rgb.png") for path in normalised)
    originals = [p for p in store.root.rglob("*.jpg")]
    assert all(md5(p) == p.stem for p in originals)
    assert not any((store.root / ".partial").iterdir())
    assert not (tmp_path / "escape.jpg").exists() and not (tmp_path / "store" / ".." / "escape.jpg").exists()

    before = collections.Counter(server.requests)
    again, failures_again = fetch_table(str(table), "train", taxa, store, SETTINGS)
    assert again.equals(manifest)
    assert failures_again.equals(failures)
    requested_again = {path for path in server.requests if server.requests[path] != before[path]}
    failed_urls = {urlparse(row.file_url).path for row in failures.itertuples() if "unsafe" not in row.reason}
    assert requested_again == failed_urls


def test_failures_stop_the_rule_unless_allowed(server, tmp_path, taxa):
    table, _ = training_table(server, tmp_path)
    manifest, failures = fetch_table(str(table), "train", taxa, ImageStore(tmp_path / "store"), SETTINGS)
    out, failed = tmp_path / "manifest.csv", tmp_path / "failures.csv"
    with pytest.raises(FetchFailed, match="5 image"):
        write_fetch_outputs(manifest, failures, out, failed, allow_missing=False)
    assert not out.exists() and len(pd.read_csv(failed)) == 5
    write_fetch_outputs(manifest, failures, out, failed, allow_missing=True)
    assert len(pd.read_csv(out)) == 14


def test_relative_urls_stay_inside_the_table_folder(tmp_path):
    assert resolve_location("images/a.jpg", str(tmp_path / "t.csv")) == str(tmp_path / "images" / "a.jpg")
    assert resolve_location("images/a.jpg", "http://host/data/t.csv") == "http://host/data/images/a.jpg"
    for trick in ("../secret.jpg", "images/../../x.jpg", "/etc/passwd", "C:/x.jpg", "..%2Fx.jpg"):
        with pytest.raises(FetchError, match="leaves the table's folder"):
            resolve_location(trick, str(tmp_path / "t.csv"))


def test_real_table_from_loopback_server(heliconius, tmp_path, taxa):
    """Every image of the real reference table fetched over HTTP matches the local file."""
    httpd = ImageServer(heliconius)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        manifest, failures = fetch_table(f"{httpd.url}/dev.csv", "dev", taxa, ImageStore(tmp_path / "s"), SETTINGS)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert failures.empty and len(manifest) == 1156
    sample = manifest.sample(20, random_state=0)
    for row in sample.itertuples():
        assert md5(Path(row.path)) == md5(heliconius / row.file_url)


def test_gzip_encoded_responses_are_decoded_and_checked(server):
    name = sorted(p.name for p in server.root.glob("CAM01*.jpg"))[0]
    data = Reader(SETTINGS).read(f"{server.url}/gzip/{name}", md5(server.root / name))
    assert data == (server.root / name).read_bytes()


def test_a_file_over_the_size_cap_fails_at_once(server, tmp_path, taxa):
    capped = FetchSettings(max_parallel=2, retries=2, backoff_s=0.0, timeout_s=10.0, max_bytes=2_000_000)
    with pytest.raises(FetchError, match=r"3000000000 bytes, over fetch.max_bytes \(2000000\)"):
        Reader(capped).read(f"{server.url}/huge")
    with pytest.raises(FetchError, match=r"sent more than fetch.max_bytes"):
        Reader(capped).read(f"{server.url}/endless")
    assert server.requests["/huge"] == 1 and server.requests["/endless"] == 1  # no retries

    table = tmp_path / "big.csv"
    rows = [
        ("big.jpg", f"{server.url}/endless"),
        ("ok.jpg", f"{server.url}/{sorted(p.name for p in server.root.glob('CAM01*.jpg'))[0]}"),
    ]
    pd.DataFrame(
        {
            "CAMID": ["A", "B"],
            "file_url": [u for _, u in rows],
            "hybrid_stat": "non-hybrid",
            "md5": "",
            "subspecies": "8.0",
            "parent_subspecies_1": "",
            "parent_subspecies_2": "",
            "filename": [n for n, _ in rows],
        }
    ).to_csv(table, index=False)
    manifest, failures = fetch_table(str(table), "train", taxa, ImageStore(tmp_path / "store"), capped)
    assert list(manifest["image_id"]) == ["ok"] and "max_bytes" in failures.set_index("image_id").at["big", "reason"]


def test_a_trickling_server_hits_the_total_timeout(server):
    slow = FetchSettings(max_parallel=1, retries=1, backoff_s=0.0, timeout_s=5.0, total_timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"longer than fetch.total_timeout_s \(1 s\) \(after 2 attempts\)"):
        Reader(slow).read(f"{server.url}/trickle")
    assert time.monotonic() - started < 6


def test_a_redirect_to_a_local_file_is_refused_without_retries(server):
    with pytest.raises(FetchError, match="refused") as caught:
        Reader(SETTINGS).read(f"{server.url}/to-file")
    assert "attempts" not in str(caught.value) and server.requests["/to-file"] == 1


def test_unknown_schemes_and_local_files_named_by_a_remote_table(tmp_path):
    for url in ("ftp://host/a.jpg", "data:image/png;base64,AAAA", "gopher://x/y"):
        with pytest.raises(FetchError, match="unsupported scheme"):
            resolve_location(url, str(tmp_path / "t.csv"))
    with pytest.raises(FetchError, match="may not name local files"):
        resolve_location("file:///etc/passwd", "http://host/data/t.csv")
    assert resolve_location("file:///data/a.jpg", str(tmp_path / "t.csv")) == "file:///data/a.jpg"
    assert resolve_location("https://host/a.jpg", "http://host/data/t.csv") == "https://host/a.jpg"


def reference_table(folder: Path, names: list[str]) -> Path:
    """A table in the reference format (as the challenge's dev.csv: no md5 column) naming images/NAME."""
    table = pd.DataFrame(
        {
            "CAMID": [f"R{k}" for k in range(len(names))],
            "file_url": [f"images/{name}" for name in names],
            "hybrid_stat": "0",
            "X": "",
            "subspecies_ref": "lativitta",
            "filename": names,
            "ssp_indicator": "major",
        }
    )
    path = folder / "dev.csv"
    table.to_csv(path, index=False)
    return path


def test_a_table_without_md5_takes_each_local_file_as_it_is_now(heliconius, tmp_path, taxa):
    """Replace images/p.jpg by another photograph and fetch again: the new one is used."""
    images = tmp_path / "data" / "images"
    images.mkdir(parents=True)
    real = sorted((heliconius / "images").glob("*.jpg"))[:3]
    (images / "p.jpg").write_bytes(real[0].read_bytes())
    (images / "q.jpg").write_bytes(real[1].read_bytes())
    table = reference_table(tmp_path / "data", ["p.jpg", "q.jpg"])
    store = ImageStore(tmp_path / "store")
    first, _ = fetch_table(str(table), "dev", taxa, store, SETTINGS)
    (images / "p.jpg").write_bytes(real[2].read_bytes())
    again, failures = fetch_table(str(table), "dev", taxa, store, SETTINGS)
    assert failures.empty
    by_id = again.set_index("image_id")
    assert by_id.at["p", "md5"] == md5(real[2]) != first.set_index("image_id").at["p", "md5"]
    assert Path(by_id.at["p", "path"]).read_bytes() == real[2].read_bytes()
    assert by_id.at["q", "path"] == first.set_index("image_id").at["q", "path"], (
        "an unchanged file keeps its stored copy"
    )


def test_local_files_are_read_like_downloads(heliconius, tmp_path, taxa, caplog):
    """A FIFO, a symlink to /dev/zero, a file over max_bytes and a 1x1 image are failures with
    their reason, said in one log line (the reasons are in the failures table); a symbolic link to
    a photograph elsewhere is followed, as a file:// URL to it would be; nothing hangs."""
    import os

    data = tmp_path / "data"
    images = data / "images"
    images.mkdir(parents=True)
    real = sorted((heliconius / "images").glob("*.jpg"))[:2]
    (images / "good.jpg").write_bytes(real[0].read_bytes())
    os.mkfifo(images / "pipe.jpg")
    os.symlink("/dev/zero", images / "zero.jpg")
    (images / "big.jpg").write_bytes(real[1].read_bytes() + b"\0" * 200_000)
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes(real[1].read_bytes())
    os.symlink(outside, images / "linked.jpg")
    Image.new("RGB", (1, 1)).save(images / "dot.png")
    table = reference_table(data, ["good.jpg", "pipe.jpg", "zero.jpg", "big.jpg", "linked.jpg", "dot.png"])
    settings = FetchSettings(max_parallel=2, retries=0, backoff_s=0.0, max_bytes=150_000)
    started = time.monotonic()
    with caplog.at_level("ERROR"):
        manifest, failures = fetch_table(str(table), "dev", taxa, ImageStore(tmp_path / "store"), settings)
    assert time.monotonic() - started < 30
    assert manifest["image_id"].tolist() == ["good", "linked"]
    assert Path(manifest["path"].iloc[1]).read_bytes() == real[1].read_bytes()
    reasons = dict(zip(failures["image_id"], failures["reason"]))
    assert "pipe.jpg is a FIFO (named pipe), not a regular file" in reasons["pipe"]
    assert "zero.jpg is a character device, not a regular file" in reasons["zero"]
    assert "over fetch.max_bytes (150000)" in reasons["big"]
    assert "1x1 pixels is not a photograph of wings" in reasons["dot"]
    assert len(caplog.records) == 1 and "dev: 4 image(s) failed" in caplog.text


def test_an_html_page_served_as_a_table_is_named_as_such(server):
    """A login or error page in place of the CSV is not 'a header with no rows'."""
    (server.root / "table.csv").write_text(
        "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Sign in</body></html>\n"
    )
    from hybridwing.data.tables import TableError, Taxa

    taxa = Taxa({"8": "lativitta"}, {"lativitta": "erato"})
    with pytest.raises(TableError, match="not a CSV table: this is an HTML or XML page"):
        fetch_table(f"{server.url}/table.csv", "train", taxa, ImageStore(server.root / "store"), SETTINGS)


def test_a_full_disk_is_each_images_failure_and_said_once(heliconius, tmp_path, taxa, monkeypatch):
    """The store's disk fills after one image: the others are failures with the reason, the
    failures table is written, the rule says the disk is full, nothing half-written stays, and a
    rerun with space keeps the stored image and fetches the rest."""
    import errno

    import hybridwing.data.fetch

    images = tmp_path / "data" / "images"
    images.mkdir(parents=True)
    names = [f"p{k}.jpg" for k in range(3)]
    for name, real in zip(names, sorted((heliconius / "images").glob("*.jpg"))):
        (images / name).write_bytes(real.read_bytes())
    table = reference_table(tmp_path / "data", names)
    store = ImageStore(tmp_path / "store")
    written = []

    class FullDisk:
        def __init__(self, path, mode):
            self.path = path

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, data):
            if written:
                raise OSError(errno.ENOSPC, "No space left on device")
            written.append(self.path)
            Path(self.path).write_bytes(data)

    def full_disk_open(path, mode="r"):
        return FullDisk(path, mode) if "w" in mode else open(path, mode)

    monkeypatch.setattr(hybridwing.data.fetch, "open", full_disk_open, raising=False)
    manifest, failures = fetch_table(str(table), "dev", taxa, store, replace(SETTINGS, max_parallel=1))
    assert len(manifest) == 1 and len(failures) == 2
    assert failures["reason"].str.startswith("no space left to store the image in").all()
    with pytest.raises(FetchFailed, match=r"the disk is full: 2 image\(s\) could not be stored"):
        write_fetch_outputs(manifest, failures, tmp_path / "m.csv", tmp_path / "f.csv", allow_missing=True)
    assert len(pd.read_csv(tmp_path / "f.csv")) == 2 and not (tmp_path / "m.csv").exists()
    assert not list((tmp_path / "store" / ".partial").iterdir())
    monkeypatch.undo()
    again, failures = fetch_table(str(table), "dev", taxa, store, SETTINGS)
    assert failures.empty and len(again) == 3
    assert manifest["path"].iloc[0] in again["path"].tolist()


def test_a_training_table_of_local_photographs_needs_no_md5_column(heliconius, tmp_path, taxa):
    """The checksum of each local photograph is computed when it is fetched and recorded; a column
    the format does not read is carried as table_NAME."""
    images = tmp_path / "data" / "images"
    images.mkdir(parents=True)
    photographs = sorted((heliconius / "images").glob("*.jpg"))[:2]
    for k, photograph in enumerate(photographs):
        (images / f"p{k}.jpg").write_bytes(photograph.read_bytes())
    code = next(code for code, name in taxa.name_by_code.items() if name == "lativitta")
    table = pd.DataFrame(
        {
            "CAMID": ["C0", "C1"],
            "file_url": ["images/p0.jpg", "images/p1.jpg"],
            "hybrid_stat": "non-hybrid",
            "subspecies": code,
            "parent_subspecies_1": "",
            "parent_subspecies_2": "",
            "filename": ["p0.jpg", "p1.jpg"],
            "locality": ["Tarapoto", "=cmd"],
        }
    )
    table.to_csv(tmp_path / "data" / "train.csv", index=False)
    manifest, failures = fetch_table(
        str(tmp_path / "data" / "train.csv"), "train", taxa, ImageStore(tmp_path / "s"), SETTINGS
    )
    assert failures.empty
    assert manifest["md5"].tolist() == [md5(photograph) for photograph in photographs]
    assert (manifest["subspecies"] == "lativitta").all()
    assert manifest["table_locality"].tolist() == ["Tarapoto", "=cmd"], "the table's own column, carried"
