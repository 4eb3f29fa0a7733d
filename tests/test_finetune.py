"""Fine-tuning: freezing, the two learning rates, resume after a kill, and the fail-fast loader."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import asdict, replace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from hybridwing.finetune.train import FinetuneSettings, checkpoint_key, finetune
from hybridwing.finetune.trainable import configure_trainable, parameter_groups
from hybridwing.model.backbone import BackboneUnavailable, WingClassifier, load_backbone


@pytest.fixture()
def classifier():
    torch.manual_seed(0)
    return WingClassifier(load_backbone("hybridwing-vit-tiny", allow_random_init=True).visual, 5)


def test_two_learning_rates_reach_their_groups(classifier):
    configure_trainable(classifier, 2, train_proj=True)
    optimiser = torch.optim.AdamW(parameter_groups(classifier, 1e-5, 1e-3))
    lrs = {group["name"]: group["lr"] for group in optimiser.param_groups}
    assert lrs == {"backbone": 1e-5, "head": 1e-3}
    head_ids = {id(p) for p in classifier.head.parameters()}
    backbone = next(g for g in optimiser.param_groups if g["name"] == "backbone")["params"]
    last_two = {id(p) for block in list(classifier.visual.transformer.resblocks)[-2:] for p in block.parameters()}
    assert last_two <= {id(p) for p in backbone} and not head_ids & {id(p) for p in backbone}


def test_only_the_intended_parameters_change(classifier):
    configure_trainable(classifier, 2, train_proj=False)
    before = {name: p.detach().clone() for name, p in classifier.named_parameters()}
    optimiser = torch.optim.AdamW(parameter_groups(classifier, 1e-3, 1e-3))
    loss = torch.nn.functional.cross_entropy(classifier(torch.randn(4, 3, 128, 128)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    optimiser.step()
    changed = {name for name, p in classifier.named_parameters() if not torch.equal(before[name], p)}
    blocks = len(classifier.visual.transformer.resblocks)
    expected_prefixes = (
        f"visual.transformer.resblocks.{blocks - 2}.",
        f"visual.transformer.resblocks.{blocks - 1}.",
        "visual.ln_post.",
        "head.",
    )
    assert changed and all(name.startswith(expected_prefixes) for name in changed)
    assert "visual.proj" not in changed and "visual.conv1.weight" not in changed
    assert any(name.startswith("head.") for name in changed)


def test_random_backbone_needs_permission_and_hub_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneUnavailable, match="allow_random_init"):
        load_backbone("ViT-B-16", allow_random_init=False)
    with pytest.raises(BackboneUnavailable, match="weights not reachable"):
        load_backbone("hf-hub:imageomics/bioclip", allow_random_init=True)
    with pytest.raises(BackboneUnavailable, match="not a hub id, a folder"):
        load_backbone("no-such-model", allow_random_init=True)


SETTINGS = FinetuneSettings(
    model="hybridwing-vit-tiny",
    allow_random_init=True,
    unfrozen_blocks="all",
    backbone_lr=1e-3,
    head_lr=1e-3,
    batch_size=8,
    epochs=2,
    patience=5,
    checkpoint_every=1,
)


def test_resume_after_a_kill_continues_to_the_same_model(tiny_sets, tmp_path):
    train, val = tiny_sets
    train.to_csv(tmp_path / "train.csv", index=False)
    val.to_csv(tmp_path / "val.csv", index=False)
    checkpoint = tmp_path / "resume.pt"
    (tmp_path / "settings.json").write_text(json.dumps(asdict(SETTINGS)))
    killer = textwrap.dedent(
        f"""
        import json, os, pandas as pd, torch
        from hybridwing.finetune.train import FinetuneSettings, finetune
        steps = 0
        original = torch.optim.AdamW.step
        def step(self, *args, **kwargs):
            global steps
            steps += 1
            if steps == 7:
                os._exit(9)  # killed mid-epoch 2, with no clean-up
            return original(self, *args, **kwargs)
        torch.optim.AdamW.step = step
        settings = FinetuneSettings(**json.loads(open(r"{tmp_path / "settings.json"}").read()))
        train, val = pd.read_csv(r"{tmp_path / "train.csv"}"), pd.read_csv(r"{tmp_path / "val.csv"}")
        finetune(train, val, ["a", "b"], settings, r"{checkpoint}", 1)
        """
    )
    killed = subprocess.run([sys.executable, "-c", killer], capture_output=True, text=True, timeout=300)
    assert killed.returncode == 9, killed.stderr[-2000:]
    saved = torch.load(checkpoint, weights_only=True)
    state = json.loads(saved["state"])
    assert state["epoch"] == 2 and state["step"] == 2 and len(state["history"]) == 1

    resumed = finetune(train, val, ["a", "b"], SETTINGS, checkpoint, threads=1)
    uninterrupted = finetune(train, val, ["a", "b"], SETTINGS, tmp_path / "fresh.pt", threads=1)
    assert [h["epoch"] for h in resumed.state["history"]] == [1, 2]
    for name, tensor in uninterrupted.model.state_dict().items():
        assert torch.allclose(resumed.model.state_dict()[name], tensor, atol=1e-6), name
    last_resumed = torch.load(checkpoint, weights_only=True)["model"]  # the last epoch's weights, not the best's
    for name, tensor in torch.load(tmp_path / "fresh.pt", weights_only=True)["model"].items():
        assert torch.allclose(last_resumed[name], tensor, atol=1e-6), name
    assert resumed.state["history"][-1]["val_macro_f1"] == uninterrupted.state["history"][-1]["val_macro_f1"]
    assert resumed.state["per_class"] == uninterrupted.state["per_class"]
    per_class = pd.DataFrame(resumed.state["per_class"])
    assert sorted(per_class["epoch"].unique()) == [1, 2] and set(per_class["class"]) == {"a", "b"}
    confusion = pd.DataFrame(resumed.state["confusion"])
    assert confusion.groupby("epoch")["count"].sum().tolist() == [len(val), len(val)]


def test_a_checkpoint_of_other_images_is_not_resumed(tiny_sets, tmp_path, caplog):
    train, val = tiny_sets
    checkpoint = tmp_path / "other.pt"
    finetune(train, val, ["a", "b"], SETTINGS, checkpoint, threads=1)
    relabelled = train.assign(class_index=1 - train["class_index"])
    with caplog.at_level("INFO"):
        result = finetune(relabelled, val, ["a", "b"], SETTINGS, checkpoint, threads=1)
    assert "ignoring" in caplog.text and "resuming" not in caplog.text
    assert [h["epoch"] for h in result.state["history"]] == [1, 2]


def test_macro_f1_ignores_classes_absent_from_truth_and_predictions():
    from hybridwing.finetune.train import macro_f1_score

    truth = np.array([0, 0, 1, 1])
    assert macro_f1_score(truth, truth) == 1.0  # classes 2.. have no images and are never predicted
    assert macro_f1_score(truth, np.array([0, 0, 1, 2])) == pytest.approx((1 + 2 / 3 + 0) / 3)  # a wrong class counts


def test_learning_rate_warms_up_then_decays_to_zero():
    from hybridwing.finetune.train import lr_factor

    total = 200
    cosine = [lr_factor("cosine", 0.05, step, total) for step in range(total)]
    warmup = cosine[:10]
    assert warmup == sorted(warmup) and warmup[0] < 0.1 and warmup[-1] < 1
    assert cosine[10] == 1.0 and all(a >= b for a, b in zip(cosine[10:], cosine[11:]))
    assert cosine[-1] < 1e-3 and cosine[105] == pytest.approx(0.5, abs=0.01)
    constant = [lr_factor("constant", 0.05, step, total) for step in range(total)]
    assert constant[:10] == warmup and set(constant[10:]) == {1.0}
    assert lr_factor("cosine", 0.0, 0, total) == 1.0


def test_mixup_draws_are_reproducible_by_step_and_off_at_zero():
    from hybridwing.finetune.train import mixup_pairs

    assert mixup_pairs(0.0, 0, 5, 32) == (1.0, None)
    weight, partner = mixup_pairs(0.4, 0, 5, 32)
    again_weight, again_partner = mixup_pairs(0.4, 0, 5, 32)
    assert 0 < weight < 1 and weight == again_weight and torch.equal(partner, again_partner)
    assert sorted(partner.tolist()) == list(range(32))
    assert mixup_pairs(0.4, 0, 6, 32)[0] != weight  # a new draw every step


def test_mixup_changes_training_and_repeats_exactly(tiny_sets, tmp_path):
    train, val = tiny_sets
    mixed = replace(SETTINGS, mixup=0.4, epochs=1)
    plain = finetune(train, val, ["a", "b"], replace(SETTINGS, epochs=1), tmp_path / "plain.pt", threads=1)
    first = finetune(train, val, ["a", "b"], mixed, tmp_path / "mixed.pt", threads=1)
    second = finetune(train, val, ["a", "b"], mixed, tmp_path / "again.pt", threads=1)
    assert first.state["history"][0]["train_loss"] == second.state["history"][0]["train_loss"]
    assert first.state["history"][0]["train_loss"] != plain.state["history"][0]["train_loss"]


def test_asking_for_an_ensemble_resumes_the_first_member(tiny_sets):
    """Ensemble size, flip averaging and the temperature do not change how one model trains: the
    first member's checkpoint stays valid; a seed or a learning rate does not."""
    train, val = tiny_sets
    classes = ["red", "blue"]
    single = FinetuneSettings(model="hybridwing-vit-tiny", allow_random_init=True)
    key = checkpoint_key(single, classes, train, val)
    assert checkpoint_key(replace(single, ensemble=3, flip_average=True, temperature="fit"), classes, train, val) == key
    assert checkpoint_key(replace(single, seed=single.seed + 1), classes, train, val) != key
    assert checkpoint_key(replace(single, head_lr=single.head_lr / 2), classes, train, val) != key


