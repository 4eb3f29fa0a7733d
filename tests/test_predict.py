"""Standalone prediction: the model folder, the pipeline's preprocessing, the CLI and the challenge
export."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import textwrap
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from hybridwing.cli import main
from hybridwing.finetune.train import FinetuneSettings
from hybridwing.model.backbone import WingClassifier, load_backbone
from hybridwing.model.folder import ModelFolderError, read_model_folder, write_model_folder
from hybridwing.model.inference import ensemble_probabilities, fit_temperature
from hybridwing.model.preprocess import image_tensor, normalise
from hybridwing.score.predictor import Predictor
from hybridwing.segment.background import remove_background, shown_mask
from hybridwing.segment.mask_settings import MaskSettings
from hybridwing.segment.predict import segment_images
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
    write_model_folder(
        folder / "model",
        [classifier.state_dict()],
        CLASSES,
        backbone,
        asdict(settings),
        folder / "unet.pt",
        MaskSettings(threshold=0.5),
    )
    return folder / "model"


@pytest.fixture(scope="module")
def ten_real(heliconius):
    return sorted((heliconius / "images").glob("*.jpg"))[:10]


def test_predictor_matches_the_pipeline_path(model_dir, ten_real, tmp_path):
    """Raw photograph -> Predictor equals segment_images + remove_background + the classifier."""
    predictor = Predictor.load(model_dir)
    rows = pd.DataFrame({"image_id": [p.stem for p in ten_real], "path": [str(p) for p in ten_real], "split": "dev"})
    qc = segment_images(
        predictor.segmenter, predictor.segmenter_size, rows, predictor.mask_settings, tmp_path / "masks"
    )
    wings = []
    for row, mask_path in zip(rows.itertuples(), qc["mask"]):
        with Image.open(row.path) as image, Image.open(mask_path) as mask:
            rng = np.random.default_rng([predictor.mask_settings.seed, zlib.crc32(row.image_id.encode())])
            wings.append(
                remove_background(np.asarray(image.convert("RGB")), np.asarray(mask) > 0, predictor.mask_settings, rng)
            )
    pipeline = predictor.table(predictor.probabilities(wings))
    photographs = []
    for path in ten_real:
        with Image.open(path) as image:
            photographs.append(image.convert("RGB"))
    direct = predictor.predict_images(photographs, [p.stem for p in ten_real])
    assert direct["subspecies"].tolist() == pipeline["subspecies"].tolist()
    assert np.allclose(direct["hybrid_score"], pipeline["hybrid_score"], atol=1e-5)
    one = predictor.predict(photographs[0], ten_real[0].stem)
    assert (
        one["hybrid_score"] == pytest.approx(direct["hybrid_score"].iloc[0], abs=1e-5)
        and one["subspecies"] in CLASSES[:-1]
    )


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
    (broken / "classes.json").write_text(json.dumps([CLASSES[0], "hybrid"]))
    (broken / "digests.json").unlink()  # as in a folder written before digests, which would catch it first
    with pytest.raises(ModelFolderError, match="does not fit"):
        Predictor.load(broken)


def rewrite_weights(folder, change) -> None:
    """Weights of the same names and shapes, changed, written where the model's were."""
    from safetensors.torch import load_file, save_file

    save_file(change(load_file(folder / "weights.safetensors")), folder / "weights.safetensors")


def nan_in_bias(state: dict) -> dict:
    state["head.bias"][0] = float("nan")
    return state


