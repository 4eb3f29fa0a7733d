"""The student: a small segmentation_models_pytorch U-Net distilled from teacher masks (wing vs rest)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import segmentation_models_pytorch as smp
import torch
from PIL import Image
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms import v2
from tqdm import tqdm

from hybridwing.atomic import atomic_file
from hybridwing.device import autocast, channels_last, pick_device
from hybridwing.pretrained import PACKAGE_PREFIX, matched_state, read_state_dict, resolve_trunk_weights
from hybridwing.segment.predict import to_input

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnetSettings:
    """The ``unet`` block of the config."""

    encoder: str = "mobilenet_v2"
    encoder_depth: int = 4
    decoder_channels: tuple[int, ...] = (64, 32, 16, 8)
    encoder_weights: str | None = None
    image_size: int = 256
    batch_size: int = 8
    epochs: int = 30
    patience: int = 4
    min_delta: float = 0.001
    lr: float = 1e-3
    seed: int = 0
    max_train_images: int | None = None
    min_val_iou: float = 0.5  # not a training setting: under it, the run warns that the masks are unreliable

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> UnetSettings:
        values = dict(block)
        values["decoder_channels"] = tuple(values.get("decoder_channels", cls.decoder_channels))
        return cls(**values)


def is_weights_file(spec: str | None) -> bool:
    """Whether `encoder_weights` names a file (or ``package:MODULE/PATH``) rather than weights that
    segmentation_models_pytorch would download by name."""
    return bool(spec) and (spec.startswith(PACKAGE_PREFIX) or Path(spec).suffix in {".pt", ".pth", ".safetensors"})


def build_unet(settings: UnetSettings, pretrained: bool = True) -> nn.Module:
    """The U-Net of `settings`, one output channel (wing logit). With `pretrained`, its encoder
    takes `encoder_weights`: a weights file or a file a package ships, matched tensor by tensor (the
    EfficientNet-Lite0 ImageNet weights fill ``timm-tf_efficientnet_lite0``), or a name
    segmentation_models_pytorch downloads. A trained checkpoint is built without them."""
    local = is_weights_file(settings.encoder_weights)
    model = smp.Unet(
        encoder_name=settings.encoder,
        encoder_depth=settings.encoder_depth,
        encoder_weights=settings.encoder_weights if pretrained and not local else None,
        decoder_channels=settings.decoder_channels,
        classes=1,
    )
    if pretrained and local:
        path = resolve_trunk_weights(settings.encoder_weights)
        model.encoder.load_state_dict(matched_state(model.encoder, read_state_dict(path), str(path)))
    return model


def load_pair(image_path: str, mask_path: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An image and its binary mask resized to `size` x `size` as uint8 tensors (3, S, S) and (1, S, S)."""
    with Image.open(image_path) as image:
        rgb = np.array(image.convert("RGB").resize((size, size), Image.BILINEAR))
    with Image.open(mask_path) as mask:
        binary = np.asarray(mask.convert("L").resize((size, size), Image.NEAREST)) > 0
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous(), torch.from_numpy(binary[None].astype(np.uint8))


def joint_augmentation() -> v2.Compose:
    """Geometric transforms move image and mask together; colour changes touch the image only."""
    return v2.Compose(
        [
            v2.RandomHorizontalFlip(),
            v2.RandomAffine(degrees=10, translate=(0.05, 0.05), scale=(0.9, 1.1)),
            v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02),
        ]
    )


