"""The BioCLIP path offline: a local open_clip ViT-B-16 checkpoint in the hub's folder layout
(open_clip_config.json and the weights file), fine-tuned as the real default would be."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import torch
from conftest import BIOCLIP_MEAN as MEAN
from conftest import BIOCLIP_STD as STD
from PIL import Image
from safetensors.torch import load_file

from hybridwing.finetune.cache import TokenFeed
from hybridwing.finetune.train import FinetuneSettings, ImageFeed, finetune, predict_logits
from hybridwing.model.folder import write_model_folder
from hybridwing.model.inference import PhotographClassifier, embed_files
from hybridwing.model.preprocess import load_image
from hybridwing.review.embed import frozen_features
from hybridwing.review.steps import frozen_backbone
from hybridwing.score.export import export_submission
from hybridwing.score.predictor import Predictor
from hybridwing.segment.mask_settings import MaskSettings
from hybridwing.segment.unet import UnetSettings, build_unet, save_checkpoint


def test_a_local_bioclip_folder_fine_tunes_only_the_last_two_blocks_and_exports(bioclip_folder, heliconius, tmp_path):
    paths = sorted(str(p) for p in (heliconius / "images").glob("*.jpg"))[:18]
    table = pd.DataFrame(
        {"image_id": [f"i{k}" for k in range(18)], "path": paths, "class_index": [k % 3 for k in range(18)]}
    )
    table["class"] = table["class_index"].map(dict(enumerate(["cyrbia", "lativitta", "hybrid"])))
    table["source_image"] = table["image_id"]
    train, val = table.iloc[:12].reset_index(drop=True), table.iloc[12:].reset_index(drop=True)
    classes = ["cyrbia", "lativitta", "hybrid"]
    settings = FinetuneSettings(
        model=str(bioclip_folder),
        unfrozen_blocks=2,
        token_cache=True,
        backbone_lr=1e-4,
        head_lr=1e-2,
        batch_size=6,
        epochs=1,
        patience=2,
    )
    result = finetune(train, val, classes, settings, tmp_path / "ck.pt", threads=1, cache_dir=tmp_path / "cache")

    backbone = result.backbone
    assert backbone.pretrained and backbone.source == str(bioclip_folder)
    assert np.allclose(backbone.mean, MEAN) and np.allclose(backbone.std, STD)
    assert isinstance(result.val_feed, TokenFeed) and (tmp_path / "cache" / "train.npy").is_file()

    original = {
        name: tensor
        for name, tensor in load_file(bioclip_folder / "open_clip_model.safetensors").items()
        if name.startswith("visual.")
    }
    trained = result.model.state_dict()
    changed = {name for name, tensor in original.items() if not torch.equal(trained[name], tensor)}
    last_two = ("visual.transformer.resblocks.10.", "visual.transformer.resblocks.11.")
    tower_output = ("visual.ln_post.", "visual.proj")  # the tower's output, trained with the head
    assert len(original) == sum(name.startswith("visual.") for name in trained), "every tower tensor was compared"
    assert all(name.startswith(last_two + tower_output) for name in changed), sorted(changed)[:5]
    assert any(name.startswith(last_two[0]) for name in changed) and any(
        name.startswith(last_two[1]) for name in changed
    )

    unet_settings = UnetSettings(image_size=64, decoder_channels=(16, 16, 8, 8))
    save_checkpoint(build_unet(unet_settings), unet_settings, tmp_path / "unet.pt")
    write_model_folder(
        tmp_path / "model",
        [result.model.state_dict()],
        classes,
        result.backbone,
        asdict(settings),
        tmp_path / "unet.pt",
        MaskSettings(),
    )
    preprocess = json.loads((tmp_path / "model" / "preprocess.json").read_text())
    assert np.allclose(preprocess["mean"], MEAN) and np.allclose(preprocess["std"], STD) and preprocess["size"] == 224

    predictor = Predictor.load(tmp_path / "model")
    exported = PhotographClassifier.from_exported(export_submission(tmp_path / "model", tmp_path / "submission"))
    wings = [Image.open(path).convert("RGB") for path in val["path"]]
    images = torch.stack([load_image(path, 224) for path in val["path"]])
    expected = torch.softmax(
        predict_logits(result.model, ImageFeed(images, backbone), torch.device("cpu"), 6), 1
    ).numpy()
    assert np.allclose(predictor.probabilities(wings), expected, atol=1e-4)
    assert np.allclose(exported.probabilities(wings), expected, atol=1e-4), "the export keeps BioCLIP's mean/std"

    folder_config = json.loads((tmp_path / "model" / "config.json").read_text())
    frozen = frozen_backbone(folder_config)
    assert frozen is not None and frozen.source == str(bioclip_folder), (
        "a pretrained run also embeds with the frozen backbone"
    )
    before = frozen_features(frozen, val["path"].tolist(), torch.device("cpu"), batch_size=6)
    after, _ = embed_files(
        predictor.classifiers, val["path"].tolist(), 224, MEAN, STD, torch.device("cpu"), batch_size=6
    )
    assert before.shape == after.shape == (6, 512)
    assert not np.allclose(before, after, atol=1e-3), "the last two blocks moved the embedding"
    assert frozen_backbone(folder_config | {"pretrained": False}) is None