def edit_classes(folder, change) -> None:
    names = json.loads((folder / "classes.json").read_text())
    (folder / "classes.json").write_text(json.dumps(change(names)))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (
            lambda folder: (folder / "weights.safetensors").write_bytes(
                (folder / "weights.safetensors").read_bytes()[:5000]
            ),
            "weights.safetensors is not a readable safetensors file",
        ),
        (
            lambda folder: (folder / "weights.safetensors").write_bytes(b"\xff" * 8 + b"{not json"),
            "weights.safetensors is not a readable safetensors file",
        ),
        (lambda folder: (folder / "classes.json").write_text('["a", '), "classes.json is not valid JSON"),
        (lambda folder: (folder / "classes.json").write_text("{}"), "classes.json must list at least two class names"),
        (lambda folder: (folder / "preprocess.json").write_text('{"size": 224}'), "a setting is missing or malformed"),
        (lambda folder: (folder / "segmenter.pt").write_bytes(b"PK\x03\x04 truncated"), "segmenter.pt is damaged"),
        (lambda folder: rewrite_weights(folder, nan_in_bias), "weights.safetensors: tensor head.bias holds NaN"),
        (
            lambda folder: rewrite_weights(folder, lambda state: {key: value * 1.01 for key, value in state.items()}),
            "weights.safetensors not as written with this model",
        ),
        (lambda folder: edit_classes(folder, lambda names: [names[1], names[0], *names[2:]]), "classes.json not as"),
        (
            lambda folder: edit_classes(folder, lambda names: [names[0], *names]),
            f"classes.json must name each class once with 'hybrid' last \\('{CLASSES[0]}' repeated\\)",
        ),
        (lambda folder: edit_classes(folder, lambda names: names[-1:] + names[:-1]), "classes.json must name each"),
        (
            lambda folder: (folder / "preprocess.json").write_text(
                '{"size": 10000, "mean": [0, 0, 0], "std": [1, 1, 1]}'
            ),
            "preprocess.json: size 10000 is larger than the 128 px the weights were trained at",
        ),
    ],
    ids=[
        "truncated-weights",
        "bad-safetensors-header",
        "classes-not-json",
        "classes-not-a-list",
        "preprocess-incomplete",
        "segmenter-damaged",
        "nan-weight",
        "another-models-weights",
        "classes-reordered",
        "classes-repeated",
        "hybrid-first",
        "size-past-training",
    ],
)
def test_a_damaged_model_folder_is_one_clear_error(model_dir, tmp_path, capsys, damage, expected):
    import shutil

    broken = tmp_path / "damaged"
    shutil.copytree(model_dir, broken)
    damage(broken)
    with pytest.raises(ModelFolderError, match=f"{re.escape(str(broken))}: not a hybridwing model folder: {expected}"):
        Predictor.load(broken)
    assert main(["export-submission", str(broken), str(tmp_path / "out")]) == 1
    assert "not a hybridwing model folder" in capsys.readouterr().err and not (tmp_path / "out").exists()


def disk_full(*args, **kwargs):
    raise OSError("disk full")


def test_model_folder_and_export_are_written_whole_or_not_at_all(model_dir, tmp_path, monkeypatch):
    from hybridwing.model import folder as model_folder
    from hybridwing.score import export

    before = {path.name: path.read_bytes() for path in model_dir.iterdir()}
    classifier = WingClassifier(load_backbone("hybridwing-vit-tiny", allow_random_init=True).visual, len(CLASSES))
    backbone = load_backbone("hybridwing-vit-tiny", allow_random_init=True)
    monkeypatch.setattr(model_folder, "save_file", disk_full)
    with pytest.raises(OSError, match="disk full"):
        model_folder.write_model_folder(
            model_dir, [classifier.state_dict()], CLASSES, backbone, {}, model_dir / "segmenter.pt", MaskSettings()
        )
    assert {path.name: path.read_bytes() for path in model_dir.iterdir()} == before, "the old folder is untouched"
    assert [path.name for path in model_dir.parent.iterdir() if "partial" in path.name] == []

    monkeypatch.setattr(export.metadata, "version", disk_full)  # fails after the copies, at the last file
    with pytest.raises(OSError, match="disk full"):
        export.export_submission(model_dir, tmp_path / "submission")
    assert list(tmp_path.iterdir()) == [], "no half-written submission blocks the next export"
    monkeypatch.undo()
    assert export.export_submission(model_dir, tmp_path / "submission").is_dir()


