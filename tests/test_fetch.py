"""Fetching from a server on 127.0.0.1 that misbehaves: 404, wrong checksum, cut-short responses."""

from __future__ import annotations

import collections
import hashlib
import io
import threading
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
    return hashlib.md5(path.read_bytes()).hexdigest()


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
