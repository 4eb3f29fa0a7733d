"""Standalone prediction: the model folder, the pipeline's preprocessing, the CLI and the challenge
export."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from hybridwing.cli import main
from hybridwing.finetune.model import WingClassifier, load_backbone
from hybridwing.finetune.steps import write_model_folder
from hybridwing.finetune.train import FinetuneSettings, image_tensor, normalise
from hybridwing.score.predictor import ModelFolderError, Predictor, ensemble_probabilities, fit_temperature
from hybridwing.segment.background import remove_background
from hybridwing.segment.predict import MaskSettings, segment_images
from hybridwing.segment.unet import UnetSettings, build_unet, save_checkpoint

CLASSES = ["cyrbia", "lativitta", "notabilis", "hybrid"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A model folder as the finetune rule writes it, with random weights (tiny ViT and U-Net)."""
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    backbone = load_backbone("hybridwing-vit-tiny", allow_random_init=True)
    classifier = WingClassifier(backbone.visual, len(CLASSES))
    unet_settings = UnetSettings(image_size=64, decoder_channels=(16, 16, 8, 8))
    save_checkpoint(build_unet(unet_settings), unet_settings, folder / "unet.pt")
    settings = FinetuneSettings(model="hybridwing-vit-tiny", allow_random_init=True, unfrozen_blocks="all")
    write_model_folder(folder / "model", {"model": classifier, "backbone": backbone}, CLASSES, settings, str(folder / "unet.pt"), {"threshold": 0.5})
    return folder / "model"


@pytest.fixture(scope="module")
def ten_real(heliconius):
    return sorted((heliconius / "images").glob("*.jpg"))[:10]


def test_predictor_matches_the_pipeline_path(model_dir, ten_real, tmp_path):
    """Raw photograph -> Predictor equals segment_images + remove_background + the classifier."""
    predictor = Predictor.load(model_dir)
    rows = pd.DataFrame({"image_id": [p.stem for p in ten_real], "path": [str(p) for p in ten_real], "split": "dev"})
    qc = segment_images(predictor.segmenter, predictor.segmenter_size, rows, predictor.mask, tmp_path / "masks")
    wings = []
    for row, mask_path in zip(rows.itertuples(), qc["mask"]):
        with Image.open(row.path) as image, Image.open(mask_path) as mask:
            rng = np.random.default_rng([predictor.mask.seed, zlib.crc32(row.image_id.encode())])
            wings.append(remove_background(np.asarray(image.convert("RGB")), np.asarray(mask) > 0, predictor.mask, rng))
    pipeline = predictor.table(predictor.probabilities(wings))
    photographs = []
    for path in ten_real:
        with Image.open(path) as image:
            photographs.append(image.convert("RGB"))
    direct = predictor.predict_images(photographs, [p.stem for p in ten_real])
    assert direct["subspecies"].tolist() == pipeline["subspecies"].tolist()
    assert np.allclose(direct["hybrid_score"], pipeline["hybrid_score"], atol=1e-5)
    one = predictor.predict(photographs[0], ten_real[0].stem)
    assert one["hybrid_score"] == pytest.approx(direct["hybrid_score"].iloc[0], abs=1e-5) and one["subspecies"] in CLASSES[:-1]


def test_predict_cli_prints_a_row_per_image_and_reports_bad_ones(model_dir, ten_real, tmp_path, capsys):
    assert main(["predict", str(model_dir), *map(str, ten_real)]) == 0
    printed = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(printed) == 10 and printed["path"].tolist() == [str(p) for p in ten_real]
    assert {"subspecies", "hybrid_score", "top2", "p_top2"} <= set(printed.columns)
    assert printed["hybrid_score"].between(0, 1).all() and printed["subspecies"].isin(CLASSES[:-1]).all()

    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(ten_real[0].read_bytes())
    (folder / "broken.jpg").write_bytes(ten_real[1].read_bytes()[:300])
    (folder / "notes.txt").write_text("not an image")
    assert main(["predict", str(model_dir), str(folder)]) == 2
    captured = capsys.readouterr()
    assert len(pd.read_csv(io.StringIO(captured.out))) == 1 and "broken.jpg" in captured.err

    assert main(["predict", str(tmp_path), str(folder)]) == 1
    assert "not a hybridwing model folder" in capsys.readouterr().err


def test_a_model_folder_that_does_not_fit_is_refused(model_dir, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "classes.json").write_text(json.dumps(CLASSES[:2]))
    with pytest.raises(ModelFolderError, match="does not fit"):
        Predictor.load(broken)