def test_a_timm_tower_model_folder_gives_the_trained_logits(tmp_path, ten_real):
    """The offline real-data backbone (timm resnet18 through open_clip) rebuilds from config.json."""
    torch.manual_seed(0)
    backbone = load_backbone("hybridwing-resnet18", allow_random_init=True)
    classifier = WingClassifier(backbone.visual, len(CLASSES)).eval()
    unet_settings = UnetSettings(image_size=64, decoder_channels=(16, 16, 8, 8))
    save_checkpoint(build_unet(unet_settings), unet_settings, tmp_path / "unet.pt")
    settings = FinetuneSettings(model="hybridwing-resnet18", allow_random_init=True, unfrozen_blocks="all")
    write_model_folder(
        tmp_path / "model",
        [classifier.state_dict()],
        CLASSES,
        backbone,
        asdict(settings),
        tmp_path / "unet.pt",
        MaskSettings(),
    )
    predictor = Predictor.load(tmp_path / "model")
    wing = Image.open(ten_real[0]).convert("RGB")
    expected = torch.softmax(
        classifier(normalise(image_tensor(wing, backbone.image_size)[None], backbone.mean, backbone.std)), 1
    )
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
    members = [
        {
            "model": WingClassifier(
                load_backbone("hybridwing-vit-tiny", allow_random_init=True).visual, len(CLASSES)
            ).eval(),
            "backbone": backbone,
        }
        for _ in range(2)
    ]
    unet_settings = UnetSettings(image_size=64, decoder_channels=(16, 16, 8, 8))
    save_checkpoint(build_unet(unet_settings), unet_settings, tmp_path / "unet.pt")
    settings = FinetuneSettings(
        model="hybridwing-vit-tiny", allow_random_init=True, unfrozen_blocks="all", flip_average=True
    )
    states = [member["model"].state_dict() for member in members]
    write_model_folder(
        tmp_path / "model",
        states,
        CLASSES,
        backbone,
        asdict(settings),
        tmp_path / "unet.pt",
        MaskSettings(),
        temperature=2.5,
        flip_average=True,
    )
    predictor = Predictor.load(tmp_path / "model")
    assert (
        len(predictor.classifiers) == 2 and predictor.inference.temperature == 2.5 and predictor.inference.flip_average
    )
    wings = [Image.open(path).convert("RGB") for path in ten_real[:3]]
    x = normalise(torch.stack([image_tensor(wing, backbone.image_size) for wing in wings]), backbone.mean, backbone.std)
    with torch.no_grad():
        expected = torch.stack(
            [torch.softmax(m["model"](view) / 2.5, 1) for m in members for view in (x, x.flip(-1))]
        ).mean(0)
    assert np.allclose(predictor.probabilities(wings), expected.numpy(), atol=1e-5)
    assert not np.allclose(expected.numpy(), torch.softmax(members[0]["model"](x), 1).detach().numpy(), atol=1e-3)

    (tmp_path / "model" / "weights_1.safetensors").unlink()
    with pytest.raises(ModelFolderError, match="weights_1.safetensors"):
        Predictor.load(tmp_path / "model")


