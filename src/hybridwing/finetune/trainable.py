"""Which parameters of a classifier train, and at which learning rate."""

from __future__ import annotations

from typing import Any

from torch import nn

from hybridwing.model.backbone import WingClassifier


def vision_blocks(visual: nn.Module) -> nn.ModuleList:
    """The transformer blocks of an open_clip vision tower."""
    if hasattr(visual, "transformer") and hasattr(visual.transformer, "resblocks"):
        return visual.transformer.resblocks
    raise ValueError(f"{type(visual).__name__} has no transformer blocks to unfreeze; use unfrozen_blocks: all")


def configure_trainable(classifier: WingClassifier, unfrozen_blocks: int | str, train_proj: bool) -> None:
    """Freeze the vision tower except its last `unfrozen_blocks` blocks and ln_post (and proj when
    `train_proj`); ``"all"`` trains everything. The head always trains."""
    trainable_all = unfrozen_blocks == "all"
    for parameter in classifier.visual.parameters():
        parameter.requires_grad = trainable_all
    if not trainable_all:
        blocks = vision_blocks(classifier.visual)
        if int(unfrozen_blocks) > len(blocks):
            raise ValueError(
                f"config key finetune.unfrozen_blocks: {unfrozen_blocks}, but the model has {len(blocks)} blocks (or "
                "use all)"
            )
        for block in list(blocks)[len(blocks) - int(unfrozen_blocks) :]:
            block.requires_grad_(True)
        if getattr(classifier.visual, "ln_post", None) is not None:
            classifier.visual.ln_post.requires_grad_(True)
        proj = getattr(classifier.visual, "proj", None)
        if isinstance(proj, nn.Parameter):
            proj.requires_grad = train_proj
    classifier.head.requires_grad_(True)


def parameter_groups(classifier: WingClassifier, backbone_lr: float, head_lr: float) -> list[dict[str, Any]]:
    """Two AdamW groups: the trainable backbone parameters and the head."""
    backbone = [p for p in classifier.visual.parameters() if p.requires_grad]
    groups = [{"params": list(classifier.head.parameters()), "lr": head_lr, "name": "head"}]
    if backbone:
        groups.insert(0, {"params": backbone, "lr": backbone_lr, "name": "backbone"})
    return groups
