"""Augment every training class to at least ``min_per_class`` images, from the TRAIN split only.

Copies are spread evenly over a class's source images (each source is used floor or ceil of
copies/sources times), every copy has its own seed, and the work runs in worker processes: the
result does not depend on how many there are.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image
from tqdm import tqdm

from hybridwing.balance.augment_settings import LIBRARIES, AugmentSettings
from hybridwing.balance.crosses import CrossSettings, compose, is_composite, plan_crosses, wing_gap_row
from hybridwing.classes import HYBRID_CLASS
from hybridwing.data.split import images_with_splits, perceptual_hashes
from hybridwing.segment.background import background_rng, remove_background
from hybridwing.segment.mask_settings import MaskSettings

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = [
    "path",
    "class",
    "class_index",
    "source_image",
    "recipe",
    "seed",
    "synthetic",
    "parent_1",
    "parent_2",
]
PLAN_COLUMNS = ["source_image", "label", "copy", "seed", "library", "partner", "cross", "parent_1", "parent_2"]
HASH_SIZE = 16  # 256-bit phash: the 64-bit one confuses distinct specimens photographed alike


@dataclass(frozen=True)
class BalanceSettings:
    """The ``balance`` block of the config."""

    min_per_class: int = 1000
    library: str = "albumentations"
    seed: int = 0
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    crosses: CrossSettings = field(default_factory=CrossSettings)

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> BalanceSettings:
        values = dict(block)
        values["augment"] = AugmentSettings.from_config(values.get("augment", {}))
        values["crosses"] = CrossSettings.from_config(values.get("crosses", {}))
        return cls(**values)


class EmptyClassError(ValueError):
    """A class has no image in the TRAIN split."""


def class_list(labels: pd.Series) -> list[str]:
    """Subspecies in alphabetical order, then the hybrid class, always last."""
    names = sorted(set(labels) - {HYBRID_CLASS})
    return names + [HYBRID_CLASS]


def copy_seed(base: int, image_id: str, copy: int) -> int:
    return int(
        np.random.SeedSequence([base, zlib.crc32(image_id.encode("utf-8", "surrogateescape")), copy]).generate_state(1)[
            0
        ]
    )


def library_of(settings: BalanceSettings, seed: int) -> str:
    return settings.library if settings.library != "mix" else LIBRARIES[seed % 2]


def plan_copies(train: pd.DataFrame, classes: list[str], settings: BalanceSettings) -> pd.DataFrame:
    """One row per augmented copy: source image, label (class), copy number, seed and library.

    `train` holds the TRAIN split (image_id, label). A class without any image is an error.
    """
    empty = [name for name in classes if not (train["label"] == name).any()]
    if empty:
        raise EmptyClassError(f"class(es) with no image in the TRAIN split: {', '.join(empty)}")
    rng = np.random.default_rng(settings.seed)
    rows = []
    for name in classes:
        sources = sorted(train.loc[train["label"] == name, "image_id"])
        missing = max(0, settings.min_per_class - len(sources))
        order = [sources[i] for i in rng.permutation(len(sources))]
        for j in range(missing):
            image_id, copy = order[j % len(order)], j // len(order)
            seed = copy_seed(settings.seed, image_id, copy)
            rows.append(
                {
                    "source_image": image_id,
                    "label": name,
                    "copy": copy,
                    "seed": seed,
                    "library": library_of(settings, seed),
                }
            )
    return pd.DataFrame(rows, columns=["source_image", "label", "copy", "seed", "library"])


def composable_images(images: pd.DataFrame) -> set[str]:
    """The images (image_id, mask) whose wing mask has a gap between the forewing and hindwing rows."""
    usable = set()
    for row in images.itertuples():
        with Image.open(row.mask) as mask:
            if wing_gap_row(np.asarray(mask) > 0) is not None:
                usable.add(row.image_id)
    return usable


def plan_balance(train: pd.DataFrame, settings: BalanceSettings) -> pd.DataFrame:
    """Every image the balance stage writes: the augmented copies that bring each class to
    `min_per_class` (their parents those of their source), then the synthetic crosses (class
    hybrid, a `partner` giving the hindwings or the band, `cross` its recipe). One table, so any
    shard of it is the same work."""
    parents = train.set_index("image_id")[["parent_1", "parent_2"]]
    copies = plan_copies(train, class_list(train["label"]), settings)
    copies = copies.assign(
        partner="",
        cross="",
        **{name: copies["source_image"].map(parents[name]).to_numpy() for name in ("parent_1", "parent_2")},
    )
    if settings.crosses.per_pair == 0:
        return copies[PLAN_COLUMNS]
    non_hybrids = train[train["label"] != HYBRID_CLASS]
    crosses = plan_crosses(non_hybrids, settings.crosses, settings.seed, composable_images(non_hybrids))
    crosses = crosses.assign(label=HYBRID_CLASS, library=[library_of(settings, seed) for seed in crosses["seed"]])
    return pd.concat([copies, crosses], ignore_index=True)[PLAN_COLUMNS]


_worker: dict[str, Any] = {}


def _start_worker(augment: AugmentSettings, mask_settings: MaskSettings) -> None:
    import torch  # noqa: PLC0415 - only the worker processes need torch

    from hybridwing.balance.augment import Augmenter  # noqa: PLC0415 - the balance rule never augments

    torch.set_num_threads(1)
    _worker["augmenter"] = Augmenter(augment)
    _worker["mask_settings"] = mask_settings


def _read_photo(photo: str, mask_path: str) -> tuple[np.ndarray, np.ndarray]:
    with Image.open(photo) as image, Image.open(mask_path) as mask:
        return np.asarray(image.convert("RGB")), (np.asarray(mask) > 0).astype(np.uint8)


def _composed(
    photo: str, mask_path: str, partner_photo: str, partner_mask: str, recipe: str = "wings", seed: int = 0
) -> tuple[np.ndarray, np.ndarray, str]:
    """The cross `recipe` makes of a photograph and a partner (RGB, 0/1 mask, the recipe `compose`
    used); an error names the two photographs when no recipe can."""
    composed = compose(recipe, *_read_photo(photo, mask_path), *_read_photo(partner_photo, partner_mask), seed)
    if composed is None:
        raise ValueError(
            f"{photo} and {partner_photo} cannot be composed by recipe {recipe} "
            "(no gap between the wing rows, or wings that do not overlap)"
        )
    return composed


def cross_description(recipe: str, photo: str, partner: str) -> str:
    """How a composite was made, for its manifest recipe."""
    if recipe == "band":
        return f"wings of {Path(photo).stem}, a band of {Path(partner).stem}'s"
    return f"forewings of {Path(photo).stem}, hindwings of {Path(partner).stem}"


def _augment_one(task: tuple[str, str, str, int, str, tuple[str, str, str] | None]) -> str:
    """Augment one copy (or compose one cross, then augment it) in a worker process and write it;
    returns its recipe."""
    photo, mask_path, library, seed, target, partner = task
    if partner is None:
        rgb, binary = _read_photo(photo, mask_path)
        cross = ""
    else:
        rgb, binary, used = _composed(photo, mask_path, *partner, seed)
        cross = cross_description(used, photo, partner[0])
    moved_rgb, moved_mask, recipe = _worker["augmenter"](rgb, binary, library, seed)
    if cross:
        recipe = json.dumps({"cross": cross} | json.loads(recipe))
    rng = np.random.default_rng(seed)
    result = remove_background(moved_rgb, moved_mask > 0, _worker["mask_settings"], rng)
    if target.endswith(".jpg"):
        result.save(target, quality=95)
    else:
        result.save(target)
    return recipe


def write_composites(
    images: pd.DataFrame, plan: pd.DataFrame, mask_settings: MaskSettings, out_dir: str | Path
) -> pd.DataFrame:
    """The crosses `plan` names (source_image gives the forewings, partner the hindwings; `images`
    has their photo and mask) as background-removed images, not augmented: image_id, path,
    parent_1, parent_2, source_image, partner."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_id = images.set_index("image_id")
    paths = []
    for row in tqdm(plan.itertuples(), total=len(plan), desc="compose crosses", unit="img"):
        rgb, mask, _ = _composed(
            *by_id.loc[row.source_image, ["photo", "mask"]], *by_id.loc[row.partner, ["photo", "mask"]]
        )
        name = f"{row.source_image}_x_{row.partner}"
        target = out_dir / f"{name}.png"
        remove_background(rgb, mask, mask_settings, background_rng(mask_settings, name)).save(target)
        paths.append(str(target))
    frame = plan[["parent_1", "parent_2", "source_image", "partner"]].copy()
    frame.insert(0, "path", paths)
    frame.insert(0, "image_id", [f"{a}_x_{b}" for a, b in zip(plan["source_image"], plan["partner"])])
    return frame.reset_index(drop=True)


