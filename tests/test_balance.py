"""Balancing: even spread over sources, determinism, the mask travels, and TRAIN images only."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hybridwing.balance.augment import Augmenter
from hybridwing.balance.augment_settings import AugmentSettings
from hybridwing.balance.balance import (
    BalanceSettings,
    EmptyClassError,
    balance_training_set,
    class_list,
    plan_balance,
    plan_copies,
)
from hybridwing.balance.crosses import (
    BAND_SHARE,
    CrossSettings,
    compose_cross,
    paste_band,
    plan_crosses,
    wing_gap_row,
)
from hybridwing.data.split import SplitSettings, perceptual_hashes, split_metadata
from hybridwing.data.tables import normalise_table
from hybridwing.segment.background import remove_background
from hybridwing.segment.mask_settings import MaskSettings
from hybridwing.segment.teacher import wing_pixels
from hybridwing.synthetic.collection import SyntheticSettings, draw, plan_collection


def test_every_real_class_reaches_the_minimum_evenly(heliconius, train_rows, taxa):
    table = normalise_table(train_rows, "train", "train.csv", taxa)
    table["path"] = [str(heliconius / url) for url in table["file_url"]]
    hashes = perceptual_hashes(table["path"].tolist(), 16, threads=2)
    splits, _ = split_metadata(table, hashes, SplitSettings({"train": 0.7, "val": 0.15, "test": 0.15}))
    train = splits[splits["split"] == "train"]
    classes = class_list(train["label"])
    assert classes[-1] == "hybrid" and len(classes) == 15
    plan = plan_copies(train, classes, BalanceSettings())
    totals = train["label"].value_counts() + plan["label"].value_counts().reindex(train["label"].unique(), fill_value=0)
    assert (totals >= 1000).all()
    uses = plan.groupby("source_image").size()
    sources = train["label"].value_counts()
    for image_id, count in uses.items():
        label = train.set_index("image_id").at[image_id, "label"]
        assert count <= math.ceil(1000 / sources[label]) + 1
    assert set(plan["source_image"]) <= set(train["image_id"])
    assert not set(plan["source_image"]) & set(splits.loc[splits["split"] != "train", "image_id"])


def test_a_class_with_one_image_works_and_an_empty_class_is_named():
    train = pd.DataFrame({"image_id": ["a", "b", "c"], "label": ["solo", "pair", "pair"]})
    plan = plan_copies(train, ["pair", "solo", "hybrid"][:2], BalanceSettings(min_per_class=10))
    assert (plan["label"] == "solo").sum() == 9 and (plan["source_image"] == "a").sum() == 9
    assert plan.loc[plan["label"] == "pair", "source_image"].value_counts().tolist() == [4, 4]
    with pytest.raises(EmptyClassError, match="hybrid"):
        plan_copies(train, class_list(train["label"]), BalanceSettings(min_per_class=10))


@pytest.fixture(scope="module")
def photographs(tmp_path_factory):
    """Synthetic photographs, wing masks and white-background wings for three classes."""
    folder = tmp_path_factory.mktemp("train")
    settings = SyntheticSettings(seed=5, image_size=96)
    chosen = {"radiata": [], "alba": [], "hybrid": []}
    for specimen in plan_collection(settings):
        label = "hybrid" if specimen.parents else specimen.subspecies
        if label in chosen and len(chosen[label]) < (1 if label == "hybrid" else 3) and specimen.table == "train":
            chosen[label].append(specimen)
    rows = []
    for label, specimens in chosen.items():
        for specimen in specimens:
            image, truth = draw(specimen, settings)
            mask = wing_pixels(truth)
            photo, mask_path, wings = (folder / f"{specimen.camid}{suffix}" for suffix in (".jpg", "_m.png", "_w.png"))
            Image.fromarray(image).save(photo, quality=95)
            Image.fromarray(mask * 255).save(mask_path)
            remove_background(image, mask > 0, MaskSettings(), np.random.default_rng(0)).save(wings)
            parents = specimen.parents or ("", "")
            rows.append(
                {
                    "image_id": specimen.camid,
                    "label": label,
                    "species": specimen.species,
                    "parent_1": parents[0],
                    "parent_2": parents[1],
                    "photo": str(photo),
                    "mask": str(mask_path),
                    "wings": str(wings),
                }
            )
    return pd.DataFrame(rows)


def files_digest(paths) -> list[str]:
    return [hashlib.sha256(open(path, "rb").read()).hexdigest() for path in paths]


@pytest.mark.parametrize("library", ["albumentations", "torchvision", "mix"])
def test_same_seed_same_manifest_and_images_whatever_the_workers(photographs, tmp_path, library):
    settings = BalanceSettings(min_per_class=8, library=library, seed=3)
    one = balance_training_set(photographs, settings, MaskSettings(), tmp_path / "one", threads=1)
    two = balance_training_set(photographs, settings, MaskSettings(), tmp_path / "two", threads=2)
    assert one.drop(columns="path").equals(two.drop(columns="path"))
    assert files_digest(one["path"][one["synthetic"]]) == files_digest(two["path"][two["synthetic"]])
    assert one.groupby("class").size().to_dict() == {"alba": 8, "radiata": 8, "hybrid": 8}
    assert one.drop_duplicates("class")["class"].tolist() == ["alba", "radiata", "hybrid"]
    assert one["class_index"].max() == 2 and (one.loc[one["class"] == "hybrid", "class_index"] == 2).all()
    assert set(one.loc[one["synthetic"], "recipe"].map(lambda r: r.split('"library": "')[1].split('"')[0])) <= {
        "albumentations",
        "torchvision",
    }


@pytest.mark.parametrize("library", ["albumentations", "torchvision"])
def test_the_mask_travels_so_no_black_corners(photographs, library):
    strong = AugmentSettings(rotation=40, scale=(0.7, 1.3), translate=0.15, shear=10, grid_distortion=1.0, elastic=1.0)
    augment = Augmenter(strong)
    row = photographs.iloc[0]
    rgb = np.asarray(Image.open(row["photo"]).convert("RGB"))
    mask = (np.asarray(Image.open(row["mask"])) > 0).astype(np.uint8)
    for seed in range(5):
        moved_rgb, moved_mask, recipe = augment(rgb, mask, library, seed)
        result = np.asarray(remove_background(moved_rgb, moved_mask > 0, MaskSettings(), np.random.default_rng(seed)))
        assert (result[moved_mask == 0] == 255).all()
        assert 0.3 < moved_mask.sum() / mask.sum() < 2.0
        assert library in recipe


def test_vertical_flip_is_off_by_default():
    assert AugmentSettings().vflip is False and AugmentSettings().hue == 0.0


def test_a_cross_is_made_of_the_two_sources_wings_and_background_only(photographs):
    """Above the gap, the first photograph's forewing pixels exactly; below it, the second's
    hindwing pixels (moved); everywhere else nothing (the background is painted later): no seam, no board."""
    radiata, alba = (photographs[photographs["label"] == name].iloc[0] for name in ("radiata", "alba"))
    rgb_a, rgb_b = (np.asarray(Image.open(row["photo"]).convert("RGB")) for row in (radiata, alba))
    mask_a, mask_b = ((np.asarray(Image.open(row["mask"])) > 0) for row in (radiata, alba))
    gap_a, gap_b = wing_gap_row(mask_a), wing_gap_row(mask_b)
    assert gap_a is not None and gap_b is not None and not mask_a[gap_a].any()
    rgb, mask = compose_cross(rgb_a, mask_a, rgb_b, mask_b)
    mask = mask.astype(bool)
    assert np.array_equal(mask[:gap_a], mask_a[:gap_a]) and np.array_equal(
        rgb[:gap_a][mask[:gap_a]], rgb_a[:gap_a][mask_a[:gap_a]]
    )
    assert (rgb[~mask] == 0).all()
    hind_pixels = {tuple(p) for p in rgb_b[gap_b:][mask_b[gap_b:]]}
    assert all(tuple(p) in hind_pixels for p in rgb[gap_a:][mask[gap_a:]]), (
        "every lower wing pixel is one of B's hindwing pixels"
    )
    assert 0.5 < mask[gap_a:].sum() / mask_b[gap_b:].sum() <= 1.0
    board = np.zeros_like(mask_a)
    assert compose_cross(rgb_a, board, rgb_b, mask_b) is None


def test_a_band_cross_keeps_one_outline_and_takes_a_band_of_the_other_wings(photographs, tmp_path):
    """The band recipe: outside the band the first photograph's wing pixels exactly, inside
    it only the second's wing pixels (moved) where both are wing, nothing outside the first's
    outline; recipes alternate per pair and the manifest says which made each composite."""
    radiata, alba = (photographs[photographs["label"] == name].iloc[0] for name in ("radiata", "alba"))
    rgb_a, rgb_b = (np.asarray(Image.open(row["photo"]).convert("RGB")) for row in (radiata, alba))
    mask_a, mask_b = ((np.asarray(Image.open(row["mask"])) > 0) for row in (radiata, alba))
    rgb, mask = paste_band(rgb_a, mask_a, rgb_b, mask_b, start=0.0)  # across the forewings
    mask = mask.astype(bool)
    assert np.array_equal(mask, mask_a) and (rgb[~mask] == 0).all()
    changed = (rgb != rgb_a).any(-1) & mask
    rows = np.flatnonzero(changed.any(axis=1))
    wing_rows = np.flatnonzero(mask_a.any(axis=1))
    assert rows[-1] - rows[0] + 1 <= round(BAND_SHARE * (wing_rows[-1] - wing_rows[0] + 1)), "one band of rows"
    donor_pixels = {tuple(p) for p in rgb_b[mask_b]}
    assert changed.sum() > 0.05 * mask_a.sum() and all(tuple(p) in donor_pixels for p in rgb[changed])
    assert paste_band(rgb_a, mask_a, rgb_b, np.zeros_like(mask_b), start=0.5) is None

    settings = BalanceSettings(min_per_class=4, seed=2, crosses=CrossSettings(per_pair=4, recipes=("wings", "band")))
    crosses = plan_balance(photographs, settings).query("partner != ''")
    assert crosses["cross"].tolist() == ["wings", "band", "wings", "band"]
    assert crosses["parent_1"].nunique() == 2, "both orders of the parents"
    manifest = balance_training_set(photographs, settings, MaskSettings(), tmp_path / "out", threads=1)
    recipes = manifest.loc[manifest["recipe"].str.startswith('{"cross"'), "recipe"].map(
        lambda r: json.loads(r)["cross"]
    )
    assert recipes.str.contains("a band of").sum() == 2 and recipes.str.startswith("forewings of").sum() == 2
    with pytest.raises(ValueError, match="balance.crosses.recipes: \\['stripes'\\]"):
        CrossSettings.from_config({"per_pair": 2, "recipes": ["stripes"]})


def test_a_pair_no_band_can_join_is_composed_by_wings_and_the_manifest_says_so(photographs, tmp_path):
    """Wings whose boxes, made one, never overlap (one photograph's wings top right and
    bottom left, the other's top left and bottom right) give no band; their composites are made by
    the wings recipe, the balance does not stop, and each manifest row names the recipe used."""
    rows = photographs.groupby("label").head(1).copy()
    masks = {}
    for row in rows[rows["label"] != "hybrid"].itertuples():
        mask = np.zeros((96, 96), np.uint8)
        top, bottom = (slice(55, 85), slice(10, 40)) if row.label == "radiata" else (slice(10, 40), slice(55, 85))
        mask[10:35, top], mask[50:80, bottom] = 255, 255
        path = tmp_path / f"{row.image_id}_corners.png"
        Image.fromarray(mask).save(path)
        rows.loc[row.Index, "mask"], masks[row.label] = str(path), mask > 0
    rgb = np.zeros((96, 96, 3), np.uint8)
    assert paste_band(rgb, masks["radiata"], rgb, masks["alba"], start=0.0) is None
    settings = BalanceSettings(min_per_class=1, seed=2, crosses=CrossSettings(per_pair=2, recipes=("band",)))
    manifest = balance_training_set(rows, settings, MaskSettings(), tmp_path / "out", threads=1)
    made = manifest.loc[manifest["recipe"].str.startswith('{"cross"'), "recipe"]
    crosses = made.map(lambda r: json.loads(r)["cross"])
    assert len(crosses) == 2 and crosses.str.startswith("forewings of").all()


def test_crosses_are_planned_from_train_photographs_of_one_species_and_recorded(photographs, tmp_path):
    """Parents recorded in the manifest, both orders, excluded pairs never composed, the
    composites written with the background painted (white), and no source outside the table given
    (the TRAIN split: `training_images` hands only those)."""
    settings = BalanceSettings(min_per_class=4, seed=2, crosses=CrossSettings(per_pair=4))
    plan = plan_balance(photographs, settings)
    crosses = plan[plan["partner"] != ""]
    assert len(crosses) == 4 and set(crosses["label"]) == {"hybrid"}
    assert (
        sorted(map(tuple, crosses[["parent_1", "parent_2"]].values.tolist()))
        == [("alba", "radiata")] * 2 + [("radiata", "alba")] * 2
    )
    by_id = photographs.set_index("image_id")["label"]
    assert (crosses["source_image"].map(by_id) == crosses["parent_1"]).all() and (
        crosses["partner"].map(by_id) == crosses["parent_2"]
    ).all()
    assert (
        plan_balance(photographs, BalanceSettings(min_per_class=4, crosses=CrossSettings(4, (("alba", "radiata"),))))[
            "partner"
        ]
        .eq("")
        .all()
    )

    manifest = balance_training_set(photographs, settings, MaskSettings(), tmp_path / "out", threads=1)
    made = manifest[manifest["recipe"].str.startswith('{"cross"')]
    assert len(made) == 4 and set(made["class"]) == {"hybrid"} and set(made["parent_1"]) == {"alba", "radiata"}
    for path in made["path"]:
        pixels = np.asarray(Image.open(path).convert("L")).astype(int)
        border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
        assert (border >= 240).mean() > 0.9, "the background is painted white, no board"
    copies = manifest[manifest["synthetic"] & ~manifest.index.isin(made.index)]
    assert (copies.loc[copies["class"] == "hybrid", "parent_1"] != "").all(), "a real hybrid's copies keep its parents"


def small_train() -> pd.DataFrame:
    """TRAIN non-hybrids of two subspecies of one species and one of another."""
    labels = ["malleti"] * 3 + ["lativitta"] * 3 + ["cyrbia"] * 3
    species = ["erato"] * 6 + ["melpomene"] * 3
    return pd.DataFrame({"image_id": [f"i{k}" for k in range(9)], "label": labels, "species": species})


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        (["malleti", "lativita"], "'lativita' is no subspecies of the TRAIN split"),
        (["Malleti", "lativitta"], "'Malleti' is no subspecies of the TRAIN split (did you mean 'malleti'?)"),
        (["malleti", "malleti"], "a subspecies paired with itself"),
        (["malleti", "cyrbia"], "['cyrbia', 'malleti']: two species (melpomene, erato), never composed"),
    ],
    ids=["unknown", "wrong-case", "self-pair", "two-species"],
)
def test_a_cross_exclusion_that_names_nothing_real_is_refused(pair, expected):
    settings = CrossSettings.from_config({"per_pair": 2, "exclude": [pair]})
    train = small_train()
    with pytest.raises(ValueError, match="balance.crosses.exclude") as refused:
        plan_crosses(train, settings, 0, set(train["image_id"]))
    assert expected in str(refused.value)
    fine = CrossSettings.from_config({"per_pair": 2, "exclude": [["lativitta", "malleti"]]})
    assert plan_crosses(train, fine, 0, set(train["image_id"])).empty, "the one pair of one species is excluded"
