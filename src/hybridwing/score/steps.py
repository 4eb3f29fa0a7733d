"""The score rule, file to file: predictions, challenge metrics, submission and figures for one table."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from hybridwing.data.tables import carried_names, read_metadata
from hybridwing.hybrid_scores import SCORE_NAMES
from hybridwing.model.preprocess import image_tensor, load_image, mask_array
from hybridwing.score.challenge import hybrid_metrics, subspecies_metrics
from hybridwing.score.explain import Explanation, explain, write_explanations
from hybridwing.score.figures import novelty_figure, score_figures
from hybridwing.score.predictor import Predictor
from hybridwing.score.settings import ScoreSettings
from hybridwing.score.specimens import specimen_table
from hybridwing.score.summary import format_metric
from hybridwing.segment.background import shown_mask
from hybridwing.text import spreadsheet_safe

log = logging.getLogger(__name__)


def challenge_parts(rows: pd.DataFrame, training: pd.DataFrame) -> pd.Series:
    """Each row's part: its ``ssp_indicator`` where the table has one; otherwise ``mimic`` for
    another species than the training table's, ``major`` for the signal hybrid's parents and their
    hybrids (the parents of the training table's hybrids), ``minor`` for the rest of species A."""
    species_a = training["species"].mode().iloc[0]
    hybrids = training[training["is_hybrid"]]
    signal = set(hybrids["parent_1"]) | set(hybrids["parent_2"])
    parents = rows[["parent_1", "parent_2"]].fillna("")

    def derived(row) -> str:
        if row.species != species_a:
            return "mimic"
        if row.is_hybrid:
            return "major" if {row.parent_1, row.parent_2} <= signal else "minor"
        return "major" if row.subspecies in signal else "minor"

    fallback = [
        derived(row) for row in rows.assign(parent_1=parents["parent_1"], parent_2=parents["parent_2"]).itertuples()
    ]
    given = rows["ssp_indicator"].fillna("").astype(str)
    return given.where(given != "", pd.Series(fallback, index=rows.index))


def scored_rows(wings: pd.DataFrame, metadata: pd.DataFrame, splits: pd.DataFrame, table: str) -> pd.DataFrame:
    """The background-removed images of one split or evaluation table with their metadata, truth
    (``label``) and challenge part."""
    rows = wings[wings["split"] == table][["image_id", "path"]].merge(splits[["image_id", "label"]], on="image_id")
    rows = rows.merge(metadata.drop(columns=["path"]), on="image_id")
    if rows.empty:
        raise ValueError(f"score: no images in split or table {table!r}")
    training = metadata[metadata["source"] == splits.loc[splits["split"] == "train", "source"].iloc[0]]
    rows["part"] = challenge_parts(rows, training)
    return rows


def predict_table(predictor: Predictor, rows: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    """Predictions for background-removed images (rows: image_id, path)."""
    frames = []
    for start in tqdm(range(0, len(rows), batch_size), desc="score", unit="batch"):
        chunk = rows.iloc[start : start + batch_size]
        images = []
        for path in chunk["path"]:
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
        frames.append(predictor.ranked_table(torch.stack([image_tensor(image, predictor.size) for image in images])))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=predictor.columns())


def parent_pair_accuracy(predictions: pd.DataFrame) -> dict[str, Any]:
    """How often a hybrid's two most likely subspecies are its two parents (hybrids with both
    parents known), and of those the model calls hybrid."""
    known = predictions[predictions["is_hybrid"] & (predictions["parent_1"] != "") & (predictions["parent_2"] != "")]
    right = [
        {a, b} == {p, q} for a, b, p, q in zip(known["subspecies"], known["top2"], known["parent_1"], known["parent_2"])
    ]
    called = known["call"].eq("hybrid").to_numpy() if "call" in known else np.zeros(len(known), bool)
    return {
        "n_hybrids_with_parents": len(known),
        "parent_pair_accuracy": float(np.mean(right)) if len(known) else None,
        "parent_pair_accuracy_called": float(np.mean(np.array(right)[called])) if called.any() else None,
    }


def evaluate(predictions: pd.DataFrame, classes: list[str], bootstrap: int, seed: int, method: str) -> dict[str, Any]:
    """The challenge metrics of every score (`method`, the one that calls, first) and subspecies accuracy."""
    known = predictions[~predictions["is_hybrid"] & predictions["truth"].isin(classes[:-1])]
    by_score = {
        name: hybrid_metrics(predictions[name], predictions["is_hybrid"], predictions["part"], bootstrap, seed)
        for name in SCORE_NAMES
    }
    return {
        "score": method,
        **by_score[method],
        **subspecies_metrics(known["truth"], known["subspecies"]),
        **parent_pair_accuracy(predictions),
        "alternatives": {name: metrics for name, metrics in by_score.items() if name != method},
    }


def write_submission(predictions: pd.DataFrame, path: str | Path, method: str) -> None:
    """``filename,score`` lines of score `method`, to 4 decimals, as the challenge's ingestion program writes them."""
    lines = [f"{name},{round(float(score), 4)}" for name, score in zip(predictions["filename"], predictions[method])]
    Path(path).write_text("\n".join(lines))


def explain_calls(
    predictor: Predictor, predictions: pd.DataFrame, rows: pd.DataFrame, qc_path: str, settings: ScoreSettings
) -> dict[str, Explanation]:
    """The explanations of the photographs called hybrid, highest score first, at most `settings.explain`."""
    if "call" not in predictions:
        return {}
    called = predictions[predictions["call"] == "hybrid"].sort_values(settings.method, ascending=False)
    masks = pd.read_csv(qc_path, keep_default_na=False).set_index("image_id")["mask"]
    paths = rows.set_index("image_id")["path"]
    explanations = {}
    for image_id in tqdm(called["image_id"].head(settings.explain), desc="explain", unit="img"):
        with Image.open(masks[image_id]) as image:
            mask = shown_mask(np.asarray(image.convert("L")) > 0, predictor.mask_settings)
        wings = load_image(paths[image_id], predictor.size)
        explanations[image_id] = explain(predictor, wings, mask_array(mask, predictor.size))
    return explanations


def score_step(
    model_dir: str,
    wings_path: str,
    qc_path: str,
    metadata_path: str,
    splits_path: str,
    table: str,
    predictions_path: str,
    specimens_path: str,
    metrics_path: str,
    submission_path: str,
    curves_path: str,
    histogram_path: str,
    novelty_path: str,
    explanations_dir: str,
    explanation_sheet_path: str,
    settings: dict[str, Any],
    threads: int,
) -> None:
    torch.set_num_threads(max(1, threads))
    score_settings = ScoreSettings.from_config(settings)
    predictor = Predictor.load(model_dir)
    if predictor.inference.score != score_settings.method:
        raise ValueError(
            f"{model_dir} calls with {predictor.inference.score}, but score.method is {score_settings.method}: rerun "
            "the finetune rule"
        )
    splits = pd.read_csv(splits_path, keep_default_na=False)
    rows = scored_rows(pd.read_csv(wings_path, keep_default_na=False), read_metadata(metadata_path), splits, table)
    predicted = predict_table(predictor, rows, score_settings.batch_size)
    described = ["image_id", "filename", "camid", "label", "is_hybrid", "part", "parent_1", "parent_2"]
    described += carried_names(rows)
    predictions = pd.concat(
        [rows[described].rename(columns={"label": "truth"}).reset_index(drop=True), predicted], axis=1
    )
    spreadsheet_safe(predictions).to_csv(predictions_path, index=False, float_format="%.6g")
    specimens = specimen_table(predictions, score_settings.method)
    spreadsheet_safe(specimens).to_csv(specimens_path, index=False, float_format="%.6g")
    metrics = evaluate(
        predictions, predictor.classes, score_settings.bootstrap, score_settings.seed, score_settings.method
    )
    metrics["table"] = table
    Path(metrics_path).write_text(json.dumps(metrics, indent=2))
    write_submission(predictions, submission_path, score_settings.method)
    score_figures(predictions, metrics, curves_path, histogram_path)
    novelty_figure(predictions, predictor.classes, predictor.ranks and predictor.ranks.novelty_threshold, novelty_path)
    explanations = explain_calls(predictor, predictions, rows, qc_path, score_settings)
    write_explanations(explanations, explanations_dir, explanation_sheet_path, table)
    log.info(
        "%s: challenge score %s (parts %s), PRC-AUC %s, ROC-AUC %s, subspecies accuracy %s",
        table,
        format_metric(metrics["challenge_score"]),
        ",".join(metrics["parts_scored"]),
        format_metric(metrics["prc_auc"]),
        format_metric(metrics["roc_auc"]),
        format_metric(metrics["subspecies_accuracy"]),
    )
