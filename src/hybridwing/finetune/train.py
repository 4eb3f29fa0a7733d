"""Fine-tune a classifier on the balanced TRAIN set, early-stopped on validation macro-F1.

Training resumes where it stopped: a checkpoint (model, optimiser, position in the epoch, history)
is written every `checkpoint_every` steps and at each epoch's end, outside the rule's outputs, and a
rerun with the same settings and classes continues from it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support
from torch import nn
from tqdm import tqdm

from hybridwing.atomic import atomic_file
from hybridwing.device import autocast, pick_device
from hybridwing.digest import contents_digest, file_digest, library_digest
from hybridwing.finetune.cache import TokenFeed, build_token_cache, cache_key, frozen_count
from hybridwing.finetune.trainable import configure_trainable, parameter_groups
from hybridwing.model.backbone import Backbone, WingClassifier, load_backbone
from hybridwing.model.card import HYBRID_TRAINED_TOWARDS
from hybridwing.model.preprocess import load_image, load_images, normalise
from hybridwing.pretrained import resolve_trunk_weights

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneSettings:
    """The ``finetune`` block of the config."""

    model: str = "hf-hub:imageomics/bioclip"
    allow_random_init: bool = False
    trunk_weights: dict[str, Any] | None = None
    unfrozen_blocks: int | str = 2
    train_proj: bool = True
    token_cache: bool = True
    backbone_lr: float = 1e-5
    head_lr: float = 1e-3
    lr_schedule: str = "cosine"
    warmup_fraction: float = 0.05
    weight_decay: float = 0.05
    label_smoothing: float = 0.0
    mixup: float = 0.0
    cross_share: float = 0.0
    hybrid_target: str = "class"
    batch_size: int = 32
    epochs: int = 10
    patience: int = 3
    seed: int = 0
    checkpoint_every: int = 50
    loss_epochs: int = 2
    ensemble: int = 1
    flip_average: bool = False
    temperature: float | str = 1.0

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> FinetuneSettings:
        return cls(**block)


class ImageFeed:
    """Model inputs by index from preloaded images; `logits` runs the whole classifier."""

    def __init__(self, images: torch.Tensor, backbone: Backbone):
        self.images = images
        self.backbone = backbone

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, index: torch.Tensor, device: torch.device) -> torch.Tensor:
        return normalise(self.images[index].to(device), self.backbone.mean, self.backbone.std)

    def logits(self, model: WingClassifier, x: torch.Tensor) -> torch.Tensor:
        return model(x)


Feed = ImageFeed | TokenFeed


def predict_logits(model: WingClassifier, feed: Feed, device: torch.device, batch_size: int) -> torch.Tensor:
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(feed), batch_size):
            index = torch.arange(start, min(start + batch_size, len(feed)))
            with autocast(device):
                outputs.append(feed.logits(model, feed.batch(index, device)).float().cpu())
    return torch.cat(outputs) if outputs else torch.zeros((0, model.head.out_features))


def feeds(
    model: WingClassifier,
    backbone: Backbone,
    train: pd.DataFrame,
    val: pd.DataFrame,
    settings: FinetuneSettings,
    cache_dir: Path | None,
    device: torch.device,
) -> tuple[Feed, Feed]:
    """Training and validation inputs: frozen-trunk tokens when the trunk is frozen and a cache
    folder is given, otherwise the preloaded images (always with `cross_share`: crosses are
    composed from pixels)."""
    if settings.unfrozen_blocks == "all" or not settings.token_cache or cache_dir is None or settings.cross_share:
        return (
            ImageFeed(load_images(train["path"].tolist(), backbone.image_size, "load train"), backbone),
            ImageFeed(load_images(val["path"].tolist(), backbone.image_size, "load val"), backbone),
        )
    n_frozen = frozen_count(model, int(settings.unfrozen_blocks))
    out = []
    for name, table in (("train", train), ("val", val)):
        paths = table["path"].tolist()

        def batches_from(start: int, paths: list[str] = paths) -> Iterator[torch.Tensor]:
            for first in range(start, len(paths), settings.batch_size):
                chunk = paths[first : first + settings.batch_size]
                yield normalise(
                    torch.stack([load_image(p, backbone.image_size) for p in chunk]), backbone.mean, backbone.std
                )

        key = cache_key(model, n_frozen, paths, backbone.image_size, backbone.mean, backbone.std)
        tokens = build_token_cache(
            model,
            n_frozen,
            batches_from,
            len(paths),
            key,
            Path(cache_dir) / f"{name}.npy",
            device,
            f"token cache {name}",
        )
        out.append(TokenFeed(tokens, n_frozen))
    return out[0], out[1]


def lr_factor(schedule: str, warmup_fraction: float, step: int, total_steps: int) -> float:
    """The multiple of the base learning rates at global `step` (0-based) of `total_steps`:
    a linear warm-up over the first `warmup_fraction` of the steps, then constant or a cosine
    decay to zero at the last step of the last epoch."""
    warmup = int(warmup_fraction * total_steps)
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total_steps - warmup)
    return 0.5 * (1 + math.cos(math.pi * progress))


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The shuffled order of an epoch, reproducible from (seed, epoch) alone, so a resumed run
    continues the same order."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


#: Settings that do not change how one model trains: changing them resumes a checkpoint.
NOT_TRAINING = ("checkpoint_every", "ensemble", "flip_average", "temperature")


def checkpoint_key(settings: FinetuneSettings, classes: list[str], train: pd.DataFrame, val: pd.DataFrame) -> str:
    """What a checkpoint must match to be resumed: the training settings, classes, labels, the
    contents of every image (an image rewritten at the same path, say with another background, is
    another training set), the pretrained trunk weights' contents and the code that trains (this
    module and what it imports)."""
    labelled = [name for name in ("path", "class_index", "parent_1", "parent_2") if name in train.columns]
    tables = train[labelled].to_csv(index=False) + val[["path", "class_index"]].to_csv(index=False)
    fingerprint = hashlib.sha256(tables.encode("utf-8", "surrogateescape")).hexdigest()
    images = contents_digest([*train["path"], *val["path"]])
    training = {name: value for name, value in asdict(settings).items() if name not in NOT_TRAINING}
    trunk = settings.trunk_weights and file_digest(resolve_trunk_weights(settings.trunk_weights["path"]))
    return json.dumps(
        {
            "settings": training,
            "classes": classes,
            "data": fingerprint,
            "images": images,
            "trunk_weights": trunk,
            "code": library_digest(__file__),
        },
        sort_keys=True,
    )


#: What a hybrid's target puts on the hybrid class and on each parent, per ``hybrid_target``.
HYBRID_TARGETS = {"class": (1.0, 0.0), "parents": (0.0, 0.5), "both": (0.5, 0.25)}


def training_targets(train: pd.DataFrame, classes: list[str], mode: str) -> torch.Tensor:
    """The class index of every training image (``mode`` class), or its target distribution: a
    hybrid (real or synthetic) whose two parents are classes shares its mass between the hybrid
    class and the parents as `HYBRID_TARGETS` says; every other image is one-hot."""
    indices = torch.tensor(train["class_index"].to_numpy(), dtype=torch.long)
    if mode == "class":
        return indices
    on_hybrid, on_parent = HYBRID_TARGETS[mode]
    targets = torch.nn.functional.one_hot(indices, len(classes)).double()
    index_of = {name: k for k, name in enumerate(classes[:-1])}
    hybrid = len(classes) - 1
    parents = [train[name] if name in train.columns else [""] * len(train) for name in ("parent_1", "parent_2")]
    for row, (k, first, second) in enumerate(zip(indices.tolist(), *parents)):
        if k == hybrid and first in index_of and second in index_of:
            targets[row] = 0.0
            targets[row, hybrid] = on_hybrid
            targets[row, index_of[first]] += on_parent
            targets[row, index_of[second]] += on_parent
    return targets.float()


def macro_f1_score(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Macro-F1 over the classes that occur in the truth or the predictions: a class with no
    validation images that is never predicted says nothing and does not count as F1 0."""
    labels = sorted(set(truth.tolist()) | set(predicted.tolist()))
    return float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)) if labels else 0.0


