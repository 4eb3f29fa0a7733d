"""The ``review`` block of the config. Each review rule is handed only the keys it uses (so a change
reruns only that rule); the keys it is not handed keep their defaults here."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from hybridwing.review.triage import TriageSettings

JUNK_PROMPTS = (
    "a photo of a butterfly wing",
    "a photo of a ruler",
    "a photo of a specimen label",
    "a photo of an empty tray",
    "a photo that is not a butterfly",
)


@dataclass(frozen=True)
class LabelIssueSettings:
    """`folds`: folds (grouped by specimen) of the out-of-fold probe that confident learning judges."""

    folds: int = 5

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> LabelIssueSettings:
        return cls(folds=int(block["folds"]))


@dataclass(frozen=True)
class ZeroShotSettings:
    """`prompts`: the first describes a clean photograph, every other a kind of junk; `threshold`:
    the junk prompts' summed probability that flags a photograph."""

    prompts: tuple[str, ...] = JUNK_PROMPTS
    threshold: float = 0.5

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> ZeroShotSettings:
        return cls(prompts=tuple(block["prompts"]), threshold=float(block["threshold"]))


@dataclass(frozen=True)
class ReviewSettings:
    """`batch_size`: images per batch when embedding; `seed`: of k-means, the 2-D map and the folds;
    `duplicate_cosine`: the least similarity of embedding near-duplicates; `sheet_images`: images per
    band, per class and on the label-issue sheet of the report."""

    batch_size: int = 64
    seed: int = 0
    duplicate_cosine: float = 0.999
    sheet_images: int = 16
    triage: TriageSettings = field(default_factory=TriageSettings)
    label_issues: LabelIssueSettings = field(default_factory=LabelIssueSettings)
    zero_shot: ZeroShotSettings = field(default_factory=ZeroShotSettings)

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> ReviewSettings:
        """The settings of the keys in `block` (all of the block, or the part a rule is handed)."""
        nested = {"triage": TriageSettings, "label_issues": LabelIssueSettings, "zero_shot": ZeroShotSettings}
        unknown = set(block) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"review: unknown keys {', '.join(sorted(unknown))}")
        values = {key: nested[key].from_config(value) if key in nested else value for key, value in block.items()}
        return cls(**values)