def balance_training_set(
    train: pd.DataFrame,
    settings: BalanceSettings,
    mask_settings: MaskSettings,
    out_dir: str | Path,
    threads: int = 1,
) -> pd.DataFrame:
    """Write the augmented copies and return the manifest (originals first, then copies).

    `train` holds the TRAIN split: image_id, label, photo (original photograph), mask, wings
    (background-removed image).
    """
    return assemble_manifest(
        train, augment_copies(train, plan_balance(train, settings), settings, mask_settings, out_dir, threads)
    )


def augment_copies(
    train: pd.DataFrame,
    plan: pd.DataFrame,
    settings: BalanceSettings,
    mask_settings: MaskSettings,
    out_dir: str | Path,
    threads: int = 1,
) -> pd.DataFrame:
    """Write the copies and crosses `plan` asks for (all of them, or one shard's rows) under
    `out_dir`/<class>/; returns their manifest rows."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".png" if mask_settings.background == "transparent" else ".jpg"
    by_id = train.set_index("image_id")
    tasks, targets = [], []
    for row in plan.itertuples():
        folder = out_dir / row.label
        folder.mkdir(parents=True, exist_ok=True)
        name = (
            f"{row.source_image}_aug{row.copy:03d}"
            if not row.partner
            else f"{row.source_image}_x_{row.partner}_{row.copy:03d}"
        )
        target = str(folder / f"{name}{suffix}")
        source = by_id.loc[row.source_image]
        partner = (by_id.at[row.partner, "photo"], by_id.at[row.partner, "mask"], row.cross) if row.partner else None
        tasks.append((source["photo"], source["mask"], row.library, row.seed, target, partner))
        targets.append(target)
    # fork: spawned workers would re-import __main__, which under Snakemake is the rule's script
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        max(1, threads), context, initializer=_start_worker, initargs=(settings.augment, mask_settings)
    ) as pool:
        recipes = list(tqdm(pool.map(_augment_one, tasks, chunksize=16), total=len(tasks), desc="balance", unit="img"))
    return pd.DataFrame(
        {
            "path": targets,
            "class": plan["label"].to_numpy(),
            "source_image": plan["source_image"].to_numpy(),
            "recipe": recipes,
            "seed": plan["seed"].astype(str).to_numpy(),
            "synthetic": True,
            "parent_1": plan["parent_1"].to_numpy(),
            "parent_2": plan["parent_2"].to_numpy(),
        }
    )


def assemble_manifest(train: pd.DataFrame, copies: pd.DataFrame) -> pd.DataFrame:
    """Originals and copies, by class (hybrid last), originals first within a class."""
    index_of = {name: k for k, name in enumerate(class_list(train["label"]))}
    originals = pd.DataFrame(
        {
            "path": train["wings"],
            "class": train["label"],
            "source_image": train["image_id"],
            "recipe": "original",
            "seed": "",
            "synthetic": False,
            "parent_1": train["parent_1"],
            "parent_2": train["parent_2"],
        }
    )
    manifest = pd.concat([originals, copies.astype({"seed": str})], ignore_index=True)
    manifest["class_index"] = manifest["class"].map(index_of)
    manifest = manifest.sort_values(["class_index", "synthetic", "source_image", "path"], kind="stable")
    return manifest[MANIFEST_COLUMNS].reset_index(drop=True)


def phash_identical(manifest: pd.DataFrame, threads: int) -> int:
    """Augmented images whose 256-bit perceptual hash equals another image's in the manifest."""
    hashes = perceptual_hashes(manifest["path"].tolist(), HASH_SIZE, threads)
    keys = pd.Series([row.tobytes() for row in hashes])
    repeated = keys.duplicated(keep=False).to_numpy()
    return int((repeated & manifest["synthetic"].to_numpy()).sum())


