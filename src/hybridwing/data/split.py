"""Train/val/test splits of the training table with no specimen and no near-duplicate across splits.

Images are grouped by specimen (CAMID) and by perceptual hash: two images whose ``phash`` differ by at
most ``max_hamming`` bits share a group (transitively). The 64-bit phash is too coarse for museum
photographs taken in one fixed layout (distinct specimens of the real training table share identical
64-bit hashes), so the default is the 256-bit hash (``hash_size: 16``). Whole groups are then dealt to the splits,
class by class, so each class is split in the configured proportions. Evaluation tables stay whole.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import imagehash
import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from hybridwing.classes import HYBRID_CLASS
from hybridwing.data.tables import read_metadata

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitSettings:
    """The ``split`` block of the config."""

    fractions: dict[str, float] = field(default_factory=lambda: {"train": 0.7, "val": 0.15, "test": 0.15})
    seed: int = 42
    hash_size: int = 16
    max_hamming: int = 8
    allow_leaks: bool = False

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> SplitSettings:
        fractions = {name: float(block["fractions"][name]) for name in SPLITS}
        if abs(sum(fractions.values()) - 1.0) > 1e-6:
            raise ValueError(f"split.fractions must add up to 1, got {sum(fractions.values()):.3f}")
        return cls(
            fractions=fractions,
            seed=int(block["seed"]),
            hash_size=int(block["hash_size"]),
            max_hamming=int(block["max_hamming"]),
            allow_leaks=bool(block.get("allow_leaks", False)),
        )


def class_labels(metadata: pd.DataFrame) -> pd.Series:
    """The training class of each image: its subspecies, or ``hybrid``."""
    return metadata["subspecies"].where(~metadata["is_hybrid"].astype(bool), HYBRID_CLASS)


def phash_of(path: str, hash_size: int) -> np.ndarray:
    """Perceptual hash of an image as ``hash_size**2 / 64`` unsigned 64-bit words."""
    with Image.open(path) as image:
        bits = imagehash.phash(image.convert("RGB"), hash_size=hash_size).hash.flatten()
    return np.packbits(bits).view(">u8").astype(np.uint64)


def perceptual_hashes(paths: list[str], hash_size: int, threads: int = 1) -> np.ndarray:
    """One row of hash words per image, computed in parallel with a progress bar."""
    with ThreadPoolExecutor(max_workers=max(threads, 1)) as pool:
        rows = pool.map(lambda path: phash_of(path, hash_size), paths)
        hashes = list(tqdm(rows, total=len(paths), desc="phash", unit="img"))
    return np.stack(hashes) if hashes else np.zeros((0, hash_size**2 // 64), dtype=np.uint64)


def near_duplicate_pairs(hashes: np.ndarray, max_hamming: int, preferred: np.ndarray | None = None) -> pd.DataFrame:
    """Pairs ``i < j`` of images whose hashes differ by at most `max_hamming` bits: enough of them
    to join every image to all its near duplicates, searched over distinct hashes, so that copies
    of one image cost what one image costs.

    Images sharing a hash are each paired with that hash's representative (its first `preferred`
    image, else its first image). For two distinct hashes within `max_hamming`, the representatives
    are paired, and so is every image of a hash with no `preferred` image to the other's
    representative: an image near a `preferred` one is paired with one. Where no hash repeats,
    these are all pairs.
    """
    n = len(hashes)
    if n == 0:
        return pd.DataFrame({"i": [], "j": [], "hamming": []}).astype(int)
    distinct, inverse = np.unique(hashes, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    preferred = np.zeros(n, bool) if preferred is None else preferred
    order = np.lexsort((np.arange(n), ~preferred, inverse))  # by hash; preferred, then earlier, first
    starts = np.flatnonzero(np.diff(inverse[order], prepend=-1))
    members = np.split(order, starts[1:])
    representative = order[starts]
    firsts, seconds, distances = [np.arange(n)], [representative[inverse]], [np.zeros(n, int)]
    for u in range(len(distinct) - 1):
        distance = np.bitwise_count(distinct[u] ^ distinct[u + 1 :]).sum(axis=1)
        for v in np.flatnonzero(distance <= max_hamming) + u + 1:
            for one, other in ((u, v), (v, u)):
                joined = members[one] if not preferred[representative[one]] else representative[one : one + 1]
                firsts.append(joined)
                seconds.append(np.full(len(joined), representative[other]))
                distances.append(np.full(len(joined), distance[v - u - 1]))
    first, second = np.concatenate(firsts), np.concatenate(seconds)
    pairs = pd.DataFrame(
        {"i": np.minimum(first, second), "j": np.maximum(first, second), "hamming": np.concatenate(distances)}
    ).astype(int)
    return pairs[pairs["i"] != pairs["j"]].drop_duplicates(["i", "j"]).sort_values(["i", "j"], ignore_index=True)


def connected_groups(n: int, links: list[tuple[int, int]]) -> np.ndarray:
    """Group id per item (the smallest member index) from pairwise links, by union-find."""
    parent = list(range(n))

    def root(item: int) -> int:
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    for a, b in links:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([root(item) for item in range(n)])


def assign_splits(labels: pd.Series, groups: np.ndarray, fractions: dict[str, float], seed: int) -> np.ndarray:
    """Deal whole groups to splits so that every class follows `fractions` as closely as it can.

    Within a class, groups are taken in a seeded random order and each goes to the split furthest
    below its target; the first group of every class goes to train.
    """
    frame = pd.DataFrame({"label": labels.to_numpy(), "group": groups})
    group_label = frame.groupby("group")["label"].agg(lambda values: values.value_counts().index[0])
    group_size = frame.groupby("group").size()
    rng = np.random.default_rng(seed)
    split_of_group: dict[int, str] = {}
    names = list(fractions)
    for label in sorted(group_label.unique()):
        members = group_label.index[group_label == label].to_numpy()
        members = members[rng.permutation(len(members))]
        total = group_size[members].sum()
        counts = dict.fromkeys(names, 0)
        for group in members:
            deficits = [fractions[name] * total - counts[name] for name in names]
            chosen = names[int(np.argmax(deficits))]
            split_of_group[int(group)] = chosen
            counts[chosen] += int(group_size[group])
    return np.array([split_of_group[int(group)] for group in groups])


def split_metadata(
    metadata: pd.DataFrame, hashes: np.ndarray, settings: SplitSettings, train_source: str = "train"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the training table's images; returns (splits, near-duplicate pairs of all tables)."""
    is_train = (metadata["source"] == train_source).to_numpy()
    pairs = near_duplicate_pairs(hashes, settings.max_hamming, preferred=is_train)
    train_index = np.flatnonzero(is_train)
    position = {int(index): k for k, index in enumerate(train_index)}
    links = [(position[i], position[j]) for i, j in zip(pairs["i"], pairs["j"]) if is_train[i] and is_train[j]]
    train = metadata.iloc[train_index]
    same_specimen = train.groupby("camid").indices
    links += [(int(members[0]), int(other)) for members in same_specimen.values() for other in members[1:]]
    groups = connected_groups(len(train), links)
    labels = class_labels(metadata)
    split = metadata["source"].to_numpy(dtype=object).copy()
    split[train_index] = assign_splits(labels.iloc[train_index], groups, settings.fractions, settings.seed)
    group = np.full(len(metadata), -1)
    group[train_index] = train_index[groups]
    splits = pd.DataFrame(
        {
            "image_id": metadata["image_id"],
            "source": metadata["source"],
            "split": split,
            "label": labels,
            "group": [metadata["image_id"].iloc[g] if g >= 0 else "" for g in group],
        }
    )
    duplicates = pd.DataFrame(
        {
            "image_a": metadata["image_id"].to_numpy()[pairs["i"]],
            "split_a": split[pairs["i"]],
            "image_b": metadata["image_id"].to_numpy()[pairs["j"]],
            "split_b": split[pairs["j"]],
            "hamming": pairs["hamming"],
        }
    )
    return splits, duplicates