def test_predict_memory_stays_flat_with_many_large_photographs(model_dir, ten_real, tmp_path):
    """Eight 3000x3000 photographs in one batch cost about what one does: each is decoded, shrunk and
    segmented alone."""
    folder = tmp_path / "large"
    folder.mkdir()
    for k, path in enumerate(ten_real[:8]):
        Image.open(path).convert("RGB").resize((3000, 3000), Image.BILINEAR).save(folder / f"large_{k}.jpg", quality=90)
    script = textwrap.dedent(
        """
        import resource, sys
        from hybridwing.cli import main
        status = main(["predict", *sys.argv[1:], "--batch-size", "16"])
        print(status, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, file=sys.stderr)
        """
    )

    def peak_mb(*images):
        run = subprocess.run(
            [sys.executable, "-c", script, str(model_dir), *map(str, images)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        status, peak = run.stderr.strip().splitlines()[-1].split()
        assert status == "0" and len(pd.read_csv(io.StringIO(run.stdout))) == len(images), run.stderr[-2000:]
        return int(peak)

    one, eight = peak_mb(folder / "large_0.jpg"), peak_mb(*sorted(folder.iterdir()))
    assert eight - one < 100, f"peak {one} MB for one photograph, {eight} MB for eight"  # decoded, eight are 216 MB


def test_unreadable_pixels_and_names_in_decode_errors(tmp_path):
    from hybridwing.data.images import ImageDecodeError, decode_image

    nan = io.BytesIO()
    Image.fromarray(np.full((32, 32), np.nan, dtype=np.float32), mode="F").save(nan, format="TIFF")
    with pytest.raises(ImageDecodeError, match=r"cannot decode nan\.tif: 1024 of 1024 pixels are NaN or infinite"):
        decode_image(nan.getvalue(), "nan.tif")
    partly = np.ones((32, 32), dtype=np.float32)
    partly[3, 4] = np.inf
    buffer = io.BytesIO()
    Image.fromarray(partly, mode="F").save(buffer, format="TIFF")
    with pytest.raises(ImageDecodeError, match="1 of 1024 pixels"):
        decode_image(buffer.getvalue(), "inf.tif")
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(b"<html>not found</html>", "photo.jpg")
    assert "photo.jpg" in str(caught.value) and "BytesIO" not in str(caught.value)


def edit_json(name: str, **changes):
    """A damage that rewrites keys of one JSON file of the model folder, as a person editing it would."""

    def damage(folder):
        path = folder / name
        values = (
            json.loads(path.read_text())
            if path.is_file()
            else {"weights": ["weights.safetensors"], "temperature": 1.0, "flip_average": False}
        )
        path.write_text(json.dumps(values | changes))

    return damage


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (edit_json("inference.json", temperature=0), "temperature must be a positive finite number, not 0"),
        (edit_json("inference.json", temperature=-2.5), "temperature must be a positive finite number, not -2.5"),
        (
            lambda folder: (folder / "inference.json").write_text(
                '{"weights": ["weights.safetensors"], "temperature": NaN, "flip_average": false}'
            ),
            "temperature must be a positive finite number, not nan",
        ),
        (edit_json("inference.json", flip_average="false"), "flip_average must be true or false, not 'false'"),
        (edit_json("preprocess.json", std=[0, 0, 0]), "std must be positive finite numbers"),
        (edit_json("preprocess.json", size=100), "preprocess.json's size 100 does not fit the weights"),
        (lambda folder: (folder / "mask.json").write_text('{"threshold": "high"'), "mask.json is not valid JSON"),
        (
            edit_json("mask.json", background="purple", threshold=3),
            "mask.json: threshold 3 is not allowed; mask.json: background 'purple' is not allowed",
        ),
        (lambda folder: (folder / "mask.json").write_text('["white"]'), "a setting is missing or malformed"),
        (
            edit_json("inference.json", score="margin"),
            "inference.json: score must be one of hybrid_score, one_minus_max_p, p_hybrid",
        ),
    ],
    ids=[
        "temperature-0",
        "temperature-negative",
        "temperature-nan",
        "flip-as-string",
        "std-zero",
        "size-off-weights",
        "mask-truncated",
        "mask-out-of-range",
        "mask-a-list",
        "score-unknown",
    ],
)
def test_a_hand_edited_model_folder_is_refused_not_used(model_dir, tmp_path, capsys, damage, expected):
    """Every edit that would give silent nonsense is one line naming the file, exit 1."""
    import shutil

    edited = tmp_path / "edited"
    shutil.copytree(model_dir, edited)
    damage(edited)
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(photo)
    assert main(["predict", str(edited), str(photo)]) == 1
    error = capsys.readouterr().err
    assert f"{edited}: not a hybridwing model folder:" in error and expected in error, error


def test_export_refuses_a_folder_inside_the_model_folder(model_dir, tmp_path, capsys):
    """MODEL/sub would copy the model folder into itself."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(model_dir, model)
    before = sorted(p.name for p in model.rglob("*"))
    assert main(["export-submission", str(model), str(model / "sub")]) == 1
    assert "is inside the model folder" in capsys.readouterr().err
    assert sorted(p.name for p in model.rglob("*")) == before


def test_written_model_folders_and_exports_follow_the_umask(model_dir, tmp_path):
    """A lab group on a cluster can read what the pipeline writes (umask 022 here)."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        folder = read_model_folder(model_dir)
        backbone = load_backbone("hybridwing-vit-tiny", allow_random_init=True)
        write_model_folder(
            tmp_path / "model", folder.members, folder.classes, backbone, {}, folder.segmenter, MaskSettings()
        )
        out = tmp_path / "export"
        assert main(["export-submission", str(model_dir), str(out)]) == 0
        from hybridwing.atomic import atomic_file

        with atomic_file(tmp_path / "one.txt") as temporary:
            temporary.write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755 and stat.S_IMODE((out / "model.py").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "one.txt").stat().st_mode) == 0o644
    written = [path for path in [*(tmp_path / "model").iterdir(), *out.rglob("*")] if path.is_file()]
    assert {path.name for path in written} >= {"weights.safetensors", "member_0.pt2", "segmenter.pt2"}
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in written} == {path.name: 0o644 for path in written}
    assert stat.S_IMODE(model_dir.stat().st_mode) & 0o055 == 0o055, (
        "the model folder itself (written by write_model_folder)"
    )