def test_an_image_rewritten_in_place_is_another_training_set(tiny_sets, tmp_path, caplog):
    """Same paths, labels and settings, other pixels (as a changed mask.background writes): the
    checkpoint is not resumed and the model trains again."""
    train, val = tiny_sets
    settings = replace(SETTINGS, epochs=1)
    key = checkpoint_key(settings, ["a", "b"], train, val)
    first = finetune(train, val, ["a", "b"], settings, tmp_path / "ck.pt", threads=1)
    image = np.asarray(Image.open(train["path"][0]))
    Image.fromarray(255 - image).save(train["path"][0])
    assert checkpoint_key(settings, ["a", "b"], train, val) != key
    with caplog.at_level("INFO"):
        again = finetune(train, val, ["a", "b"], settings, tmp_path / "ck.pt", threads=1)
    assert "training afresh" in caplog.text and "resuming" not in caplog.text
    assert again.state["history"][0]["train_loss"] != first.state["history"][0]["train_loss"]


def test_parent_targets_split_a_hybrids_mass_over_its_parents():
    """Parents puts 0.5 on each parent, both 0.5 on the hybrid class and 0.25 on each
    parent; a hybrid whose parent is not a class, and every non-hybrid, stay one-hot."""
    from hybridwing.finetune.train import training_targets

    classes = ["alba", "radiata", "venus", "hybrid"]
    train = pd.DataFrame(
        {
            "class_index": [0, 3, 3, 2],
            "parent_1": ["", "alba", "alba", ""],
            "parent_2": ["", "radiata", "unknown", ""],
        }
    )
    assert training_targets(train, classes, "class").tolist() == [0, 3, 3, 2]
    parents = training_targets(train, classes, "parents")
    assert parents.tolist() == [[1, 0, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
    assert training_targets(train, classes, "both")[1].tolist() == [0.25, 0.25, 0, 0.5]


def test_the_hybrid_target_reaches_the_loss_and_the_checkpoint_key(tiny_sets, tmp_path):
    train, val = tiny_sets
    classes = ["a", "b", "hybrid"]
    hybrids = train.head(8).assign(class_index=2, parent_1="a", parent_2="b")
    mixed = pd.concat([train.iloc[8:].assign(parent_1="", parent_2=""), hybrids], ignore_index=True)
    runs = {
        mode: finetune(
            mixed, val, classes, replace(SETTINGS, hybrid_target=mode, epochs=1), tmp_path / f"{mode}.pt", threads=1
        )
        for mode in ("class", "parents")
    }
    assert runs["class"].state["history"][0]["train_loss"] != runs["parents"].state["history"][0]["train_loss"]
    key = checkpoint_key(replace(SETTINGS, hybrid_target="parents"), classes, mixed, val)
    assert key != checkpoint_key(SETTINGS, classes, mixed, val)


def test_crosses_join_two_subspecies_and_repeat_by_step():
    """Each cross joins photographs of two different non-hybrid classes; a step draws the same
    crosses again (a resumed run trains on the same batches) and the next step draws others."""
    from hybridwing.finetune.train import CrossDraws

    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])  # 3 is the hybrid class
    draws = CrossDraws(labels, hybrid=3)
    crosses = draws.draw(0.25, seed=0, step=5, size=32)
    assert len(crosses.positions) == 8 and len(set(crosses.positions.tolist())) == 8
    tops, bottoms = labels[crosses.tops], labels[crosses.bottoms]
    assert (tops != bottoms).all() and not {3} & {*tops, *bottoms}
    again = draws.draw(0.25, seed=0, step=5, size=32)
    assert all(torch.equal(getattr(crosses, name), getattr(again, name)) for name in ("positions", "tops", "bottoms"))
    assert not torch.equal(draws.draw(0.25, seed=0, step=6, size=32).tops, crosses.tops)
    assert draws.draw(0.0, seed=0, step=5, size=32) is None
    assert CrossDraws(np.array([0, 0, 3]), hybrid=3).draw(0.5, seed=0, step=0, size=8) is None

    assert draws.targets(crosses, 4, "class").tolist() == [3] * 8
    parents = draws.targets(crosses, 4, "parents")
    for row, top, bottom in zip(parents, tops, bottoms):
        assert row[top] == row[bottom] == 0.5 and row[3] == 0 and row.sum() == 1