def test_export_submission_runs_as_the_challenge_ingestion_would(model_dir, ten_real, tmp_path):
    out = tmp_path / "submission"
    assert main(["export-submission", str(model_dir), str(out)]) == 0
    assert (out / "model.py").is_file() and (out / "model" / "weights.safetensors").is_file()
    assert "open_clip_torch==" in (out / "requirements.txt").read_text()
    assert main(["export-submission", str(model_dir), str(out)]) == 1  # never overwrites
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path.append({str(out)!r})
        from PIL import Image
        from model import Model
        model = Model()
        model.load()
        import hybridwing as loaded
        scores = [model.predict(Image.open(p)) for p in {[str(p) for p in ten_real[:3]]!r}]
        print(json.dumps({{"scores": scores, "package": loaded.__file__}}))
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    expected = Predictor.load(model_dir).predict_images([Image.open(p).convert("RGB") for p in ten_real[:3]], ["", "", ""])
    assert np.allclose(result["scores"], expected["hybrid_score"], atol=1e-5)
    assert all(isinstance(score, float) for score in result["scores"])
    assert result["package"].startswith(str(out)), "the submission uses its own copy of the package"


def test_a_timm_tower_model_folder_gives_the_trained_logits(tmp_path, ten_real):
    """The offline real-data backbone (timm resnet18 through open_clip) rebuilds from config.json."""
    torch.manual_seed(0)
    backbone = load_backbone("hybridwing-resnet18", allow_random_init=True)
    classifier = WingClassifier(backbone.visual, len(CLASSES)).eval()
    unet_settings = UnetSettings(image_size=64, decoder_channels=(16, 16, 8, 8))
    save_checkpoint(build_unet(unet_settings), unet_settings, tmp_path / "unet.pt")
    settings = FinetuneSettings(model="hybridwing-resnet18", allow_random_init=True, unfrozen_blocks="all")
    write_model_folder(tmp_path / "model", {"model": classifier, "backbone": backbone}, CLASSES, settings, str(tmp_path / "unet.pt"), {})
    predictor = Predictor.load(tmp_path / "model")
    wing = Image.open(ten_real[0]).convert("RGB")
    expected = torch.softmax(classifier(normalise(image_tensor(wing, backbone.image_size)[None], backbone.mean, backbone.std)), 1)
    assert np.allclose(predictor.probabilities([wing]), expected.detach().numpy(), atol=1e-5)


def test_fit_temperature_recovers_the_temperature_labels_were_drawn_at():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (4000, 5))
    probabilities = ensemble_probabilities(logits[None, None] / 1.0, 3.0)
    labels = np.array([rng.choice(5, p=row) for row in probabilities])
    assert abs(fit_temperature(logits[None, None], labels) - 3.0) < 0.3
    assert np.allclose(ensemble_probabilities(logits[None, None], 1e6), 0.2, atol=1e-4)


def test_an_ensemble_folder_averages_members_and_mirror_images(tmp_path, ten_real):
    torch.manual_seed(0)
    backbone = load_backbone("hybridwing-vit-tiny", allow_random_init=True)
    members = [{"model": WingClassifier(load_backbone("hybridwing-vit-tiny", allow_random_init=True).visual, len(CLASSES)).eval(), "backbone": backbone} for _ in range(2)]
    unet_settings = UnetSettings(image_size=64, decoder_channels=(16, 16, 8, 8))
    save_checkpoint(build_unet(unet_settings), unet_settings, tmp_path / "unet.pt")
    settings = FinetuneSettings(model="hybridwing-vit-tiny", allow_random_init=True, unfrozen_blocks="all", flip_average=True)
    write_model_folder(tmp_path / "model", members[0], CLASSES, settings, str(tmp_path / "unet.pt"), {}, members, temperature=2.5)
    predictor = Predictor.load(tmp_path / "model")
    assert len(predictor.classifiers) == 2 and predictor.inference.temperature == 2.5 and predictor.inference.flip_average
    wings = [Image.open(path).convert("RGB") for path in ten_real[:3]]
    x = normalise(torch.stack([image_tensor(wing, backbone.image_size) for wing in wings]), backbone.mean, backbone.std)
    with torch.no_grad():
        expected = torch.stack([torch.softmax(m["model"](view) / 2.5, 1) for m in members for view in (x, x.flip(-1))]).mean(0)
    assert np.allclose(predictor.probabilities(wings), expected.numpy(), atol=1e-5)
    assert not np.allclose(expected.numpy(), torch.softmax(members[0]["model"](x), 1).detach().numpy(), atol=1e-3)

    (tmp_path / "model" / "weights_1.safetensors").unlink()
    with pytest.raises(ModelFolderError, match="weights_1.safetensors"):
        Predictor.load(tmp_path / "model")