def class_report(truth: np.ndarray, predicted: np.ndarray, classes: list[str]) -> pd.DataFrame:
    labels = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    return pd.DataFrame({"class": classes, "precision": precision, "recall": recall, "f1": f1, "support": support})


def record_epoch_reports(
    state: dict[str, Any], epoch: int, truth: np.ndarray, predicted: np.ndarray, classes: list[str]
) -> None:
    """Append this epoch's per-class precision/recall/F1 and confusion counts to the resumable state."""
    for row in class_report(truth, predicted, classes).to_dict("records"):
        state["per_class"].append(
            {"epoch": epoch} | {name: value if name == "class" else float(value) for name, value in row.items()}
        )
    matrix = confusion_matrix(truth, predicted, labels=list(range(len(classes))))
    for (i, j), count in np.ndenumerate(matrix):
        state["confusion"].append({"epoch": epoch, "truth": classes[i], "predicted": classes[j], "count": int(count)})


def mixup_pairs(alpha: float, seed: int, step: int, size: int) -> tuple[float, torch.Tensor | None]:
    """Mixup's weight (drawn from Beta(alpha, alpha)) and each sample's partner in the batch for one
    training step, reproducible from seed and step so a resumed run draws the same; no partner when
    alpha is 0."""
    if alpha <= 0 or size < 2:
        return 1.0, None
    generator = np.random.default_rng([seed, step])
    return float(generator.beta(alpha, alpha)), torch.from_numpy(generator.permutation(size))