def test_predict_refuses_pipes_and_devices_and_prints_every_other_row(model_dir, ten_real, tmp_path, capsys):
    """A FIFO in the folder, a symlink to /dev/zero, a name with undecodable
    bytes and a name that a spreadsheet would run: no hang, no endless read, every good row printed."""
    import os

    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(ten_real[0].read_bytes())
    os.mkfifo(folder / "pipe.jpg")
    os.symlink("/dev/zero", folder / "zero.jpg")
    odd_name = os.fsdecode(b"bad\xff\xfe.jpg")
    (folder / odd_name).write_bytes(ten_real[1].read_bytes())
    formula = folder / "=HYPERLINK(1).jpg"
    formula.write_bytes(ten_real[2].read_bytes())
    assert main(["predict", str(model_dir), str(folder)]) == 2
    captured = capsys.readouterr()
    assert "pipe.jpg is a FIFO (named pipe), not a regular file" in captured.err
    assert "zero.jpg is a character device, not a regular file" in captured.err
    printed = pd.read_csv(io.StringIO(captured.out))
    assert len(printed) == 3
    assert str(folder / "bad\\xff\\xfe.jpg") in printed["path"].tolist()
    assert str(folder / "a.jpg") in printed["path"].tolist()
    shown_formula = [p for p in printed["path"] if "HYPERLINK" in p]
    assert shown_formula == [str(formula)], "a path starting with '/' is no formula and stays as it is"
    capsys.readouterr()
    relative = os.getcwd()
    try:
        os.chdir(folder)
        assert main(["predict", str(model_dir), "=HYPERLINK(1).jpg"]) == 0
    finally:
        os.chdir(relative)
    assert pd.read_csv(io.StringIO(capsys.readouterr().out))["path"].tolist() == ["'=HYPERLINK(1).jpg"]


def test_predict_reads_every_extension_it_can_and_says_when_a_folder_has_none(model_dir, ten_real, tmp_path, capsys):
    """.gif and .jfif in a folder are read like named files; an empty folder prints
    the header and says so (exit 2); 1x1 and 1x100000 images are skipped with a reason."""
    folder = tmp_path / "formats"
    folder.mkdir()
    with Image.open(ten_real[0]) as image:
        image.convert("RGB").save(folder / "one.gif")
        image.convert("RGB").save(folder / "two.jfif", format="JPEG")
    Image.new("RGB", (1, 1)).save(folder / "dot.png")
    Image.new("RGB", (1, 2000)).save(folder / "line.png")
    assert main(["predict", str(model_dir), str(folder)]) == 2
    captured = capsys.readouterr()
    printed = pd.read_csv(io.StringIO(captured.out))
    assert sorted(Path(p).name for p in printed["path"]) == ["one.gif", "two.jfif"]
    assert (
        "dot.png: 1x1 pixels is not a photograph of wings" in captured.err and "line.png: 1x2000 pixels" in captured.err
    )

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["predict", str(model_dir), str(empty)]) == 2
    captured = capsys.readouterr()
    assert captured.out.startswith("path,subspecies,") and len(captured.out.splitlines()) == 1
    assert f"no photographs found in {empty}" in captured.err