class LeakError(ValueError):
    """An evaluation image is a near-duplicate of an image of the training table."""


def training_leaks(duplicates: pd.DataFrame) -> pd.DataFrame:
    """The near-duplicate pairs (a `split_metadata` duplicates table) that join an evaluation table's
    image to one of the training table: evaluation_table, evaluation_image, training_image,
    training_split, hamming."""
    in_training = duplicates["split_a"].isin(SPLITS), duplicates["split_b"].isin(SPLITS)
    pairs = duplicates[in_training[0] != in_training[1]]
    a_is_training = pairs["split_a"].isin(SPLITS)
    return pd.DataFrame(
        {
            "evaluation_table": pairs["split_b"].where(a_is_training, pairs["split_a"]),
            "evaluation_image": pairs["image_b"].where(a_is_training, pairs["image_a"]),
            "training_image": pairs["image_a"].where(a_is_training, pairs["image_b"]),
            "training_split": pairs["split_a"].where(a_is_training, pairs["split_b"]),
            "hamming": pairs["hamming"],
        }
    ).reset_index(drop=True)


def describe_leaks(leaks: pd.DataFrame, max_hamming: int) -> list[str]:
    """One line per leak, naming both images."""
    return [
        f"{row.evaluation_table} image {row.evaluation_image!r} is a near-duplicate of training image "
        f"{row.training_image!r} "
        f"({row.training_split} split; phash distance {row.hamming} <= split.max_hamming {max_hamming})"
        for row in leaks.itertuples()
    ]


def split_summary(splits: pd.DataFrame) -> pd.DataFrame:
    """Images per class and split (a table people read in the log and the report)."""
    return splits.pivot_table(index="label", columns="split", values="image_id", aggfunc="count", fill_value=0)


def images_with_splits(metadata_path: str, splits_path: str) -> pd.DataFrame:
    """Every image of metadata.csv with its split and class label from splits.csv."""
    metadata = read_metadata(metadata_path)
    splits = pd.read_csv(splits_path, dtype=str, keep_default_na=False)
    return metadata.merge(splits[["image_id", "split", "label"]], on="image_id", validate="one_to_one")
