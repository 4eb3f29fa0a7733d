"""The synthetic collection: deterministic, exact masks, and tables the real loader accepts."""

from __future__ import annotations

import hashlib
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hybridwing.data.tables import Taxa, normalise_table, read_csv_table
from hybridwing.synthetic.collection import SyntheticSettings, class_sizes, plan_collection, write_collection
from hybridwing.synthetic.patterns import BY_NAME, SIGNAL_PARENTS, cross, vary
from hybridwing.synthetic.render import LABEL, RULER, WING_CLASSES, draw_label, draw_ruler, draw_wings, wing_layout

SMALL = SyntheticSettings(
    seed=3,
    image_size=96,
    train_images=60,
    tail_ratio=10,
    train_hybrids=4,
    eval={
        "major": {"non_hybrid": 4, "hybrid": 4},
        "minor": {"non_hybrid": 4, "hybrid": 3},
        "mimic": {"non_hybrid": 4, "hybrid": 3},
    },
)


def generate(folder: Path, settings: SyntheticSettings = SMALL) -> Path:
    write_collection(
        settings,
        folder / "train.csv",
        folder / "dev.csv",
        folder / "taxa.csv",
        folder / "images",
        folder / "masks",
        folder / "sheet.png",
    )
    return folder


def digest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("synthetic"))


def test_same_seed_gives_identical_bytes(collection, tmp_path):
    again = digest(generate(tmp_path))
    assert again == digest(collection)
    assert len(again) == 2 * len(plan_collection(SMALL)) + 4


def test_another_seed_gives_other_images(collection, tmp_path):
    other = generate(tmp_path, SyntheticSettings(**{**SMALL.__dict__, "seed": 4}))
    first = sorted((collection / "images").iterdir())[0]
    assert first.read_bytes() != (other / "images" / first.name).read_bytes()


def test_mask_holds_exactly_the_drawn_pixels():
    rng = np.random.default_rng(0)
    size = 160
    canvas = np.full((size, size, 3), np.nan, np.float32)
    mask = np.zeros((size, size), np.uint8)
    draw_ruler(canvas, mask, rng)
    draw_label(canvas, mask, rng)
    pattern = vary(BY_NAME["radiata"].pattern, rng)
    draw_wings(canvas, mask, wing_layout(size, rng), pattern, pale=True)
    painted = ~np.isnan(canvas).any(axis=2)
    assert np.array_equal(painted, mask > 0)
    for class_id in (*WING_CLASSES, RULER, LABEL):
        assert (mask == class_id).sum() > 50
    wings = np.isin(mask, WING_CLASSES)
    assert set(np.unique(mask[~wings])) <= {0, RULER, LABEL}


def test_saved_masks_match_the_layout(collection):
    mask = np.asarray(Image.open(sorted((collection / "masks").iterdir())[0]))
    assert mask.shape == (96, 96) and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, 1, 2, 3, 4, RULER, LABEL}
    ys, xs = np.nonzero(mask == 1)
    assert xs.mean() < 48 and ys.mean() < 40
    ys, xs = np.nonzero(mask == 4)
    assert xs.mean() > 48 and ys.mean() > 40


def test_tables_load_through_the_real_loader(collection):
    taxa = Taxa.read(collection / "taxa.csv")
    train = normalise_table(
        read_csv_table((collection / "train.csv").read_bytes(), "train.csv"), "train", "train.csv", taxa
    )
    dev = normalise_table(read_csv_table((collection / "dev.csv").read_bytes(), "dev.csv"), "dev", "dev.csv", taxa)
    hybrids = train[train["is_hybrid"]]
    assert len(hybrids) == 4
    assert {tuple(sorted(p)) for p in hybrids[["parent_1", "parent_2"]].to_numpy()} == {tuple(sorted(SIGNAL_PARENTS))}
    counts = dev.groupby(["ssp_indicator", "is_hybrid"]).size()
    assert counts.to_dict() == {
        ("major", False): 4,
        ("major", True): 4,
        ("minor", False): 4,
        ("minor", True): 3,
        ("mimic", False): 4,
        ("mimic", True): 3,
    }
    assert set(dev.loc[dev["ssp_indicator"] == "mimic", "species"]) == {"melpomene_like"}
    minor_pairs = dev[(dev["ssp_indicator"] == "minor") & dev["is_hybrid"]][["parent_1", "parent_2"]]
    assert not any(set(pair) == set(SIGNAL_PARENTS) for pair in minor_pairs.to_numpy())
    for row in train.head(5).itertuples():
        assert hashlib.md5((collection / row.file_url).read_bytes(), usedforsecurity=False).hexdigest() == row.md5


def test_class_sizes_have_a_long_tail():
    sizes = class_sizes(640, 40)
    assert max(sizes.values()) / min(sizes.values()) == pytest.approx(40, rel=0.15)
    assert sum(sizes.values()) == pytest.approx(640, abs=5)
    assert sorted(sizes, key=sizes.get, reverse=True)[:3] == ["radiata", "rubra", "alba"]


def test_hybrids_inherit_their_parents_elements():
    rng = np.random.default_rng(5)
    first, second = BY_NAME["radiata"].pattern, BY_NAME["alba"].pattern
    seen = set()
    for _ in range(50):
        child = cross(first, second, rng)
        for field in fields(child):
            value, a, b = getattr(child, field.name), getattr(first, field.name), getattr(second, field.name)
            if value == a:
                seen.add("first")
            elif value == b:
                seen.add("second")
            else:
                seen.add("intermediate")
                if isinstance(value, float):
                    assert min(a, b) <= value <= max(a, b)
    assert seen == {"first", "second", "intermediate"}


def test_sheet_shows_sixteen_samples(collection):
    sheet = Image.open(collection / "sheet.png")
    assert sheet.size == (4 * 96, 4 * (96 + 16))
    tiles = np.asarray(sheet)[:96, : 4 * 96].reshape(96, 4, 96, 3).transpose(1, 0, 2, 3)
    assert len({tile.tobytes() for tile in tiles}) == 4
