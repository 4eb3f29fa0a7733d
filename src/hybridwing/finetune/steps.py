"""The finetune rule, file to file."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybridwing.data.tables import read_metadata
from hybridwing.finetune.cache import TokenFeed
from hybridwing.finetune.figures import confusion_heatmap
from hybridwing.finetune.train import FinetuneSettings, TrainedModel, finetune, likely_mislabelled, reports
from hybridwing.hybrid_scores import hybrid_scores, threshold_at
from hybridwing.model.card import HYBRID_TRAINED_TOWARDS
from hybridwing.model.folder import write_model_folder
from hybridwing.model.inference import (
    embed_files,
    ensemble_probabilities,
    fit_temperature,
    member_logits_of_files,
)
from hybridwing.model.ranks import Ranks
from hybridwing.plots import training_curves
from hybridwing.segment.mask_settings import MaskSettings

log = logging.getLogger(__name__)


def labelled_split(wings: pd.DataFrame, splits: pd.DataFrame, split: str, classes: list[str]) -> pd.DataFrame:
    """The background-removed images of one split with their label, `class` and `class_index`;
    labels the classifier does not know are left out (with a warning)."""
    table = wings[wings["split"] == split].merge(splits[["image_id", "label"]], on="image_id")
    unknown = sorted(set(table["label"]) - set(classes))
    if unknown:
        log.warning("%s classes with no training images are left out: %s", split, ", ".join(unknown))
    index_of = {name: k for k, name in enumerate(classes)}
    table = table[table["label"].isin(classes)].reset_index(drop=True)
    return table.assign(
        **{"class": table["label"], "class_index": table["label"].map(index_of), "source_image": table["image_id"]}
    )


def share_above(
    probabilities: np.ndarray, val: pd.DataFrame, classes: list[str], score: str, threshold: float | None
) -> float | None:
    """The share of the validation non-hybrids whose hybrid score `score` is above `threshold`."""
    non_hybrid = val["class_index"].to_numpy() != len(classes) - 1
    if threshold is None or not non_hybrid.any():
        return None
    return float((hybrid_scores(probabilities)[score].to_numpy()[non_hybrid] > threshold).mean())


def call_thresholds(
    probabilities: np.ndarray, non_hybrid: np.ndarray, species: np.ndarray, score: str
) -> tuple[float | None, dict[str, float]]:
    """The value of hybrid score `score` that keeps 95% of the validation non-hybrids at or below it
    (None without validation non-hybrids), and, when they are of more than one species, each
    species' own (the challenge thresholds each group of a species apart)."""
    if not non_hybrid.any():
        log.warning("no validation non-hybrids: the model folder stores no call threshold")
        return None, {}
    values = hybrid_scores(probabilities)[score].to_numpy()
    overall = threshold_at(values[non_hybrid])
    present = sorted(set(species[non_hybrid]))
    if len(present) < 2:
        return overall, {}
    return overall, {name: threshold_at(values[non_hybrid & (species == name)]) for name in present}


@dataclass(frozen=True)
class FinetuneOutputs:
    """Where the finetune rule writes: the model folder, the training history and its curve, the
    metrics, and the validation reports."""

    model: str
    history: str
    metrics: str
    curve: str
    per_class: str
    confusion: str
    confusion_plot: str
    per_class_epochs: str
    confusion_epochs: str
    misclassified: str
    losses: str


@dataclass(frozen=True)
class Calls:
    """How the model calls: its temperature, the threshold of its hybrid score (one per species
    where validation holds two) and the species of each subspecies."""

    temperature: float
    threshold: float | None
    species_thresholds: dict[str, float]
    species: dict[str, str]


def training_set(manifest_path: str, held_out_path: str | None) -> tuple[pd.DataFrame, list[str]]:
    """The balanced set and its classes (the hybrid class stays, trained or not); with
    `held_out_path` (a table with a ``path`` column), less the rows of those paths."""
    manifest = pd.read_csv(manifest_path, keep_default_na=False)
    classes = list(manifest.drop_duplicates("class_index").sort_values("class_index")["class"])
    if held_out_path:
        held_out = set(pd.read_csv(held_out_path, keep_default_na=False)["path"])
        manifest = manifest[~manifest["path"].isin(held_out)].reset_index(drop=True)
        log.info("%d training images held out (%s)", len(held_out), held_out_path)
    return manifest, classes