@dataclass(frozen=True)
class Crosses:
    """The crosses of one training step: the batch positions they replace and, for each, the
    training rows whose top half (`tops`) and bottom half (`bottoms`) it joins."""

    positions: torch.Tensor
    tops: torch.Tensor
    bottoms: torch.Tensor


class CrossDraws:
    """Fresh crosses for every batch: the top half of a training photograph (roughly its
    forewings) over the bottom half of a photograph of another subspecies. The two subspecies are
    drawn uniformly among the non-hybrid classes, then a photograph of each; every draw is
    reproducible from the seed and the step, so a resumed run draws the same."""

    def __init__(self, labels: np.ndarray, hybrid: int):
        self.labels = torch.as_tensor(labels.copy())
        self.rows = [np.flatnonzero(labels == k) for k in sorted(set(labels.tolist()) - {hybrid})]

    def draw(self, share: float, seed: int, step: int, size: int) -> Crosses | None:
        count = round(share * size)
        if count == 0 or len(self.rows) < 2:
            return None
        generator = np.random.default_rng([seed, step, 1])
        first = generator.integers(len(self.rows), size=count)
        second = (first + generator.integers(1, len(self.rows), size=count)) % len(self.rows)
        pick = [self.rows[k][generator.integers(len(self.rows[k]))] for k in (*first, *second)]
        return Crosses(
            torch.from_numpy(generator.choice(size, count, replace=False)),
            torch.tensor(pick[:count]),
            torch.tensor(pick[count:]),
        )

    def targets(self, crosses: Crosses, n_classes: int, mode: str) -> torch.Tensor:
        """What each cross is trained towards: the hybrid class (``mode`` class, as indices), or
        the shares of the hybrid class and of each parent that `HYBRID_TARGETS` gives."""
        hybrid = n_classes - 1
        if mode == "class":
            return torch.full((len(crosses.tops),), hybrid, dtype=torch.long)
        on_hybrid, on_parent = HYBRID_TARGETS[mode]
        parents = sum(
            torch.nn.functional.one_hot(self.labels[rows], n_classes) for rows in (crosses.tops, crosses.bottoms)
        )
        targets = on_parent * parents.float()
        targets[:, hybrid] = on_hybrid
        return targets


