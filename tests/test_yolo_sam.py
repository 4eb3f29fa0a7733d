"""The YOLO+SAM teacher's glue, run with small random-weight stand-ins of both models."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch

from hybridwing.segment.teacher import TeacherSettings, write_teacher_masks
from hybridwing.segment.yolo_sam import TeacherUnavailable, YoloSamSettings, YoloSamTeacher

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ultralytics") is None or importlib.util.find_spec("segment_anything") is None,
    reason="the yolo_sam packages are not installed (make setup installs them)",
)


@pytest.fixture(scope="module")
def weights(tmp_path_factory, monkeypatch_module):
    """A random-init YOLOv8n (from ultralytics' own yaml) and a one-block SAM, saved as weight files."""
    folder = tmp_path_factory.mktemp("weights")
    monkeypatch_module.setenv("YOLO_CONFIG_DIR", str(folder))
    monkeypatch_module.setenv("YOLO_AUTOINSTALL", "false")
    import segment_anything
    import ultralytics
    from segment_anything.build_sam import _build_sam

    torch.manual_seed(0)
    yolo = ultralytics.YOLO("yolov8n.yaml")
    yolo.save(str(folder / "yolo.pt"))

    def tiny_sam(checkpoint=None):
        return _build_sam(
            encoder_embed_dim=48,
            encoder_depth=1,
            encoder_num_heads=2,
            encoder_global_attn_indexes=[0],
            checkpoint=checkpoint,
        )

    torch.save(tiny_sam().state_dict(), folder / "sam.pth")
    monkeypatch_module.setitem(segment_anything.sam_model_registry, "vit_b", tiny_sam)
    return {
        "yolo_weights": str(folder / "yolo.pt"),
        "sam_weights": str(folder / "sam.pth"),
        "sam_model": "vit_b",
        "confidence": 0.0,
        "wing_classes": [0],
    }


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_boxes_prompt_sam_and_masks_are_united(weights, heliconius):
    from PIL import Image

    teacher = YoloSamTeacher.load(YoloSamSettings.from_config(weights))
    rgb = np.asarray(Image.open(heliconius / "images" / "40303_CAM041834_d.JPG").convert("RGB"))
    boxes = teacher.wing_boxes(rgb)
    assert boxes.shape == (1, 4), "one box per wing class"
    mask = teacher.mask(rgb)
    assert mask.shape == rgb.shape[:2] and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    single = np.zeros_like(mask)
    teacher.predictor.set_image(rgb)
    for box in boxes:
        single |= teacher.predictor.predict(box=box, multimask_output=False)[0][0].astype(np.uint8)
    assert np.array_equal(mask, single)


def test_no_wing_box_gives_an_empty_mask(weights):
    teacher = YoloSamTeacher.load(YoloSamSettings.from_config({**weights, "wing_classes": [79], "confidence": 0.99}))
    assert teacher.mask(np.full((64, 64, 3), 128, np.uint8)).sum() == 0


def test_teacher_rule_path_runs_with_the_stand_ins(weights, heliconius, tmp_path):
    import pandas as pd

    images = pd.DataFrame(
        [{"image_id": "a", "path": str(heliconius / "images" / "40303_CAM041834_d.JPG"), "split": "train"}]
    )
    settings = TeacherSettings.from_config({"method": "yolo_sam", "yolo_sam": weights})
    index = write_teacher_masks(images, settings, tmp_path / "masks")
    assert (tmp_path / "masks" / "a.png").is_file() and 0 <= index.loc[0, "wing_fraction"] <= 1


def test_missing_weight_file_is_named(weights, tmp_path):
    with pytest.raises(TeacherUnavailable, match=r"teacher.yolo_sam.sam_weights: weight file not found: .*nowhere.pth"):
        YoloSamTeacher.load(YoloSamSettings.from_config({**weights, "sam_weights": str(tmp_path / "nowhere.pth")}))


def test_missing_package_is_named(weights, monkeypatch):
    monkeypatch.setitem(sys.modules, "segment_anything", None)
    with pytest.raises(TeacherUnavailable, match="needs the Python package\\(s\\) segment-anything"):
        YoloSamTeacher.load(YoloSamSettings.from_config(weights))
