"""The finetune rule, file to file."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pandas as pd
from safetensors.torch import save_file

import hybridwing
from hybridwing.finetune.cache import TokenFeed
from hybridwing.finetune.train import FinetuneSettings, finetune, likely_mislabelled, reports
from hybridwing.plots import confusion_heatmap, training_curves
from hybridwing.score.predictor import MASK_SETTINGS, SEGMENTER, Inference, Predictor, ensemble_probabilities, fit_temperature
from hybridwing.segment.predict import MaskSettings

log = logging.getLogger(__name__)


def write_model_folder(
    folder: Path, result: dict[str, Any], classes: list[str], settings: FinetuneSettings, segmenter_path: str, mask: dict[str, Any],
    members: list[dict[str, Any]] | None = None, temperature: float = 1.0,
) -> None:
    """Weights (safetensors; one file per ensemble member), how members combine, class list,
    preprocessing, settings and versions, and the wing segmenter with its mask settings: all that
    prediction from raw photographs needs. `result` is the first member."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(segmenter_path, folder / SEGMENTER)
    (folder / MASK_SETTINGS).write_text(json.dumps(asdict(MaskSettings.from_config(mask)), indent=1))
    backbone = result["backbone"]
    names = []
    for k, member in enumerate(members or [result]):
        names.append("weights.safetensors" if k == 0 else f"weights_{k}.safetensors")
        save_file({name: tensor.contiguous() for name, tensor in member["model"].state_dict().items()}, folder / names[-1])
    Inference(tuple(names), temperature, settings.flip_average).write(folder)
    (folder / "classes.json").write_text(json.dumps(classes, indent=1))
    (folder / "preprocess.json").write_text(
        json.dumps({"size": backbone.image_size, "mean": backbone.mean, "std": backbone.std}, indent=1)
    )
    (folder / "config.json").write_text(
        json.dumps(
            {
                "settings": asdict(settings),
                "model_cfg": backbone.model_cfg,
                "backbone": backbone.source,
                "pretrained": backbone.pretrained,
                "hybridwing": hybridwing.__version__,
            },
            indent=1,
        )
    )


def labelled_split(wings: pd.DataFrame, splits: pd.DataFrame, split: str, classes: list[str]) -> pd.DataFrame:
    """The background-removed images of one split with their label, `class` and `class_index`;
    labels the classifier does not know are left out (with a warning)."""
    table = wings[wings["split"] == split].merge(splits[["image_id", "label"]], on="image_id")
    unknown = sorted(set(table["label"]) - set(classes))
    if unknown:
        log.warning("%s classes with no training images are left out: %s", split, ", ".join(unknown))
    index_of = {name: k for k, name in enumerate(classes)}
    table = table[table["label"].isin(classes)].reset_index(drop=True)
    return table.assign(**{"class": table["label"], "class_index": table["label"].map(index_of), "source_image": table["image_id"]})


def finetune_step(
    manifest_path: str,
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
    mask: dict[str, Any],
    threads: int,
) -> None:
    finetune_settings = FinetuneSettings.from_config(settings)
    manifest = pd.read_csv(manifest_path, keep_default_na=False)
    classes = list(manifest.drop_duplicates("class_index").sort_values("class_index")["class"])
    val = labelled_split(pd.read_csv(wings_path, keep_default_na=False), pd.read_csv(splits_path, keep_default_na=False), "val", classes)
    members = []
    for k in range(finetune_settings.ensemble):
        member_checkpoint = Path(checkpoint_path) if k == 0 else Path(checkpoint_path).with_name(f"{Path(checkpoint_path).stem}_{k}.pt")
        log.info("ensemble member %d of %d (seed %d)", k + 1, finetune_settings.ensemble, finetune_settings.seed + k)
        member_settings = replace(finetune_settings, seed=finetune_settings.seed + k)
        members.append(finetune(manifest, val, classes, member_settings, member_checkpoint, threads, cache_dir))
    result = members[0]
    history = pd.concat([pd.DataFrame(m["state"]["history"]).assign(member=k) for k, m in enumerate(members)], ignore_index=True)
    history.to_csv(history_path, index=False)
    training_curves(
        history, [("train_loss", "cross-entropy", "training loss"), ("val_macro_f1", "macro-F1", "validation macro-F1")], curve_path
    )
    folder = Path(model_dir)
    write_model_folder(folder, result, classes, finetune_settings, segmenter_path, mask, members)
    predictor = Predictor.load(folder, result["device"])
    val_logits = predictor.member_logits_of_files(val["path"].tolist())
    temperature = finetune_settings.temperature
    if temperature == "fit" and len(val) == 0:
        log.warning("no validation images to fit the temperature on: it stays 1")
        temperature = 1.0
    elif temperature == "fit":
        temperature = fit_temperature(val_logits, val["class_index"].to_numpy())
        log.info("temperature fitted on the validation split: %.3g", temperature)
    Inference(predictor.inference.weights, float(temperature), finetune_settings.flip_average).write(folder)
    report = reports(ensemble_probabilities(val_logits, float(temperature)), val, classes)
    report["per_class"].to_csv(per_class_path, index=False)
    report["confusion"].to_csv(confusion_path)
    confusion_heatmap(report["confusion"], confusion_plot)
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
        "flip_average": finetune_settings.flip_average,
        "n_train": len(manifest),
        "n_val": len(val),
        "pretrained_backbone": result["backbone"].pretrained,
        "backbone": result["backbone"].source,
        "device": result["device"].type,
        "token_cache": isinstance(result["val_feed"], TokenFeed),
        "setup_seconds": round(result["setup_seconds"], 1),
    }
    Path(metrics_path).write_text(json.dumps(metrics, indent=2))
    if not result["backbone"].pretrained:
        log.warning("the backbone was NOT pretrained (random initialisation): metrics are of a model trained from scratch")
    log.info("validation macro-F1 %.4f, accuracy %.4f", report["macro_f1"], report["accuracy"])
