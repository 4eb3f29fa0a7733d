"""The finetune rule, file to file."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybridwing.balance.crosses import without_pairs
from hybridwing.data.tables import read_metadata
from hybridwing.finetune.cache import TokenFeed
from hybridwing.finetune.figures import confusion_heatmap
from hybridwing.finetune.train import FinetuneSettings, finetune, likely_mislabelled, reports
from hybridwing.model.card import HYBRID_TRAINED_TOWARDS
from hybridwing.model.folder import write_model_folder
from hybridwing.model.inference import ensemble_probabilities, fit_temperature, member_logits_of_files
from hybridwing.plots import training_curves
from hybridwing.scores import hybrid_scores, threshold_at
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


def finetune_step(
    manifest_path: str,
    metadata_path: str,
    splits_path: str,
    wings_path: str,
    segmenter_path: str,
    model_dir: str,
    history_path: str,
    metrics_path: str,
    curve_path: str,
    per_class_path: str,
    confusion_path: str,
    confusion_plot: str,
    per_class_epochs_path: str,
    confusion_epochs_path: str,
    misclassified_path: str,
    losses_path: str,
    checkpoint_path: str,
    cache_dir: str,
    settings: dict[str, Any],
    mask_settings: dict[str, Any],
    score_method: str,
    threads: int,
    without_crosses_path: str | None = None,
) -> None:
    """Train (an ensemble of) classifiers on the balanced set and write the model folder (calling
    with hybrid score `score_method`) and the validation reports; with `without_crosses_path` (a
    holdout_pairs table), on the balanced set less every hybrid of those crosses (the held-out model
    of the unseen-cross validation)."""
    finetune_settings = FinetuneSettings.from_config(settings)
    manifest = pd.read_csv(manifest_path, keep_default_na=False)
    classes = list(
        manifest.drop_duplicates("class_index").sort_values("class_index")["class"]
    )  # the hybrid class stays, trained or not
    if without_crosses_path:
        held = pd.read_csv(without_crosses_path, keep_default_na=False)
        kept = without_pairs(manifest, held)
        log.info(
            "held-out model: %d of %d training images left out (every hybrid of %d crosses)",
            len(manifest) - len(kept),
            len(manifest),
            len(held),
        )
        manifest = kept
    val = labelled_split(
        pd.read_csv(wings_path, keep_default_na=False), pd.read_csv(splits_path, keep_default_na=False), "val", classes
    )
    members = []
    for k in range(finetune_settings.ensemble):
        member_checkpoint = (
            Path(checkpoint_path) if k == 0 else Path(checkpoint_path).with_name(f"{Path(checkpoint_path).stem}_{k}.pt")
        )
        log.info("ensemble member %d of %d (seed %d)", k + 1, finetune_settings.ensemble, finetune_settings.seed + k)
        member_settings = replace(finetune_settings, seed=finetune_settings.seed + k)
        members.append(finetune(manifest, val, classes, member_settings, member_checkpoint, threads, cache_dir))
    result = members[0]
    history = pd.concat(
        [pd.DataFrame(m["state"]["history"]).assign(member=k) for k, m in enumerate(members)], ignore_index=True
    )
    history.to_csv(history_path, index=False)
    training_curves(
        history,
        [("train_loss", "cross-entropy", "training loss"), ("val_macro_f1", "macro-F1", "validation macro-F1")],
        curve_path,
    )
    backbone = result["backbone"]
    val_logits = member_logits_of_files(
        [member["model"].eval() for member in members],
        val["path"].tolist(),
        backbone.image_size,
        backbone.mean,
        backbone.std,
        finetune_settings.flip_average,
        result["device"],
    )
    temperature = finetune_settings.temperature
    if temperature == "fit" and len(val) == 0:
        log.warning("no validation images to fit the temperature on: it stays 1")
        temperature = 1.0
    elif temperature == "fit":
        temperature = fit_temperature(val_logits, val["class_index"].to_numpy())
        log.info("temperature fitted on the validation split: %.3g", temperature)
    probabilities = ensemble_probabilities(val_logits, float(temperature))
    metadata = read_metadata(metadata_path).set_index("image_id")
    species_of = metadata.loc[~metadata["is_hybrid"]].drop_duplicates("subspecies").set_index("subspecies")["species"]
    species = {name: str(species_of[name]) for name in classes[:-1] if name in species_of.index}
    threshold, species_thresholds = call_thresholds(
        probabilities,
        val["class_index"].to_numpy() != len(classes) - 1,
        val["image_id"].map(metadata["species"]).fillna("").to_numpy(),
        score_method,
    )
    write_model_folder(
        model_dir,
        [member["model"].state_dict() for member in members],
        classes,
        backbone,
        asdict(finetune_settings),
        segmenter_path,
        MaskSettings.from_config(mask_settings),
        float(temperature),
        finetune_settings.flip_average,
        threshold,
        score_method,
        species_thresholds,
        species,
    )
    report = reports(probabilities, val, classes, finetune_settings.hybrid_target)
    report["per_class"].to_csv(per_class_path, index=False)
    report["confusion"].to_csv(confusion_path)
    towards = HYBRID_TRAINED_TOWARDS[finetune_settings.hybrid_target]
    note = f"{classes[-1]} trained towards {towards}" if finetune_settings.hybrid_target == "parents" else ""
    confusion_heatmap(report["confusion"], confusion_plot, note)
    pd.DataFrame(result["state"]["per_class"]).to_csv(per_class_epochs_path, index=False)
    pd.DataFrame(result["state"]["confusion"]).to_csv(confusion_epochs_path, index=False)
    report["misclassified"].to_csv(misclassified_path, index=False)
    likely_mislabelled(manifest, result["state"]["sample_losses"]).to_csv(losses_path, index=False)
    metrics = {
        "val_macro_f1": report["macro_f1"],
        "val_accuracy": report["accuracy"],
        "epochs_run": len(result["state"]["history"]),
        "best_epoch": result["state"]["best_epoch"],
        "ensemble": len(members),
        "member_val_macro_f1": [m["state"]["best_f1"] for m in members],
        "temperature": float(temperature),
        "call_threshold": threshold,
        "val_non_hybrids_above_threshold": share_above(probabilities, val, classes, score_method, threshold),
        "call_thresholds_by_species": species_thresholds,
        "flip_average": finetune_settings.flip_average,
        "n_train": len(manifest),
        "n_val": len(val),
        "pretrained_backbone": result["backbone"].pretrained,
        "backbone": result["backbone"].source,
        "trunk_weights": result["backbone"].trunk_weights,
        "device": result["device"].type,
        "token_cache": isinstance(result["val_feed"], TokenFeed),
        "setup_seconds": round(result["setup_seconds"], 1),
    }
    Path(metrics_path).write_text(json.dumps(metrics, indent=2))
    if not result["backbone"].pretrained:
        log.warning(
            "the backbone was NOT pretrained (random initialisation): metrics are of a model trained from scratch"
        )
    log.info("validation macro-F1 %.4f, accuracy %.4f", report["macro_f1"], report["accuracy"])
