"""Every default is written once in effect: the config schema's defaults and the settings
dataclasses' agree, block by block, key by key."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from conftest import REPO

from hybridwing.balance.augment_settings import AugmentSettings
from hybridwing.balance.balance import BalanceSettings
from hybridwing.balance.crosses import CrossSettings
from hybridwing.data.fetch import FetchSettings
from hybridwing.data.split import SplitSettings
from hybridwing.finetune.train import FinetuneSettings
from hybridwing.holdout.settings import HoldoutSettings
from hybridwing.review.settings import LabelIssueSettings, ReviewSettings, ZeroShotSettings
from hybridwing.review.triage import TriageSettings
from hybridwing.score.settings import ScoreSettings
from hybridwing.segment.classical import ClassicalSettings
from hybridwing.segment.mask_settings import MaskSettings
from hybridwing.segment.teacher import TeacherSettings
from hybridwing.segment.unet import UnetSettings
from hybridwing.segment.yolo_sam import YoloSamSettings
from hybridwing.synthetic.collection import SyntheticSettings

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())["properties"]
BLOCKS = {
    ("fetch",): FetchSettings,
    ("split",): SplitSettings,
    ("unet",): UnetSettings,
    ("mask",): MaskSettings,
    ("balance",): BalanceSettings,
    ("balance", "augment"): AugmentSettings,
    ("balance", "crosses"): CrossSettings,
    ("finetune",): FinetuneSettings,
    ("holdout",): HoldoutSettings,
    ("score",): ScoreSettings,
    ("review",): ReviewSettings,
    ("review", "triage"): TriageSettings,
    ("review", "label_issues"): LabelIssueSettings,
    ("review", "zero_shot"): ZeroShotSettings,
    ("teacher",): TeacherSettings,
    ("teacher", "classical"): ClassicalSettings,
    ("dataset", "synthetic"): SyntheticSettings,
    ("teacher", "yolo_sam"): YoloSamSettings,
}
#: Keys the schema leaves without a default (optional paths): the dataclass says "not given".
NOT_GIVEN = ("", None)


def default_of(field: dataclasses.Field):
    value = field.default_factory() if field.default is dataclasses.MISSING else field.default
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("path", list(BLOCKS), ids=[".".join(path) for path in BLOCKS])
def test_the_schema_and_the_dataclass_give_the_same_defaults(path):
    block = SCHEMA[path[0]]
    for key in path[1:]:
        block = block["properties"][key]
    fields = {field.name: field for field in dataclasses.fields(BLOCKS[path])}
    nested = {name for name, field in fields.items() if dataclasses.is_dataclass(default_of(field))}
    assert set(block["properties"]) - nested == set(fields) - nested, "the same keys"
    for name in set(fields) - nested:
        schema = block["properties"][name]
        if "default" in schema:
            assert default_of(fields[name]) == schema["default"], f"{'.'.join(path)}.{name}"
        else:
            assert default_of(fields[name]) in NOT_GIVEN, f"{'.'.join(path)}.{name} has no default in the schema"