def iou_and_dice(predicted: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image IoU and Dice of binary masks (N, 1, H, W); an empty pair counts as perfect."""
    predicted, target = predicted.bool().flatten(1), target.bool().flatten(1)
    intersection = (predicted & target).sum(1).float()
    union = (predicted | target).sum(1).float()
    total = predicted.sum(1).float() + target.sum(1).float()
    iou = torch.where(union > 0, intersection / union.clamp(min=1), torch.ones_like(union))
    dice = torch.where(total > 0, 2 * intersection / total.clamp(min=1), torch.ones_like(total))
    return iou, dice


def evaluate(
    model: nn.Module, images: torch.Tensor, masks: torch.Tensor, batch_size: int, device: torch.device
) -> dict[str, float]:
    model.eval()
    ious, dices = [], []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = to_input(images[start : start + batch_size].to(device))
            with autocast(device):
                logits = model(batch)
            iou, dice = iou_and_dice(logits.float() > 0, masks[start : start + batch_size].to(device))
            ious.append(iou.cpu())
            dices.append(dice.cpu())
    iou, dice = torch.cat(ious), torch.cat(dices)
    return {"iou": float(iou.mean()), "dice": float(dice.mean()), "iou_min": float(iou.min()), "n_images": len(iou)}


def load_split(frame: pd.DataFrame, size: int, desc: str) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = [
        load_pair(row.path, row.mask, size) for row in tqdm(frame.itertuples(), total=len(frame), desc=desc, unit="img")
    ]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def train_unet(
    pairs: pd.DataFrame, settings: UnetSettings, threads: int = 1
) -> tuple[nn.Module, pd.DataFrame, dict[str, Any]]:
    """Distil the U-Net on `pairs` (columns path, mask, split in train/val/test).

    Trains on ``train``, keeps the weights of the epoch with the best validation IoU and stops after
    `patience` epochs that gain less than `min_delta`; reports IoU and Dice against the teacher on ``test``.
    """
    torch.manual_seed(settings.seed)
    torch.set_num_threads(max(1, threads))
    device = pick_device()
    train = pairs[pairs["split"] == "train"]
    if settings.max_train_images is not None and len(train) > settings.max_train_images:
        train = train.sample(settings.max_train_images, random_state=settings.seed)
    images, masks = load_split(train, settings.image_size, "load train")
    val_images, val_masks = load_split(pairs[pairs["split"] == "val"], settings.image_size, "load val")
    model = channels_last(build_unet(settings), device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.lr)
    dice_loss = smp.losses.DiceLoss(mode="binary", from_logits=True)
    bce_loss = nn.BCEWithLogitsLoss()
    augment = joint_augmentation()
    generator = torch.Generator().manual_seed(settings.seed)
    history, best_iou, best_state, stale = [], -1.0, None, 0
    for epoch in range(1, settings.epochs + 1):
        model.train()
        started, losses = time.perf_counter(), []
        order = torch.randperm(len(images), generator=generator)
        for start in tqdm(
            range(0, len(order), settings.batch_size), desc=f"unet epoch {epoch}", unit="batch", leave=False
        ):
            index = order[start : start + settings.batch_size]
            batch = [augment(tv_tensors.Image(images[i]), tv_tensors.Mask(masks[i])) for i in index]
            x = to_input(torch.stack([b[0] for b in batch]).to(device))
            y = torch.stack([b[1] for b in batch]).float().to(device)
            with autocast(device):
                logits = model(x)
            loss = dice_loss(logits.float(), y) + bce_loss(logits.float(), y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        scores = evaluate(model, val_images, val_masks, settings.batch_size * 2, device)
        history.append(
            {
                "epoch": epoch,
                "train_loss": float(np.mean(losses)),
                "val_iou": scores["iou"],
                "val_dice": scores["dice"],
                "seconds": time.perf_counter() - started,
            }
        )
        log.info(
            "epoch %d: loss %.4f, val IoU %.4f, Dice %.4f",
            epoch,
            history[-1]["train_loss"],
            scores["iou"],
            scores["dice"],
        )
        stale = 0 if scores["iou"] > best_iou + settings.min_delta else stale + 1
        if scores["iou"] > best_iou:
            best_iou = scores["iou"]
            best_state = {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}
        if stale >= settings.patience:
            log.info("early stop: validation IoU gained less than %g for %d epochs", settings.min_delta, stale)
            break
    model.load_state_dict(best_state)
    test = pairs[pairs["split"] == "test"]
    test_images, test_masks = load_split(test, settings.image_size, "load test")
    metrics = {
        "teacher_agreement_test": evaluate(model, test_images, test_masks, settings.batch_size * 2, device),
        "best_val_iou": best_iou,
        "epochs_run": len(history),
        "n_train": len(train),
        "device": device.type,
    }
    return model.cpu(), pd.DataFrame(history), metrics


def save_checkpoint(model: nn.Module, settings: UnetSettings, path: str | Path) -> None:
    """Weights and the settings they were trained with; plain tensors and values, no pickled objects."""
    with atomic_file(path) as temporary:
        torch.save({"state_dict": model.state_dict(), "settings": json.dumps(asdict(settings))}, temporary)


def load_checkpoint(path: str | Path) -> tuple[nn.Module, UnetSettings]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    settings = UnetSettings.from_config(json.loads(checkpoint["settings"]))
    model = build_unet(settings, pretrained=False)
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), settings