def test_a_stored_threshold_gives_a_call_and_the_parents_of_a_called_hybrid(model_dir, ten_real, tmp_path, capsys):
    """The model folder's threshold (95% of the validation non-hybrids below it) turns
    the score into a call; a photograph called hybrid is named with its two most likely parents."""
    import shutil

    folder = tmp_path / "with_threshold"
    shutil.copytree(model_dir, folder)
    assert main(["predict", str(folder), *map(str, ten_real[:4])]) == 0
    plain = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert "call" not in plain.columns, "a folder without a threshold makes no call"
    middle = float(plain["hybrid_score"].median())
    (folder / "inference.json").write_text(
        json.dumps({"weights": ["weights.safetensors"], "temperature": 1.0, "flip_average": False, "threshold": middle})
    )
    assert main(["predict", str(folder), *map(str, ten_real[:4])]) == 0
    called = pd.read_csv(io.StringIO(capsys.readouterr().out), keep_default_na=False)
    assert (called["call"] == np.where(called["hybrid_score"] > middle, "hybrid", "non-hybrid")).all()
    hybrids = called[called["call"] == "hybrid"]
    assert (
        len(hybrids)
        and (
            hybrids["parents"] == [" x ".join(sorted(pair)) for pair in zip(hybrids["subspecies"], hybrids["top2"])]
        ).all()
    )
    assert (called.loc[called["call"] == "non-hybrid", "parents"] == "").all()
    # score.method: a folder that calls with another score thresholds that score, not the default
    low = float(called["p_hybrid"].median())
    edit_json("inference.json", threshold=low, score="p_hybrid")(folder)
    assert main(["predict", str(folder), *map(str, ten_real[:4])]) == 0
    by_p_hybrid = pd.read_csv(io.StringIO(capsys.readouterr().out), keep_default_na=False)
    assert (by_p_hybrid["call"] == np.where(by_p_hybrid["p_hybrid"] > low, "hybrid", "non-hybrid")).all()
    # per species: a photograph is called with the threshold of its most likely subspecies' species
    species = {name: ("a" if k % 2 == 0 else "b") for k, name in enumerate(CLASSES[:-1])}
    edit_json("inference.json", threshold=2.0, species=species, species_thresholds={"a": -1.0})(folder)
    assert main(["predict", str(folder), *map(str, ten_real[:4])]) == 0
    per_species = pd.read_csv(io.StringIO(capsys.readouterr().out), keep_default_na=False)
    in_a = per_species["subspecies"].map(species) == "a"
    assert (per_species["call"] == np.where(in_a, "hybrid", "non-hybrid")).all() and in_a.any()
    edit_json("inference.json", species_thresholds={"a": "low"})(folder)
    assert main(["predict", str(folder), str(ten_real[0])]) == 1
    assert "species_thresholds must map species to finite numbers" in capsys.readouterr().err
    edit_json("inference.json", threshold="high", species_thresholds={})(folder)
    assert main(["predict", str(folder), str(ten_real[0])]) == 1
    assert "threshold must be a finite number or null, not 'high'" in capsys.readouterr().err


def test_an_export_never_removes_a_folder_that_appears_while_it_is_written(model_dir, tmp_path, monkeypatch, capsys):
    """Between the export's check that the target is absent and its rename, someone makes the folder."""
    from hybridwing.score import export

    out = tmp_path / "submission"
    writes_programs = export.export_programs

    def and_meanwhile(classifier, partial):
        writes_programs(classifier, partial)
        out.mkdir()
        (out / "notes.txt").write_text("someone's work")

    monkeypatch.setattr(export, "export_programs", and_meanwhile)
    assert main(["export-submission", str(model_dir), str(out)]) == 1
    error = capsys.readouterr().err
    assert f"{out} appeared while it was being written" in error
    assert [path.name for path in out.iterdir()] == ["notes.txt"] and (
        out / "notes.txt"
    ).read_text() == "someone's work"
    (kept,) = tmp_path.glob(".submission.*.partial")
    assert str(kept) in error and (kept / "model.py").is_file() and (kept / "segmenter.pt2").is_file()


