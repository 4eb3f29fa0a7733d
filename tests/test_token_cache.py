"""The frozen-trunk token cache: same logits as the full model, an interrupted build resumes, and
fine-tuning from the cache trains weights that the full model uses unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from hybridwing.finetune import cache
from hybridwing.finetune.cache import TokenFeed, build_token_cache, cache_key, frozen_count
from hybridwing.finetune.train import FinetuneSettings, ImageFeed, finetune, predict_logits
from hybridwing.model.backbone import WingClassifier, load_backbone
from hybridwing.model.preprocess import load_image, normalise


def _classifier(arch: str, n_classes: int = 7) -> tuple[WingClassifier, object]:
    torch.manual_seed(1)
    backbone = load_backbone(arch, allow_random_init=True)
    return WingClassifier(backbone.visual, n_classes).eval(), backbone


def _batches(paths, backbone, batch_size):
    def batches_from(start):
        for first in range(start, len(paths), batch_size):
            images = torch.stack([load_image(p, backbone.image_size) for p in paths[first : first + batch_size]])
            yield normalise(images, backbone.mean, backbone.std)

    return batches_from


@pytest.fixture(scope="module")
def real_paths(heliconius):
    return sorted(str(p) for p in (heliconius / "images").glob("*.jpg"))[:6]


@pytest.mark.parametrize(("arch", "unfrozen"), [("hybridwing-vit-tiny", 2), ("ViT-B-16", 2)])
def test_cached_tokens_give_the_full_model_logits(arch, unfrozen, real_paths, tmp_path):
    classifier, backbone = _classifier(arch)
    n_frozen = frozen_count(classifier, unfrozen)
    key = cache_key(classifier, n_frozen, real_paths, backbone.image_size, backbone.mean, backbone.std)
    tokens = build_token_cache(
        classifier,
        n_frozen,
        _batches(real_paths, backbone, 4),
        len(real_paths),
        key,
        tmp_path / "t.npy",
        torch.device("cpu"),
        "test",
    )
    assert tokens.dtype == np.float16 and tokens.shape[0] == len(real_paths)
    images = torch.stack([load_image(p, backbone.image_size) for p in real_paths])
    full = predict_logits(classifier, ImageFeed(images, backbone), torch.device("cpu"), 4)
    cached = predict_logits(classifier, TokenFeed(tokens, n_frozen), torch.device("cpu"), 4)
    assert full.abs().max() > 1e-2  # the comparison is not between near-zero logits
    print(f"{arch}: largest logit difference {(cached - full).abs().max():.2e}")
    assert torch.allclose(cached, full, atol=1e-3), (cached - full).abs().max()


def test_an_interrupted_build_resumes_and_a_changed_image_rebuilds(real_paths, tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "FLUSH_EVERY", 1)
    classifier, backbone = _classifier("hybridwing-vit-tiny")
    key = cache_key(classifier, 4, real_paths, backbone.image_size, backbone.mean, backbone.std)
    full = _batches(real_paths, backbone, 2)
    starts = []

    def failing(start):
        starts.append(start)
        for number, batch in enumerate(full(start)):
            if number == 2:
                raise KeyboardInterrupt
            yield batch

    with pytest.raises(KeyboardInterrupt):
        build_token_cache(classifier, 4, failing, len(real_paths), key, tmp_path / "t.npy", torch.device("cpu"), "test")
    assert not (tmp_path / "t.npy").exists()
    resumed = build_token_cache(
        classifier, 4, failing, len(real_paths), key, tmp_path / "t.npy", torch.device("cpu"), "test"
    )
    assert starts == [0, 4]
    fresh = build_token_cache(
        classifier, 4, full, len(real_paths), key, tmp_path / "fresh.npy", torch.device("cpu"), "test"
    )
    assert np.array_equal(resumed, fresh)

    def key_now(paths=real_paths):
        return cache_key(classifier, 4, paths, backbone.image_size, backbone.mean, backbone.std)

    with torch.no_grad():
        classifier.visual.transformer.resblocks[5].mlp.c_fc.weight.add_(1.0)  # a trained block: not in the key
    assert key_now() == key
    with torch.no_grad():
        classifier.visual.transformer.resblocks[0].mlp.c_fc.weight.add_(1.0)  # a frozen block
    assert key_now() != key
    assert key_now(real_paths[:-1]) != key_now()


def test_finetune_from_the_cache_trains_weights_the_full_model_uses(heliconius, tmp_path, caplog):
    paths = sorted(str(p) for p in (heliconius / "images").glob("*.jpg"))[:24]
    table = pd.DataFrame(
        {"image_id": [f"i{k}" for k in range(24)], "path": paths, "class_index": [k % 3 for k in range(24)]}
    )
    table["class"] = table["class_index"].map(dict(enumerate("abc")))
    table["source_image"] = table["image_id"]
    train, val = table.iloc[:16].reset_index(drop=True), table.iloc[16:].reset_index(drop=True)
    settings = FinetuneSettings(
        model="hybridwing-vit-tiny",
        allow_random_init=True,
        unfrozen_blocks=2,
        backbone_lr=1e-3,
        head_lr=1e-3,
        batch_size=8,
        epochs=2,
        patience=5,
    )
    result = finetune(
        train, val, ["a", "b", "c"], settings, tmp_path / "ck.pt", threads=1, cache_dir=tmp_path / "cache"
    )
    assert isinstance(result.val_feed, TokenFeed) and (tmp_path / "cache" / "train.npy").is_file()
    model, backbone = result.model, result.backbone
    images = torch.stack([load_image(p, backbone.image_size) for p in val["path"]])
    full = predict_logits(model, ImageFeed(images, backbone), torch.device("cpu"), 8)
    assert torch.allclose(predict_logits(model, result.val_feed, torch.device("cpu"), 8), full, atol=1e-3)

    with caplog.at_level("INFO"):
        finetune(train, val, ["a", "b", "c"], settings, tmp_path / "ck2.pt", threads=1, cache_dir=tmp_path / "cache")
    assert "token cache" in caplog.text and "up to date" in caplog.text
