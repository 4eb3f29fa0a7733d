"""A whole synthetic collection: who is photographed, the two challenge tables, images and masks.

The training table (challenge training format) holds species A with a long tail of class sizes and
one "signal" hybrid (the cross of the two subspecies that species B mimics). The evaluation table
(reference format) holds signal hybrids and their parents (``major``), other hybrids of A and other
A subspecies (``minor``), and species B with its hybrids (``mimic``).
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from tqdm import tqdm

from hybridwing.synthetic.patterns import (
    BY_NAME,
    MIMIC_PARENTS,
    SIGNAL_PARENTS,
    SPECIES_A,
    SUBSPECIES,
    cross,
    vary,
)
from hybridwing.synthetic.render import render_specimen

log = logging.getLogger(__name__)

PARTS = ("major", "minor", "mimic")
A_NAMES = sorted(s.name for s in SUBSPECIES if s.species == SPECIES_A)
CODES = {name: code for code, name in enumerate(A_NAMES)}


@dataclass(frozen=True)
class SyntheticSettings:
    """The ``dataset.synthetic`` block of the config."""

    seed: int = 1
    image_size: int = 224
    train_images: int = 640
    tail_ratio: float = 40.0
    train_hybrids: int = 24
    eval: dict[str, dict[str, int]] = field(
        default_factory=lambda: {
            "major": {"non_hybrid": 60, "hybrid": 50},
            "minor": {"non_hybrid": 60, "hybrid": 24},
            "mimic": {"non_hybrid": 80, "hybrid": 40},
        }
    )
    jpeg_quality: int = 92

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> SyntheticSettings:
        return cls(**block)


@dataclass(frozen=True)
class Specimen:
    """One photograph to draw: its table, identity, parents for hybrids, and challenge part."""

    index: int
    table: str
    subspecies: str = ""
    parents: tuple[str, str] | None = None
    part: str = ""

    @property
    def camid(self) -> str:
        return f"SYN{self.index:05d}"

    @property
    def species(self) -> str:
        return BY_NAME[self.parents[0] if self.parents else self.subspecies].species


def class_sizes(total: int, ratio: float) -> dict[str, int]:
    """Images per A subspecies: a geometric long tail, largest `ratio` times the smallest.

    The two subspecies that B mimics are the largest, as lativitta and notabilis are in the real
    training table; the rest follow in the order of the recipes.
    """
    order = [s.name for s in SUBSPECIES if s.species == SPECIES_A]
    step = ratio ** (-1 / (len(order) - 1))
    weights = step ** np.arange(len(order))
    sizes = np.maximum(1, np.round(weights / weights.sum() * total)).astype(int)
    return dict(zip(order, sizes.tolist()))


def plan_collection(settings: SyntheticSettings) -> list[Specimen]:
    """Every specimen of the collection, in a fixed order (index = position)."""
    rng = np.random.default_rng([settings.seed, 0])
    plan: list[tuple[str, str, tuple[str, str] | None, str]] = []
    for name, count in class_sizes(settings.train_images, settings.tail_ratio).items():
        plan += [("train", name, None, "")] * count
    plan += [("train", "", SIGNAL_PARENTS, "")] * settings.train_hybrids
    minor_names = [name for name in A_NAMES if name not in SIGNAL_PARENTS]
    parents_by_part = {"major": SIGNAL_PARENTS, "mimic": MIMIC_PARENTS}
    for part in PARTS:
        counts = settings.eval[part]
        pool = minor_names if part == "minor" else list(parents_by_part[part])
        plan += [("dev", pool[k % len(pool)], None, part) for k in range(counts["non_hybrid"])]
        for _ in range(counts["hybrid"]):
            if part == "minor":
                pair = tuple(rng.choice(A_NAMES, size=2, replace=False).tolist())
                while set(pair) == set(SIGNAL_PARENTS):
                    pair = tuple(rng.choice(A_NAMES, size=2, replace=False).tolist())
            else:
                pair = parents_by_part[part]
                pair = pair if rng.uniform() < 0.5 else pair[::-1]
            plan.append(("dev", "", pair, part))
    return [Specimen(index, table, name, parents, part) for index, (table, name, parents, part) in enumerate(plan)]


def draw(specimen: Specimen, settings: SyntheticSettings) -> tuple[np.ndarray, np.ndarray]:
    """Render one specimen; its own random stream makes it independent of every other."""
    rng = np.random.default_rng([settings.seed, 1, specimen.index])
    if specimen.parents:
        first, second = (vary(BY_NAME[name].pattern, rng) for name in specimen.parents)
        pattern = cross(first, second, rng)
    else:
        pattern = vary(BY_NAME[specimen.subspecies].pattern, rng)
    return render_specimen(pattern, settings.image_size, rng)


def encode(array: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def training_row(specimen: Specimen, filename: str, md5: str) -> dict[str, str]:
    hybrid = specimen.parents is not None
    return {
        "CAMID": specimen.camid,
        "file_url": f"images/{filename}",
        "hybrid_stat": "hybrid" if hybrid else "non-hybrid",
        "split": "train",
        "zenodo_link": "",
        "md5": md5,
        "subspecies": "" if hybrid else f"{CODES[specimen.subspecies]:.1f}",
        "parent_subspecies_1": f"{CODES[specimen.parents[0]]:.1f}" if hybrid else "",
        "parent_subspecies_2": f"{CODES[specimen.parents[1]]:.1f}" if hybrid else "",
        "filename": filename,
    }


def reference_row(specimen: Specimen, filename: str, md5: str) -> dict[str, str]:
    hybrid = specimen.parents is not None
    return {
        "CAMID": specimen.camid,
        "file_url": f"images/{filename}",
        "hybrid_stat": str(int(hybrid)),
        "X": str(specimen.index),
        "subspecies_ref": " x ".join(specimen.parents) if hybrid else specimen.subspecies,
        "filename": filename,
        "ssp_indicator": specimen.part,
        "md5": md5,
    }


def taxa_table() -> pd.DataFrame:
    """``code,subspecies,species`` of the synthetic subspecies (B has no training codes)."""
    return pd.DataFrame(
        [
            {"code": str(CODES[s.name]) if s.name in CODES else "", "subspecies": s.name, "species": s.species}
            for s in SUBSPECIES
        ]
    )


def caption(specimen: Specimen) -> str:
    if specimen.parents:
        return f"{' x '.join(specimen.parents)} ({specimen.part or 'train'})"
    mimics = BY_NAME[specimen.subspecies].mimics
    return f"{specimen.subspecies} (mimics {mimics})" if mimics else specimen.subspecies


def sample_sheet(specimens: list[Specimen], settings: SyntheticSettings) -> Image.Image:
    """16 samples: eight A subspecies, two mimic pairs (model beside mimic), four kinds of hybrid."""
    first_of: dict[tuple, Specimen] = {}
    for specimen in specimens:
        key = (specimen.subspecies, specimen.parents and tuple(sorted(specimen.parents)), specimen.part)
        first_of.setdefault(key, specimen)
    pure_a = [first_of[(name, None, "")] for name in A_NAMES if name not in SIGNAL_PARENTS][:8]
    pairs = []
    for model, mimic in zip(SIGNAL_PARENTS, MIMIC_PARENTS):
        pairs += [first_of[(model, None, "")], first_of[(mimic, None, "mimic")]]
    hybrids = [next(s for s in specimens if s.parents and s.part == part) for part in PARTS]
    hybrids.insert(0, next(s for s in specimens if s.parents and s.table == "train"))
    chosen = pure_a + pairs + hybrids
    size, text = settings.image_size, 16
    sheet = Image.new("RGB", (4 * size, 4 * (size + text)), "white")
    pen = ImageDraw.Draw(sheet)
    for k, specimen in enumerate(chosen):
        image, _ = draw(specimen, settings)
        x, y = (k % 4) * size, (k // 4) * (size + text)
        sheet.paste(Image.fromarray(image), (x, y))
        pen.text((x + 3, y + size + 2), caption(specimen), fill="black")
    return sheet


def write_collection(
    settings: SyntheticSettings,
    train_path: str | Path,
    dev_path: str | Path,
    taxa_path: str | Path,
    images_dir: str | Path,
    masks_dir: str | Path,
    sheet_path: str | Path,
) -> None:
    """The synthesize rule: draw every specimen, write images, masks, both tables and the sheet."""
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    images_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)
    specimens = plan_collection(settings)
    rows: dict[str, list[dict[str, str]]] = {"train": [], "dev": []}
    for specimen in tqdm(specimens, desc="synthesize", unit="img"):
        image, mask = draw(specimen, settings)
        data = encode(image, "JPEG", quality=settings.jpeg_quality)
        filename = f"{specimen.camid}.jpg"
        (images_dir / filename).write_bytes(data)
        (masks_dir / f"{specimen.camid}_mask.png").write_bytes(encode(mask, "PNG"))
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        row = training_row if specimen.table == "train" else reference_row
        rows[specimen.table].append(row(specimen, filename, md5))
    pd.DataFrame(rows["train"]).to_csv(train_path, index=False)
    pd.DataFrame(rows["dev"]).to_csv(dev_path, index=False)
    taxa_table().to_csv(taxa_path, index=False)
    Path(sheet_path).parent.mkdir(parents=True, exist_ok=True)
    sample_sheet(specimens, settings).save(sheet_path)
    sizes = pd.DataFrame(rows["train"]).groupby(["hybrid_stat", "subspecies"]).size()
    log.info("synthetic collection: %d training and %d evaluation images", len(rows["train"]), len(rows["dev"]))
    log.info("training images per class:\n%s", sizes.to_string())
