"""Benchmarks (make bench): prints one table and writes it to results/bench/bench.csv.

Synthesize: drawing and encoding specimens at 256x256 on one core (goal: at least 100 images/s).
Segmentation: U-Net student inference (2 threads, batches of 16) against the classical teacher on the
same 64 real photographs resized to 256x256 (goal: at least 30 images/s for the student).
Balance: augmented copies written per second with each library (2 worker processes).
Fetch: the real reference table (1,156 images) from a server on 127.0.0.1, answering at once and
after 20 ms (like a remote host), one download at a time against 8 at once, into an empty store each
time; then a rerun over the full store (resume). Split: perceptual hashing and pairing of every real image.
Segmentation also times a U-Net training epoch and background removal; score times the score rule's
path and `hybridwing predict`'s (with segmentation). stage_peak_mb: the highest resident memory of
the process and its workers while the stage ran.
Fine-tune: one epoch of the ViT-B-16 architecture (random weights, 224 px, last two blocks and the
head trained; on the CPU 128 training and 32 validation photographs, batches of 16, 2 threads; on a
CUDA GPU with bf16 autocast 2,048 and 256, batches of 32) from the images against from the
frozen-trunk token cache; the cache's one-off build is timed apart.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from dataclasses import asdict
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import torch
from PIL import Image

from hybridwing.balance.balance import BalanceSettings, balance_training_set
from hybridwing.data.fetch import FetchSettings, ImageStore, fetch_table
from hybridwing.data.split import class_labels, near_duplicate_pairs, perceptual_hashes
from hybridwing.data.tables import Taxa, normalise_table
from hybridwing.device import channels_last, pick_device
from hybridwing.finetune.train import FinetuneSettings, finetune
from hybridwing.model.backbone import WingClassifier, load_backbone
from hybridwing.model.folder import write_model_folder
from hybridwing.score.predictor import Predictor
from hybridwing.segment.background import apply_masks
from hybridwing.segment.classical import classical_mask
from hybridwing.segment.mask_settings import MaskSettings
from hybridwing.segment.predict import predict_probabilities
from hybridwing.segment.unet import UnetSettings, build_unet, save_checkpoint, train_unet
from hybridwing.synthetic.collection import SyntheticSettings, draw, encode, plan_collection

REPO = Path(__file__).resolve().parents[1]
HELICONIUS = REPO.parent / "shared" / "data" / "heliconius"


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


class SlowHandler(SimpleHTTPRequestHandler):
    """A static file server that answers after `delay_s`, like a remote host."""

    delay_s = 0.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(HELICONIUS), **kwargs)

    def do_GET(self):  # noqa: N802 (http.server's name)
        time.sleep(self.delay_s)
        super().do_GET()

    def log_message(self, *args):
        pass


def bench_fetch(taxa: Taxa, delay_s: float) -> list[dict]:
    SlowHandler.delay_s = delay_s
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/dev.csv"
    rows = []
    try:
        for parallel in (1, 8):
            with tempfile.TemporaryDirectory() as folder:
                store = ImageStore(Path(folder))
                settings = FetchSettings(max_parallel=parallel, retries=1, backoff_s=0.1)
                (manifest, _), seconds = timed(lambda: fetch_table(url, "dev", taxa, store, settings))
                stage = f"fetch, {delay_s * 1000:.0f} ms latency, {parallel} at once"
                rows.append({"stage": stage, "images": len(manifest), "seconds": seconds})
                if parallel == 8 and delay_s == 0:
                    (manifest, _), seconds = timed(lambda: fetch_table(url, "dev", taxa, store, settings))
                    rows.append(
                        {
                            "stage": "fetch, 0 ms latency, rerun (all stored)",
                            "images": len(manifest),
                            "seconds": seconds,
                        }
                    )
    finally:
        server.shutdown()
        server.server_close()
    return rows


def bench_split() -> list[dict]:
    paths = [str(path) for path in sorted((HELICONIUS / "images").iterdir())]
    hashes, seconds = timed(lambda: perceptual_hashes(paths, hash_size=16, threads=2))
    rows = [{"stage": "phash 256-bit, 2 threads", "images": len(paths), "seconds": seconds}]
    _, seconds = timed(lambda: near_duplicate_pairs(hashes, 8))
    rows.append({"stage": "near-duplicate pairs", "images": len(paths), "seconds": seconds})
    return rows


def bench_synthesize() -> list[dict]:
    """Drawing and encoding (JPEG image, PNG mask) at 256x256 on one core."""
    settings = SyntheticSettings(image_size=256)
    specimens = plan_collection(settings)[:300]

    def draw_all() -> None:
        for specimen in specimens:
            image, mask = draw(specimen, settings)
            encode(image, "JPEG", quality=settings.jpeg_quality)
            encode(mask, "PNG")

    _, seconds = timed(draw_all)
    return [{"stage": "synthesize 256x256, 1 core", "images": len(specimens), "seconds": seconds}]


def bench_segmentation() -> list[dict]:
    """Student U-Net inference against the classical teacher, same 64 real photographs at 256x256."""
    torch.set_num_threads(2)
    paths = sorted((HELICONIUS / "images").iterdir())[:64]
    images = [np.asarray(Image.open(path).convert("RGB").resize((256, 256))) for path in paths]
    _, teacher_seconds = timed(lambda: [classical_mask(image) for image in images])
    settings = UnetSettings()
    device = torch.device("cpu")
    model = channels_last(build_unet(settings), device).eval()
    predict_probabilities(model, images[:16], settings.image_size, device)
    _, student_seconds = timed(
        lambda: [
            predict_probabilities(model, images[k : k + 16], settings.image_size, device) for k in range(0, 64, 16)
        ]
    )
    return [
        {"stage": "classical teacher 256x256", "images": 64, "seconds": teacher_seconds},
        {"stage": "U-Net student 256x256, 2 threads", "images": 64, "seconds": student_seconds},
    ]


def bench_segment_pipeline() -> list[dict]:
    """The U-Net's training epoch (48 training, 8 validation photographs with classical teacher masks,
    256x256, 2 threads) and background removal of 64 photographs with their masks."""
    paths = sorted((HELICONIUS / "images").iterdir())[:64]
    with tempfile.TemporaryDirectory() as folder:
        rows = []
        for k, path in enumerate(paths):
            mask_path = Path(folder) / f"{path.stem}_mask.png"
            with Image.open(path) as image:
                Image.fromarray(classical_mask(np.asarray(image.convert("RGB"))) * 255).save(mask_path)
            rows.append(
                {
                    "image_id": path.stem,
                    "path": str(path),
                    "mask": str(mask_path),
                    "split": "train" if k < 48 else ("val" if k < 56 else "test"),
                }
            )
        pairs = pd.DataFrame(rows)
        _, history, _ = train_unet(pairs, UnetSettings(epochs=1, batch_size=8), threads=2)
        qc = pairs.assign(flag="")[["image_id", "split", "mask", "flag"]]
        metadata = pairs[["image_id", "path"]]
        _, apply_seconds = timed(lambda: apply_masks(qc, metadata, MaskSettings(), Path(folder) / "wings"))
    return [
        {
            "stage": "U-Net training epoch 256x256 (with validation), 2 threads",
            "images": 56,
            "seconds": float(history["seconds"].iloc[0]),
        },
        {"stage": "background removal (apply_masks)", "images": 64, "seconds": apply_seconds},
    ]


def bench_score() -> list[dict]:
    """Scoring with a model folder (tiny ViT and the default U-Net, random weights): background-removed
    images as the score rule reads them, and raw photographs through segmentation (hybridwing predict)."""
    torch.set_num_threads(2)
    paths = sorted((HELICONIUS / "images").iterdir())[:64]
    photos = [Image.open(path).convert("RGB") for path in paths]
    with tempfile.TemporaryDirectory() as folder:
        backbone = load_backbone("hybridwing-vit-tiny", allow_random_init=True)
        save_checkpoint(build_unet(UnetSettings()), UnetSettings(), Path(folder) / "unet.pt")
        settings = FinetuneSettings(model="hybridwing-vit-tiny", allow_random_init=True, unfrozen_blocks="all")
        classes = ["a", "b", "c", "hybrid"]
        write_model_folder(
            Path(folder) / "model",
            [WingClassifier(backbone.visual, 4).state_dict()],
            classes,
            backbone,
            asdict(settings),
            Path(folder) / "unet.pt",
            MaskSettings(),
        )
        predictor = Predictor.load(Path(folder) / "model")
        _, wing_seconds = timed(
            lambda: [predictor.table(predictor.probabilities(photos[k : k + 32])) for k in range(0, 64, 32)]
        )
        names = [path.stem for path in paths]
        _, raw_seconds = timed(
            lambda: [predictor.predict_images(photos[k : k + 16], names[k : k + 16]) for k in range(0, 64, 16)]
        )
    return [
        {"stage": "score, background-removed images (score rule)", "images": 64, "seconds": wing_seconds},
        {"stage": "score, raw photographs with segmentation (predict)", "images": 64, "seconds": raw_seconds},
    ]


def bench_balance() -> list[dict]:
    """Augmenting to 300 per class from 24 real photographs (3 classes), per library, 2 processes."""
    taxa = Taxa.read(REPO / "src/hybridwing/data/heliconius_taxa.csv")
    rows = pd.read_csv(HELICONIUS / "train.csv", dtype=str, keep_default_na=False)
    table = normalise_table(rows, "train", "train.csv", taxa)
    table["label"] = class_labels(table)
    picked = pd.concat([table[table["label"] == label].head(8) for label in ("lativitta", "notabilis", "hybrid")])
    results = []
    with tempfile.TemporaryDirectory() as folder:
        train = []
        for row in picked.itertuples():
            image = np.asarray(Image.open(HELICONIUS / row.file_url).convert("RGB"))
            mask = classical_mask(image)
            mask_path = Path(folder) / f"{row.image_id}_mask.png"
            Image.fromarray(mask * 255).save(mask_path)
            train.append(
                {
                    "image_id": row.image_id,
                    "label": row.label,
                    "photo": str(HELICONIUS / row.file_url),
                    "mask": str(mask_path),
                    "wings": str(mask_path),
                }
            )
        train = pd.DataFrame(train)
        for library in ("albumentations", "torchvision"):
            settings = BalanceSettings(min_per_class=300, library=library)
            manifest, seconds = timed(
                lambda: balance_training_set(train, settings, MaskSettings(), Path(folder) / library, threads=2)
            )
            results.append(
                {
                    "stage": f"balance, {library}, 2 processes",
                    "images": int(manifest["synthetic"].sum()),
                    "seconds": seconds,
                }
            )
    return results


def bench_finetune() -> list[dict]:
    """On the CPU 128 training and 32 validation photographs in batches of 16; on a CUDA GPU (bf16
    autocast) 2,048 and 256 in batches of 32, so that an epoch is long enough to time."""
    on_gpu = pick_device().type == "cuda"
    n_train, n_val, batch_size = (2048, 256, 32) if on_gpu else (128, 32, 16)
    paths = sorted(str(p) for p in (HELICONIUS / "images").glob("*.jpg"))[: n_train + n_val]
    table = pd.DataFrame(
        {"image_id": [Path(p).stem for p in paths], "path": paths, "class_index": [k % 4 for k in range(len(paths))]}
    )
    table["class"], table["source_image"] = table["class_index"].astype(str), table["image_id"]
    train, val = table.iloc[:n_train].reset_index(drop=True), table.iloc[n_train:].reset_index(drop=True)
    settings = FinetuneSettings(
        model="ViT-B-16",
        allow_random_init=True,
        unfrozen_blocks=2,
        batch_size=batch_size,
        epochs=1,
        checkpoint_every=1000,
    )
    where = "CUDA bf16" if on_gpu else "CPU"
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for name, cache_dir in (("images", None), ("token cache", Path(folder) / "cache")):
            run = finetune(
                train, val, list("0123"), settings, Path(folder) / f"{name}.pt", threads=2, cache_dir=cache_dir
            )
            epoch = run.state["history"][0]["seconds"]
            results.append(
                {"stage": f"fine-tune epoch, ViT-B-16, {where}, from {name}", "images": len(table), "seconds": epoch}
            )
            if cache_dir is not None:
                results.append(
                    {
                        "stage": f"token cache build, ViT-B-16, {where} (once)",
                        "images": len(table),
                        "seconds": run["setup_seconds"],
                    }
                )
    return results


def ratio(table: pd.DataFrame, slower_stage: str, faster_prefix: str, label: str, per_image: bool = False) -> None:
    """Write `slower / faster` seconds (or seconds per image) into the ratio column of the faster rows."""
    slower_rows = table["stage"].str.startswith(slower_stage)
    faster_rows = table["stage"].str.startswith(faster_prefix)
    if not slower_rows.any() or not faster_rows.any():
        return
    cost = table["seconds"] / table["images"] if per_image else table["seconds"]
    reference = cost[slower_rows].max() if per_image else cost[slower_rows].iloc[0]
    table.loc[faster_rows, "ratio"] = (reference / cost[faster_rows]).map(f"{{:.1f}}x {label}".format)


STAGES = {
    "synthesize": lambda taxa: bench_synthesize(),
    "fetch": lambda taxa: bench_fetch(taxa, 0.0) + bench_fetch(taxa, 0.02),
    "split": lambda taxa: bench_split(),
    "segment": lambda taxa: bench_segmentation() + bench_segment_pipeline(),
    "balance": lambda taxa: bench_balance(),
    "finetune": lambda taxa: bench_finetune(),
    "score": lambda taxa: bench_score(),
}


class PeakMemory:
    """Peak resident memory (MB) of this process and its children while the block runs, sampled every 50 ms."""

    def __enter__(self) -> PeakMemory:
        self.peak, self._running = 0.0, True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        process = psutil.Process()
        while self._running:
            try:
                rss = process.memory_info().rss + sum(
                    child.memory_info().rss for child in process.children(recursive=True)
                )
            except psutil.Error:
                continue
            self.peak = max(self.peak, rss / 2**20)
            time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        self._running = False
        self._thread.join()


def main() -> None:
    """`python bench/run.py [STAGE...]`: every stage, or only those named."""
    if not HELICONIUS.is_dir():
        sys.exit(f"benchmarks need the real images at {HELICONIUS}")
    chosen = sys.argv[1:] or list(STAGES)
    unknown = sorted(set(chosen) - set(STAGES))
    if unknown:
        sys.exit(f"unknown stage(s) {unknown}; choose from {list(STAGES)}")
    taxa = Taxa.read(REPO / "src/hybridwing/data/heliconius_taxa.csv")
    rows = []
    for stage in chosen:
        with PeakMemory() as memory:
            stage_rows = STAGES[stage](taxa)
        rows.extend(row | {"stage_peak_mb": round(memory.peak)} for row in stage_rows)
    table = pd.DataFrame(rows)
    table["images_per_s"] = (table["images"] / table["seconds"]).round(1)
    table["ratio"] = ""
    for delay in ("0 ms", "20 ms"):
        ratio(table, f"fetch, {delay} latency, 1 at once", f"fetch, {delay} latency", "serial")
    ratio(table, "classical", "U-Net student", "teacher")
    ratio(table, "balance", "balance", "slower library", per_image=True)
    for where in ("CPU", "CUDA bf16"):
        ratio(
            table,
            f"fine-tune epoch, ViT-B-16, {where}, from images",
            f"fine-tune epoch, ViT-B-16, {where}, from token cache",
            "uncached",
        )
    table["seconds"] = table["seconds"].round(2)
    out = REPO / "results" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "bench.csv", index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