def fresh_state() -> dict[str, Any]:
    """The resumable state of a run that has not started: where it is, what it has seen, the best model."""
    return {
        "epoch": 1,
        "step": 0,
        "history": [],
        "per_class": [],
        "confusion": [],
        "best_f1": -1.0,
        "best_epoch": 0,
        "best_state": None,
        "stale": 0,
        "sample_losses": {},
    }


def save_checkpoint(
    path: Path, key: str, model: nn.Module, optimiser: torch.optim.Optimizer, state: dict[str, Any]
) -> None:
    """Model, optimiser and state (the best model's weights beside them), replaced atomically."""
    plain = {name: value for name, value in state.items() if name != "best_state"}
    payload = {"key": key, "model": model.state_dict(), "optimiser": optimiser.state_dict(), "state": json.dumps(plain)}
    if state["best_state"] is not None:
        payload["best_model"] = state["best_state"]
    with atomic_file(path) as temporary:
        torch.save(payload, temporary)


def resume(path: Path, key: str, model: nn.Module, optimiser: torch.optim.Optimizer) -> dict[str, Any]:
    """The state saved at `path` (model and optimiser restored) when it was written for `key`, else a fresh one."""
    if not path.is_file():
        return fresh_state()
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved["key"] != key:
        log.info(
            "ignoring %s: it was written for other settings, classes, image contents or code; training afresh", path
        )
        return fresh_state()
    model.load_state_dict(saved["model"])
    optimiser.load_state_dict(saved["optimiser"])
    state = json.loads(saved["state"]) | {"best_state": saved.get("best_model")}
    log.info("resuming from %s: epoch %d, step %d", path, state["epoch"], state["step"])
    return state