def train_members(
    manifest: pd.DataFrame,
    val: pd.DataFrame,
    classes: list[str],
    settings: FinetuneSettings,
    checkpoint_path: str,
    threads: int,
    cache_dir: str,
) -> list[TrainedModel]:
    """The ensemble's members, each with its own seed and checkpoint."""
    members = []
    for k in range(settings.ensemble):
        checkpoint = Path(checkpoint_path)
        checkpoint = checkpoint if k == 0 else checkpoint.with_name(f"{checkpoint.stem}_{k}.pt")
        log.info("ensemble member %d of %d (seed %d)", k + 1, settings.ensemble, settings.seed + k)
        member_settings = replace(settings, seed=settings.seed + k)
        members.append(finetune(manifest, val, classes, member_settings, checkpoint, threads, cache_dir))
    return members


def validation_probabilities(
    members: list[TrainedModel], val: pd.DataFrame, settings: FinetuneSettings
) -> tuple[np.ndarray, float]:
    """The ensemble's class probabilities of the validation split, and the temperature they were
    taken at (fitted on them when asked)."""
    backbone = members[0].backbone
    logits = member_logits_of_files(
        [member.model.eval() for member in members],
        val["path"].tolist(),
        backbone.image_size,
        backbone.mean,
        backbone.std,
        settings.flip_average,
        members[0].device,
    )
    temperature = settings.temperature
    if temperature == "fit" and len(val) == 0:
        log.warning("no validation images to fit the temperature on: it stays 1")
        temperature = 1.0
    elif temperature == "fit":
        temperature = fit_temperature(logits, val["class_index"].to_numpy())
        log.info("temperature fitted on the validation split: %.3g", temperature)
    return ensemble_probabilities(logits, float(temperature)), float(temperature)


def model_calls(
    probabilities: np.ndarray, temperature: float, val: pd.DataFrame, classes: list[str], metadata_path: str, score: str
) -> Calls:
    """The temperature, thresholds and species a model folder stores."""
    metadata = read_metadata(metadata_path).set_index("image_id")
    species_of = metadata.loc[~metadata["is_hybrid"]].drop_duplicates("subspecies").set_index("subspecies")["species"]
    threshold, species_thresholds = call_thresholds(
        probabilities,
        val["class_index"].to_numpy() != len(classes) - 1,
        val["image_id"].map(metadata["species"]).fillna("").to_numpy(),
        score,
    )
    species = {name: str(species_of[name]) for name in classes[:-1] if name in species_of.index}
    return Calls(temperature, threshold, species_thresholds, species)


def fitted_ranks(
    first: TrainedModel,
    manifest: pd.DataFrame,
    val: pd.DataFrame,
    probabilities: np.ndarray,
    classes: list[str],
    calls: Calls,
) -> Ranks:
    """The rank and novelty thresholds of the model, from the first member's embeddings of the TRAIN
    photographs (the real ones, not their copies or crosses) and of the validation non-hybrids."""
    hybrid = len(classes) - 1
    train = manifest[(manifest["recipe"] == "original") & (manifest["class_index"] != hybrid)]
    known = (val["class_index"] != hybrid).to_numpy()
    preprocessing = (first.backbone.image_size, first.backbone.mean, first.backbone.std)

    def embed(paths: list[str]) -> np.ndarray:
        return embed_files([first.model.eval()], paths, *preprocessing, first.device)[0]

    return Ranks.fit(
        embed(train["path"].tolist()),
        train["class_index"].to_numpy(),
        embed(val.loc[known, "path"].tolist()),
        probabilities[known],
        val.loc[known, "class_index"].to_numpy(),
        [calls.species.get(name, "") for name in classes[:-1]],
    )


def write_reports(
    report: dict[str, Any], first: TrainedModel, manifest: pd.DataFrame, note: str, outputs: FinetuneOutputs
) -> None:
    """The validation reports of the kept model and the first member's epochs and losses."""
    report["per_class"].to_csv(outputs.per_class, index=False)
    report["confusion"].to_csv(outputs.confusion)
    confusion_heatmap(report["confusion"], outputs.confusion_plot, note)
    pd.DataFrame(first.state["per_class"]).to_csv(outputs.per_class_epochs, index=False)
    pd.DataFrame(first.state["confusion"]).to_csv(outputs.confusion_epochs, index=False)
    report["misclassified"].to_csv(outputs.misclassified, index=False)
    likely_mislabelled(manifest, first.state["sample_losses"]).to_csv(outputs.losses, index=False)


