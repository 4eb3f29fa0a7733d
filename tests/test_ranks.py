"""The rank at which a call is sure and the novelty score, on generated embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from hybridwing.model.ranks import FALSE_ALARM, Ranks, sure_level


def test_the_sure_level_keeps_the_calls_above_it_right():
    confidence = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6])
    right = np.array([True, True, True, False, True, False])
    assert sure_level(confidence, right, false_alarm=0.0) == 0.9
    assert sure_level(confidence, right, false_alarm=0.25) == 0.7  # 1 wrong of 5 above 0.7
    assert sure_level(confidence[3:4], right[3:4]) > 1, "no level is sure: never subspecies"


@pytest.fixture(scope="module")
def clusters():
    """Three subspecies (two of erato, one of melpomene) as tight clusters in 16 dimensions, and a
    taxon never trained on, far from all three."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16)) * 4

    def draw(k: int, n: int) -> np.ndarray:
        return centres[k] + rng.normal(scale=0.5, size=(n, 16))

    train = np.vstack([draw(k, 40) for k in range(3)])
    train_classes = np.repeat(np.arange(3), 40)
    val = np.vstack([draw(k, 20) for k in range(3)])
    val_classes = np.repeat(np.arange(3), 20)
    return train, train_classes, val, val_classes, draw(3, 20)


def test_a_taxon_never_trained_is_novel_and_known_ones_are_sure(clusters):
    train, train_classes, val, val_classes, unseen = clusters
    confident = np.eye(4)[val_classes] * 0.9 + 0.025  # right and sure, hybrid last
    ranks = Ranks.fit(train, train_classes, val, confident, val_classes, ["erato", "erato", "melpomene"])
    known = ranks.table(confident, val)
    assert (known["novelty"] > ranks.novelty_threshold).mean() <= FALSE_ALARM + 1e-9
    assert (known["rank"] == "subspecies").mean() >= 1 - FALSE_ALARM
    guessed = np.tile([0.9, 0.025, 0.025, 0.05], (len(unseen), 1))  # called the first subspecies, confidently
    novel = ranks.table(guessed, unseen)
    assert (novel["rank"] == "unknown").all() and novel["novelty"].min() > known["novelty"].max()


def test_an_uncertain_subspecies_of_a_sure_species_is_called_at_species_rank(clusters, tmp_path):
    """Split between two erato subspecies: sure of erato, not of which; the thresholds survive
    the model folder."""
    train, train_classes, val, val_classes, _ = clusters
    confident = np.eye(4)[val_classes] * 0.9 + 0.025
    ranks = Ranks.fit(train, train_classes, val, confident, val_classes, ["erato", "erato", "melpomene"])
    split = np.tile([0.48, 0.47, 0.02, 0.03], (3, 1))
    assert ranks.table(split, val[:3])["rank"].tolist() == ["species"] * 3
    ranks.save(tmp_path)
    again = Ranks.load(tmp_path)
    assert again.table(split, val[:3]).equals(ranks.table(split, val[:3]))
    assert Ranks.load(tmp_path / "elsewhere") is None


def test_a_trained_model_finds_a_colour_it_never_saw_novel(tiny_sets, tmp_path):
    """A classifier trained on blue (a) and red (b) photographs: green ones, a taxon it never saw,
    are more novel than every validation photograph of its own classes, and ranked unknown; the
    embeddings are the model's own (`embed_files`)."""
    from dataclasses import replace

    import torch
    from PIL import Image

    from hybridwing.finetune.train import FinetuneSettings, finetune
    from hybridwing.model.inference import embed_files, ensemble_probabilities, member_logits_of_files

    train, val = tiny_sets
    settings = FinetuneSettings(
        model="hybridwing-vit-tiny", allow_random_init=True, unfrozen_blocks="all", backbone_lr=1e-3, head_lr=1e-3
    )
    run = finetune(train, val, ["a", "b", "hybrid"], replace(settings, batch_size=8, epochs=4), tmp_path / "ck.pt")
    rng = np.random.default_rng(1)
    green = []
    for k in range(6):
        pixels = np.clip(np.full((40, 40, 3), (40, 200, 40)) + rng.normal(0, 20, (40, 40, 3)), 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / f"green{k}.png")
        green.append(str(tmp_path / f"green{k}.png"))
    backbone, device = run.backbone, torch.device("cpu")

    preprocessing = (backbone.image_size, backbone.mean, backbone.std)

    def embed(paths):
        return embed_files([run.model], paths, *preprocessing, device)[0]

    def probabilities(paths):
        return ensemble_probabilities(member_logits_of_files([run.model], paths, *preprocessing, False, device), 1.0)

    known = val["path"].tolist()
    ranks = Ranks.fit(
        embed(train["path"].tolist()),
        train["class_index"].to_numpy(),
        embed(known),
        probabilities(known),
        val["class_index"].to_numpy(),
        ["blue-red", "blue-red"],
    )
    seen = ranks.table(probabilities(known), embed(known))
    unseen = ranks.table(probabilities(green), embed(green))
    assert unseen["novelty"].min() > seen["novelty"].max()
    assert (unseen["rank"] == "unknown").all() and (seen["rank"] != "unknown").mean() >= 0.85