def plot_class_counts(before: pd.Series, after: pd.Series, path: str | Path) -> None:
    figure = Figure(figsize=(max(6, 0.5 * len(after)), 3.6))
    axis = figure.subplots()
    positions = np.arange(len(after))
    axis.bar(positions - 0.2, before.reindex(after.index, fill_value=0), width=0.4, label="TRAIN split")
    axis.bar(positions + 0.2, after, width=0.4, label="after balancing")
    axis.set_xticks(positions, after.index, rotation=60, ha="right")
    axis.set_yscale("log")
    axis.set_ylabel("images")
    axis.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncols=2, frameon=False)  # above the axes: never over a bar
    figure.tight_layout()
    figure.savefig(path, dpi=110, bbox_inches="tight")


def summarise(manifest: pd.DataFrame, train: pd.DataFrame, identical: int) -> dict[str, Any]:
    before = train["label"].value_counts()
    after = manifest.groupby("class", sort=False).size()
    return {
        "classes": list(after.index),
        "before": {name: int(before.get(name, 0)) for name in after.index},
        "after": {name: int(count) for name, count in after.items()},
        "augmented": int(manifest["synthetic"].sum()),
        "crosses": int(is_composite(manifest["recipe"]).sum()),
        "phash_identical_augmented": identical,
    }


def write_summary(summary: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(summary, indent=2))


def training_images(
    metadata_path: str, splits_path: str, qc_path: str, wings_path: str, splits: tuple[str, ...] = ("train",)
) -> pd.DataFrame:
    """The images of `splits` (by default the TRAIN split's, and only those) with photograph, mask
    and background-removed image."""
    images = images_with_splits(metadata_path, splits_path)
    train = images[images["split"].isin(splits)].rename(columns={"path": "photo"})
    qc = pd.read_csv(qc_path, keep_default_na=False)[["image_id", "mask"]]
    wings = pd.read_csv(wings_path, keep_default_na=False)[["image_id", "path"]].rename(columns={"path": "wings"})
    return train.merge(qc, on="image_id", validate="one_to_one").merge(wings, on="image_id", validate="one_to_one")