def test_crosses_are_composed_in_pixels_and_teach_the_hybrid_class(tiny_sets, tmp_path):
    """Trained on blue (a) and red (b) photographs only, with half of every batch a cross: a
    photograph blue above and red below is called hybrid, a plain one keeps its colour. Crosses
    replace batch positions, so their losses are not booked to the photographs they replaced."""
    from hybridwing.finetune.train import ImageFeed, predict_logits
    from hybridwing.model.preprocess import load_images

    train, val = tiny_sets
    classes = ["a", "b", "hybrid"]
    settings = replace(SETTINGS, cross_share=0.5, epochs=6, patience=6)
    run = finetune(train, val, classes, settings, tmp_path / "crosses.pt", threads=1)
    blue, red = (np.asarray(Image.open(train.loc[train["class_index"] == k, "path"].iloc[0])) for k in (0, 1))
    paths = []
    for name, pixels in {"blue": blue, "red": red, "cross": np.concatenate([blue[:20], red[20:]])}.items():
        Image.fromarray(pixels).save(tmp_path / f"{name}.png")
        paths.append(str(tmp_path / f"{name}.png"))
    feed = ImageFeed(load_images(paths, run.backbone.image_size, "probe"), run.backbone)
    called = predict_logits(run.model, feed, run.device, 8).argmax(1).tolist()
    assert called == [0, 1, 2]
    booked = sum(len(losses) for losses in run.state["sample_losses"].values())
    assert booked == len(train) * settings.loss_epochs // 2


def test_call_thresholds_are_set_per_species_when_validation_has_two():
    """The challenge thresholds each species' group apart; so does the stored call."""
    from hybridwing.finetune.steps import call_thresholds
    from hybridwing.hybrid_scores import hybrid_scores, threshold_at

    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(4), size=60)
    non_hybrid = np.arange(60) % 5 != 0
    species = np.where(np.arange(60) < 30, "erato", "melpomene")
    overall, by_species = call_thresholds(probabilities, non_hybrid, species, "p_hybrid")
    values = hybrid_scores(probabilities)["p_hybrid"].to_numpy()
    assert overall == threshold_at(values[non_hybrid])
    assert by_species == {name: threshold_at(values[non_hybrid & (species == name)]) for name in ("erato", "melpomene")}
    assert by_species["erato"] != by_species["melpomene"]
    assert call_thresholds(probabilities, non_hybrid, np.full(60, "erato"), "p_hybrid") == (overall, {})
    assert call_thresholds(probabilities, np.zeros(60, bool), species, "p_hybrid") == (None, {})