@dataclass
class TrainingRun:
    """One fine-tune in progress: the model, its optimiser, the data feeds and the resumable state."""

    model: WingClassifier
    optimiser: torch.optim.Optimizer
    base_lrs: list[float]
    train_feed: Feed
    val_feed: Feed
    targets: torch.Tensor
    val_labels: np.ndarray
    classes: list[str]
    settings: FinetuneSettings
    cross_draws: CrossDraws
    device: torch.device
    checkpoint: Path
    key: str
    state: dict[str, Any]

    @property
    def steps(self) -> int:
        return (len(self.train_feed) + self.settings.batch_size - 1) // self.settings.batch_size

    def save(self) -> None:
        save_checkpoint(self.checkpoint, self.key, self.model, self.optimiser, self.state)

    def train_step(self, epoch: int, step: int, index: torch.Tensor, loss_fn: nn.Module) -> float:
        """One optimiser step on the batch `index` (with crosses and mixed up when configured);
        returns its loss."""
        settings = self.settings
        global_step = (epoch - 1) * self.steps + step
        factor = lr_factor(settings.lr_schedule, settings.warmup_fraction, global_step, settings.epochs * self.steps)
        for group, base_lr in zip(self.optimiser.param_groups, self.base_lrs):
            group["lr"] = base_lr * factor
        x = self.train_feed.batch(index, self.device)
        targets = self.targets[index].to(self.device)
        crosses = self.cross_draws.draw(settings.cross_share, settings.seed, global_step, len(index))
        if crosses is not None:
            x, targets = self.with_crosses(x, targets, crosses)
        weight, partner = mixup_pairs(settings.mixup, settings.seed, global_step, len(index))
        if partner is not None:
            x = weight * x + (1 - weight) * x[partner.to(self.device)]
        with autocast(self.device):
            logits = self.train_feed.logits(self.model, x)
        per_sample = loss_fn(logits.float(), targets)
        if partner is not None:
            per_sample = weight * per_sample + (1 - weight) * loss_fn(logits.float(), targets[partner.to(self.device)])
        loss = per_sample.mean()
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        if epoch <= settings.loss_epochs:
            replaced = set() if crosses is None else set(crosses.positions.tolist())
            for position, (i, value) in enumerate(zip(index.tolist(), per_sample.detach().cpu().tolist())):
                if position not in replaced:
                    self.state["sample_losses"].setdefault(str(i), []).append(round(value, 5))
        return loss.item()

    def with_crosses(
        self, x: torch.Tensor, targets: torch.Tensor, crosses: Crosses
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch with the crosses in their positions: top halves from one photograph, bottom
        halves from the other, and their targets."""
        count, half = len(crosses.positions), x.shape[2] // 2
        parts = self.train_feed.batch(torch.cat([crosses.tops, crosses.bottoms]), self.device)
        positions = crosses.positions.to(self.device)
        x, targets = x.clone(), targets.clone()
        x[positions] = torch.cat([parts[:count, :, :half], parts[count:, :, half:]], dim=2)
        targets[positions] = self.cross_draws.targets(crosses, len(self.classes), self.settings.hybrid_target).to(
            self.device
        )
        return x, targets

    def train_epoch(self, loss_fn: nn.Module) -> list[float]:
        """The rest of the current epoch (from the saved step), checkpointing every few steps."""
        epoch, batch = self.state["epoch"], self.settings.batch_size
        order = epoch_order(self.settings.seed, epoch, len(self.train_feed))
        self.model.train()
        losses = []
        for step in tqdm(
            range(self.state["step"], self.steps),
            desc=f"finetune epoch {epoch}",
            unit="batch",
            initial=self.state["step"],
            total=self.steps,
        ):
            losses.append(self.train_step(epoch, step, order[step * batch : (step + 1) * batch], loss_fn))
            self.state["step"] = step + 1
            if self.state["step"] % self.settings.checkpoint_every == 0:
                self.save()
        return losses

    def validate(self, losses: list[float], started: float) -> None:
        """Score the epoch on validation, record it, keep the best model, and move to the next epoch."""
        epoch = self.state["epoch"]
        predicted = (
            predict_logits(self.model, self.val_feed, self.device, self.settings.batch_size * 2).argmax(1).numpy()
        )
        macro_f1 = macro_f1_score(self.val_labels, predicted)
        accuracy = float((predicted == self.val_labels).mean()) if len(self.val_labels) else 0.0
        self.state["history"].append(
            {
                "epoch": epoch,
                "train_loss": float(np.mean(losses)) if losses else float("nan"),
                "val_macro_f1": macro_f1,
                "val_accuracy": accuracy,
                "seconds": time.perf_counter() - started,
            }
        )
        record_epoch_reports(self.state, epoch, self.val_labels, predicted, self.classes)
        log.info(
            "epoch %d: loss %.4f, validation macro-F1 %.4f, accuracy %.4f",
            epoch,
            self.state["history"][-1]["train_loss"],
            macro_f1,
            accuracy,
        )
        if macro_f1 > self.state["best_f1"]:
            self.state.update(best_f1=macro_f1, best_epoch=epoch, stale=0)
            self.state["best_state"] = {
                name: tensor.detach().cpu().clone() for name, tensor in self.model.state_dict().items()
            }
        else:
            self.state["stale"] += 1
        self.state["epoch"], self.state["step"] = epoch + 1, 0
        self.save()


@dataclass
class TrainedModel:
    """One fine-tune's result: the classifier at its best epoch, its backbone, the resumable state
    (history, per-class reports, per-sample losses), the validation inputs, and how it ran."""

    model: WingClassifier
    backbone: Backbone
    state: dict[str, Any]
    val_feed: Feed
    device: torch.device
    setup_seconds: float
    n_train: int
    n_val: int


def finetune(
    train: pd.DataFrame,
    val: pd.DataFrame,
    classes: list[str],
    settings: FinetuneSettings,
    checkpoint_path: str | Path,
    threads: int = 1,
    cache_dir: str | Path | None = None,
) -> TrainedModel:
    """Train on `train` (path, class_index), validate on `val` (image_id, path, class_index),
    resuming from `checkpoint_path` when it was written for the same settings and images.
    With a frozen trunk and a `cache_dir`, training runs from cached frozen-trunk tokens.

    """
    torch.manual_seed(settings.seed)
    torch.set_num_threads(max(1, threads))
    device = pick_device()
    backbone = load_backbone(settings.model, settings.allow_random_init, settings.trunk_weights)
    if not backbone.pretrained and settings.unfrozen_blocks != "all":
        log.warning("a frozen random trunk is meaningless: set finetune.unfrozen_blocks: all for a random backbone")
    model = WingClassifier(backbone.visual, len(classes))
    configure_trainable(model, settings.unfrozen_blocks, settings.train_proj)
    model.to(device)
    optimiser = torch.optim.AdamW(
        parameter_groups(model, settings.backbone_lr, settings.head_lr), weight_decay=settings.weight_decay
    )
    base_lrs = [group["lr"] for group in optimiser.param_groups]  # before a resumed optimiser overwrites them
    started = time.perf_counter()
    train_feed, val_feed = feeds(
        model, backbone, train, val, settings, None if cache_dir is None else Path(cache_dir), device
    )
    setup_seconds = time.perf_counter() - started
    key = checkpoint_key(settings, classes, train, val)
    checkpoint = Path(checkpoint_path)
    run = TrainingRun(
        model,
        optimiser,
        base_lrs,
        train_feed,
        val_feed,
        training_targets(train, classes, settings.hybrid_target),
        val["class_index"].to_numpy(),
        classes,
        settings,
        CrossDraws(train["class_index"].to_numpy(), len(classes) - 1),
        device,
        checkpoint,
        key,
        resume(checkpoint, key, model, optimiser),
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing, reduction="none")
    while run.state["epoch"] <= settings.epochs and run.state["stale"] < settings.patience:
        started = time.perf_counter()
        losses = run.train_epoch(loss_fn)
        run.validate(losses, started)
    if run.state["stale"] >= settings.patience:
        log.info("early stop: no better validation macro-F1 for %d epochs", run.state["stale"])
    model.load_state_dict(run.state["best_state"])
    return TrainedModel(model, backbone, run.state, val_feed, device, setup_seconds, len(train), len(val))


def reports(probabilities: np.ndarray, val: pd.DataFrame, classes: list[str], hybrid_target: str) -> dict[str, Any]:
    """Per-class precision/recall/F1 (with what each class was trained towards), the confusion
    matrix, and the most confidently wrong images of the validation images' class probabilities."""
    predicted = probabilities.argmax(1)
    truth = val["class_index"].to_numpy()
    towards = ["itself"] * (len(classes) - 1) + [HYBRID_TRAINED_TOWARDS[hybrid_target]]
    wrong = val.assign(
        predicted=[classes[k] for k in predicted], confidence=probabilities.max(1), truth=[classes[k] for k in truth]
    )
    wrong = wrong[predicted != truth].sort_values("confidence", ascending=False)
    return {
        "per_class": class_report(truth, predicted, classes).assign(trained_towards=towards),
        "confusion": pd.DataFrame(
            confusion_matrix(truth, predicted, labels=list(range(len(classes)))), index=classes, columns=classes
        ),
        "misclassified": wrong[["image_id", "path", "truth", "predicted", "confidence"]].head(32),
        "macro_f1": macro_f1_score(truth, predicted),
        "accuracy": float((predicted == truth).mean()) if len(truth) else 0.0,
    }


def likely_mislabelled(train: pd.DataFrame, sample_losses: dict[str, list[float]]) -> pd.DataFrame:
    """Mean training loss of each image over the first epochs; the highest are flagged for a look."""
    frame = train.reset_index(drop=True).copy()
    frame["mean_loss"] = [float(np.mean(sample_losses.get(str(i), [np.nan]))) for i in range(len(frame))]
    threshold = frame["mean_loss"].mean() + 3 * frame["mean_loss"].std()
    frame["flagged"] = frame["mean_loss"] > threshold
    return frame.sort_values("mean_loss", ascending=False)[["path", "class", "source_image", "mean_loss", "flagged"]]