def write_history(members: list[TrainedModel], outputs: FinetuneOutputs) -> None:
    history = pd.concat(
        [pd.DataFrame(m.state["history"]).assign(member=k) for k, m in enumerate(members)], ignore_index=True
    )
    history.to_csv(outputs.history, index=False)
    training_curves(
        history,
        [("train_loss", "cross-entropy", "training loss"), ("val_macro_f1", "macro-F1", "validation macro-F1")],
        outputs.curve,
    )


def training_metrics(
    members: list[TrainedModel], report: dict[str, Any], calls: Calls, share: float | None, settings: FinetuneSettings
) -> dict[str, Any]:
    """metrics.json: how training went and what the model folder holds."""
    first = members[0]
    return {
        "val_macro_f1": report["macro_f1"],
        "val_accuracy": report["accuracy"],
        "epochs_run": len(first.state["history"]),
        "best_epoch": first.state["best_epoch"],
        "ensemble": len(members),
        "member_val_macro_f1": [m.state["best_f1"] for m in members],
        "temperature": calls.temperature,
        "call_threshold": calls.threshold,
        "val_non_hybrids_above_threshold": share,
        "call_thresholds_by_species": calls.species_thresholds,
        "flip_average": settings.flip_average,
        "n_train": first.n_train,
        "n_val": first.n_val,
        "pretrained_backbone": first.backbone.pretrained,
        "backbone": first.backbone.source,
        "trunk_weights": first.backbone.trunk_weights,
        "device": first.device.type,
        "token_cache": isinstance(first.val_feed, TokenFeed),
        "setup_seconds": round(first.setup_seconds, 1),
    }


def finetune_step(
    manifest_path: str,
    metadata_path: str,
    splits_path: str,
    wings_path: str,
    segmenter_path: str,
    outputs: FinetuneOutputs,
    checkpoint_path: str,
    cache_dir: str,
    settings: dict[str, Any],
    mask_settings: dict[str, Any],
    score_method: str,
    threads: int,
    held_out_path: str | None = None,
) -> None:
    """Train (an ensemble of) classifiers on the balanced set and write the model folder (calling
    with hybrid score `score_method`) and the validation reports; with `held_out_path`, on the
    balanced set less the rows it lists (the held-out model of the held-out-cross validation)."""
    finetune_settings = FinetuneSettings.from_config(settings)
    manifest, classes = training_set(manifest_path, held_out_path)
    wings, splits = (pd.read_csv(path, keep_default_na=False) for path in (wings_path, splits_path))
    val = labelled_split(wings, splits, "val", classes)
    members = train_members(manifest, val, classes, finetune_settings, checkpoint_path, threads, cache_dir)
    write_history(members, outputs)
    probabilities, temperature = validation_probabilities(members, val, finetune_settings)
    calls = model_calls(probabilities, temperature, val, classes, metadata_path, score_method)
    write_model_folder(
        outputs.model,
        [member.model.state_dict() for member in members],
        classes,
        members[0].backbone,
        asdict(finetune_settings),
        segmenter_path,
        MaskSettings.from_config(mask_settings),
        calls.temperature,
        finetune_settings.flip_average,
        calls.threshold,
        score_method,
        calls.species_thresholds,
        calls.species,
    )
    fitted_ranks(members[0], manifest, val, probabilities, classes, calls).save(outputs.model)
    target = finetune_settings.hybrid_target
    report = reports(probabilities, val, classes, target)
    note = f"{classes[-1]} trained towards {HYBRID_TRAINED_TOWARDS[target]}" if target == "parents" else ""
    write_reports(report, members[0], manifest, note, outputs)
    share = share_above(probabilities, val, classes, score_method, calls.threshold)
    metrics = training_metrics(members, report, calls, share, finetune_settings)
    Path(outputs.metrics).write_text(json.dumps(metrics, indent=2))
    if not members[0].backbone.pretrained:
        log.warning(
            "the backbone was NOT pretrained (random initialisation): metrics are of a model trained from scratch"
        )
    log.info("validation macro-F1 %.4f, accuracy %.4f", report["macro_f1"], report["accuracy"])
