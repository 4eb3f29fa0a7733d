"""Splits of the real training table: stratified, reproducible, and leak-free."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hybridwing.data.split import (
    SplitSettings,
    connected_groups,
    near_duplicate_pairs,
    perceptual_hashes,
    split_metadata,
)
from hybridwing.data.tables import normalise_table

SETTINGS = SplitSettings(fractions={"train": 0.7, "val": 0.15, "test": 0.15}, seed=7, hash_size=16, max_hamming=8)


@pytest.fixture(scope="module")
def metadata(heliconius, train_rows, dev_rows, taxa, tmp_path_factory):
    """The real train and dev tables, plus planted leaks: re-encoded copies and a second view of a specimen."""
    frames = []
    for name, rows in {"train": train_rows, "dev": dev_rows}.items():
        table = normalise_table(rows, name, f"{name}.csv", taxa)
        table["path"] = [str(heliconius / url) for url in table["file_url"]]
        frames.append(table)
    train = frames[0]
    folder = tmp_path_factory.mktemp("copies")
    planted = []
    for k, row in enumerate(train[~train["is_hybrid"]].sample(6, random_state=1).itertuples()):
        image = Image.open(row.path).convert("RGB").resize((200, 200))
        copy = folder / f"copy{k}.jpg"
        image.save(copy, quality=60)
        planted.append(row._asdict() | {"image_id": f"copy{k}", "camid": f"NEW{k}", "path": str(copy)})
    other = train.iloc[100]
    planted.append(other.to_dict() | {"image_id": "second_view", "camid": train.iloc[200]["camid"]})
    planted_frame = pd.DataFrame(planted).drop(columns=["Index"], errors="ignore")
    return pd.concat([train, planted_frame, frames[1]], ignore_index=True)


@pytest.fixture(scope="module")
def hashes(metadata):
    return perceptual_hashes(metadata["path"].tolist(), SETTINGS.hash_size, threads=2)


def test_no_specimen_or_near_duplicate_crosses_splits(metadata, hashes):
    splits, duplicates = split_metadata(metadata, hashes, SETTINGS)
    train = splits[metadata["source"] == "train"]
    assert train.groupby(metadata["camid"])["split"].nunique().max() == 1
    within_train = duplicates[
        duplicates["split_a"].isin(["train", "val", "test"]) & duplicates["split_b"].isin(["train", "val", "test"])
    ]
    assert len(within_train) >= 6
    assert (within_train["split_a"] == within_train["split_b"]).all()
    split_of = dict(zip(splits["image_id"], splits["split"]))
    for k in range(6):
        original = metadata.loc[metadata["image_id"] == f"copy{k}", "filename"].iloc[0].rsplit(".", 1)[0]
        assert split_of[f"copy{k}"] == split_of[original]
    assert split_of["second_view"] == split_of[metadata.iloc[200]["image_id"]]


def test_evaluation_tables_stay_whole(metadata, hashes):
    splits, _ = split_metadata(metadata, hashes, SETTINGS)
    dev = splits[metadata["source"] == "dev"]
    assert len(dev) == 1156 and (dev["split"] == "dev").all()
    assert (splits.loc[metadata["source"] == "train", "split"].isin(["train", "val", "test"])).all()


def test_classes_follow_the_fractions(metadata, hashes):
    splits, _ = split_metadata(metadata, hashes, SETTINGS)
    train = splits[metadata["source"] == "train"]
    shares = pd.crosstab(train["label"], train["split"], normalize="index")
    for label in ("lativitta", "cyrbia", "notabilis", "hybrid"):
        assert shares.loc[label, "train"] == pytest.approx(0.7, abs=0.03)
        assert shares.loc[label, "val"] == pytest.approx(0.15, abs=0.03)
    tiny = train[train["label"] == "reductimacula"]
    assert set(tiny["split"]) == {"train"}


def test_same_seed_same_splits_other_seed_other_splits(metadata, hashes):
    first, _ = split_metadata(metadata, hashes, SETTINGS)
    second, _ = split_metadata(metadata, hashes, SETTINGS)
    other, _ = split_metadata(metadata, hashes, SplitSettings(SETTINGS.fractions, 8, 16, 8))
    assert first.equals(second)
    assert not first["split"].equals(other["split"])


def test_pairs_match_brute_force():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, size=(300, 4), dtype=np.uint64)
    hashes[10] = hashes[20]
    hashes[10, 0] ^= np.uint64(0b1011)
    pairs = near_duplicate_pairs(hashes, 100)
    expected = {
        (i, j)
        for i in range(300)
        for j in range(i + 1, 300)
        if sum(bin(int(a ^ b)).count("1") for a, b in zip(hashes[i], hashes[j])) <= 100
    }
    assert set(zip(pairs["i"], pairs["j"])) == expected
    close = near_duplicate_pairs(hashes, 3)
    assert close[["i", "j", "hamming"]].values.tolist() == [[10, 20, 3]]


def test_copies_of_one_image_cost_what_one_image_costs():
    """10,000 rows of one photograph (and a near copy in an evaluation table) are one group in one
    split, found in seconds without listing 50 million pairs; every evaluation image near a
    training image is still paired with one, so the leak check sees each."""
    import time

    from hybridwing.data.split import training_leaks

    rng = np.random.default_rng(1)
    others = rng.integers(0, 2**63, size=(200, 4), dtype=np.uint64)
    copy = others[0].copy()
    copy[0] ^= np.uint64(0b11)  # two bits from the copied photograph
    hashes = np.vstack([np.repeat(others[:1], 10_000, axis=0), others[1:], [copy, copy]])
    n = len(hashes)
    source = np.array(["train"] * (n - 2) + ["dev", "dev"])
    metadata = pd.DataFrame(
        {
            "image_id": [f"i{k}" for k in range(n)],
            "source": source,
            "camid": [f"c{k}" for k in range(n)],
            "subspecies": rng.choice(["alba", "radiata"], n),
            "is_hybrid": False,
        }
    )
    started = time.perf_counter()
    splits, duplicates = split_metadata(metadata, hashes, SETTINGS)
    assert time.perf_counter() - started < 10
    assert len(duplicates) < 2 * n
    copies = splits.iloc[:10_000]
    assert copies["split"].nunique() == 1 and copies["group"].nunique() == 1
    leaks = training_leaks(duplicates)
    assert sorted(leaks["evaluation_image"]) == [f"i{n - 2}", f"i{n - 1}"]
    assert set(leaks["training_image"]) <= set(copies["image_id"])


def test_groups_are_transitive():
    assert connected_groups(6, [(0, 3), (3, 5), (1, 2)]).tolist() == [0, 1, 1, 0, 4, 0]


def test_fractions_must_add_up():
    with pytest.raises(ValueError, match="add up to 1"):
        SplitSettings.from_config(
            {"fractions": {"train": 0.8, "val": 0.15, "test": 0.15}, "seed": 1, "hash_size": 16, "max_hamming": 8}
        )


def test_an_evaluation_image_seen_in_training_stops_the_split_unless_allowed(
    heliconius, train_rows, dev_rows, taxa, tmp_path, caplog
):
    """A training photograph listed again in an evaluation table (phash distance 0)
    would be scored as if unseen: the split refuses, naming both images; split.allow_leaks lets it
    through with a warning, and the score summary counts it."""
    from hybridwing.data.split import training_leaks
    from hybridwing.data.steps import split_step

    train = normalise_table(train_rows.head(30), "train", "train.csv", taxa)
    dev = normalise_table(dev_rows.head(10), "dev", "dev.csv", taxa)
    train["path"] = [str(heliconius / url) for url in train["file_url"]]
    dev["path"] = [str(heliconius / url) for url in dev["file_url"]]
    dev.loc[3, "path"] = train.loc[5, "path"]  # the same photograph under another name
    metadata = tmp_path / "metadata.csv"
    pd.concat([train, dev], ignore_index=True).to_csv(metadata, index=False)
    settings = {"fractions": {"train": 0.7, "val": 0.15, "test": 0.15}, "seed": 7, "hash_size": 16, "max_hamming": 8}
    outputs = [str(tmp_path / name) for name in ("splits.csv", "duplicates.csv", "summary.csv")]
    with pytest.raises(ValueError) as caught:
        split_step(str(metadata), *outputs, settings=settings, threads=1)
    message = str(caught.value)
    assert (
        f"dev image {dev.loc[3, 'image_id']!r} is a near-duplicate of training image {train.loc[5, 'image_id']!r}"
        in message
    )
    assert "phash distance 0" in message and "split.allow_leaks" in message and not (tmp_path / "splits.csv").exists()

    with caplog.at_level("WARNING"):
        split_step(str(metadata), *outputs, settings=settings | {"allow_leaks": True}, threads=1)
    assert "allowed by split.allow_leaks" in caplog.text
    leaks = training_leaks(pd.read_csv(outputs[1], keep_default_na=False))
    assert leaks[["evaluation_table", "evaluation_image", "training_image"]].values.tolist() == [
        ["dev", dev.loc[3, "image_id"], train.loc[5, "image_id"]]
    ]