def test_predict_reports_a_link_loop_and_an_unreadable_folder_and_predicts_the_rest(
    model_dir, ten_real, tmp_path, capsys, monkeypatch
):
    """A name that gives no photograph is one line on stderr; every other photograph still gets its row."""
    import pathlib

    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    locked = tmp_path / "locked"
    locked.mkdir()
    listing = pathlib.Path.iterdir

    def refuse_locked(self):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return listing(self)

    monkeypatch.setattr(pathlib.Path, "iterdir", refuse_locked)  # root reads any folder, so refuse it here
    assert main(["predict", str(model_dir), str(loop), str(ten_real[0]), str(locked), str(ten_real[1])]) == 2
    captured = capsys.readouterr()
    rows = pd.read_csv(io.StringIO(captured.out))
    assert list(rows["path"]) == [str(ten_real[0]), str(ten_real[1])]
    assert f"{loop}: no such image or folder (a link that leads nowhere or round in a loop)" in captured.err
    assert f"{locked}: cannot be read (Permission denied)" in captured.err and "Traceback" not in captured.err


def test_predict_joins_a_users_table_by_file_name(model_dir, ten_real, tmp_path, capsys):
    """--table adds each photograph's row of the user's table (table_NAME columns; formulas quoted;
    a photograph the table does not list gets empty cells); a table without filename is one line."""
    from hybridwing.cli import main

    table = pd.DataFrame(
        {"filename": [p.name for p in ten_real[:2]], "locality": ["Tarapoto", "=HYPERLINK(1)"], "sex": ["f", "m"]}
    )
    table.to_csv(tmp_path / "collection.csv", index=False)
    assert main(["predict", str(model_dir), *map(str, ten_real[:3]), "--table", str(tmp_path / "collection.csv")]) == 0
    out = pd.read_csv(io.StringIO(capsys.readouterr().out), dtype=str, keep_default_na=False)
    assert out["table_locality"].tolist() == ["Tarapoto", "'=HYPERLINK(1)", ""]
    assert out["table_sex"].tolist() == ["f", "m", ""] and len(out) == 3
    table.drop(columns="filename").to_csv(tmp_path / "nameless.csv", index=False)
    assert main(["predict", str(model_dir), str(ten_real[0]), "--table", str(tmp_path / "nameless.csv")]) == 1
    assert "no column 'filename' to join the photographs by" in capsys.readouterr().err


def test_predict_explain_draws_each_photograph_once_beside_its_row(model_dir, ten_real, tmp_path, capsys):
    """--explain DIR: one picture per photograph, named by its stem (a second photograph of the same
    stem numbered), at the model's size; the mask drawn is the one the background was removed with."""
    again = tmp_path / "again"
    again.mkdir()
    (again / ten_real[0].name).write_bytes(ten_real[0].read_bytes())
    photographs = [*map(str, ten_real[:2]), str(again / ten_real[0].name)]
    assert main(["predict", str(model_dir), *photographs, "--explain", str(tmp_path / "why")]) == 0
    assert len(pd.read_csv(io.StringIO(capsys.readouterr().out))) == 3
    stems = [ten_real[0].stem, ten_real[1].stem, f"{ten_real[0].stem}_2"]
    assert sorted(p.name for p in (tmp_path / "why").iterdir()) == sorted(f"{stem}.png" for stem in stems)
    predictor = Predictor.load(model_dir)
    with Image.open(tmp_path / "why" / f"{ten_real[0].stem}.png") as picture:
        assert picture.size == (predictor.size, predictor.size)


def test_the_mask_an_explanation_greys_is_cropped_as_the_wing_image_is():
    """With cropping on, the mask drawn is cut to the wing image's box, so each pixel off the mask is
    a pixel the background removal painted."""
    rng = np.random.default_rng(0)
    photograph = rng.integers(0, 200, (120, 160, 3), dtype=np.uint8)
    mask = np.zeros((120, 160), np.uint8)
    mask[30:70, 40:90] = 1
    mask[50:90, 100:130] = 1
    for crop in (False, True):
        settings = MaskSettings(background="white", crop=crop, crop_margin=0.05)
        wings = np.asarray(remove_background(photograph, mask, settings, rng))
        shown = shown_mask(mask, settings).astype(bool)
        assert shown.shape == wings.shape[:2]
        assert (wings[~shown] == 255).all() and (wings[shown] < 255).all()
