"""The review stage's rules, file to file: embeddings and their metrics, the zero-shot junk filter,
triage bands and label issues (the record of each active-learning round is in `review.rounds`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from hybridwing.data.tables import read_metadata
from hybridwing.model.backbone import (
    Backbone,
    BackboneUnavailable,
    load_backbone,
    load_clip,
    preprocessing,
    tokenizer_of,
)
from hybridwing.model.description import read_description
from hybridwing.model.inference import ensemble_probabilities
from hybridwing.plots import contact_sheet
from hybridwing.review.embed import (
    beside_phash_pairs,
    embed_files,
    frozen_features,
    map_2d,
    near_duplicates,
    taxa_metrics,
)
from hybridwing.review.embedding_table import FROZEN_PREFIX, embedding_frame, embedding_matrix
from hybridwing.review.figures import embedding_map
from hybridwing.review.settings import ReviewSettings, ZeroShotSettings
from hybridwing.review.triage import BANDS, assign_bands, uncertainty
from hybridwing.review.zero_shot import junk_table, prompt_probabilities, why_not_zero_shot
from hybridwing.score.predictor import Predictor
from hybridwing.score.summary import format_metric
from hybridwing.scores import hybrid_scores

log = logging.getLogger(__name__)

ROW_COLUMNS = ["image_id", "filename", "path", "label", "specimen", "species", "is_hybrid"]


def table_outputs(output: Any, tables: list[str], kinds: tuple[str, ...]) -> dict[str, list[str]]:
    """A rule's outputs per kind, in the order of `tables`: a named list (``expand``), or one name
    per table, ``{kind}_{table}`` (the report figures)."""
    named = dict(output.items())
    gathered = {
        kind: list(named[kind]) if kind in named else [named[f"{kind}_{table}"] for table in tables] for kind in kinds
    }
    return {"tables": list(tables), **gathered}


def table_rows(wings: pd.DataFrame, metadata: pd.DataFrame, splits: pd.DataFrame, table: str) -> pd.DataFrame:
    """The background-removed images of one split or evaluation table, with label, specimen and species."""
    rows = wings.loc[wings["split"] == table, ["image_id", "path"]].merge(splits[["image_id", "label"]], on="image_id")
    rows = rows.merge(metadata[["image_id", "filename", "camid", "species", "is_hybrid"]], on="image_id")
    if rows.empty:
        raise ValueError(f"embed: no images in split or table {table!r}")
    return rows.rename(columns={"camid": "specimen"})[ROW_COLUMNS]


def embed_step(
    model_dir: str,
    wings_path: str,
    metadata_path: str,
    splits_path: str,
    phash_pairs_path: str,
    outputs: dict[str, list[str]],
    settings: dict[str, Any],
    threads: int,
) -> None:
    """The embed rule: every table's embeddings, member probabilities, metrics, near-duplicates
    (beside the perceptual-hash pairs) and map; `outputs` holds one list of paths per kind, in the
    order of ``outputs['tables']``."""
    torch.set_num_threads(max(1, threads))
    settings = ReviewSettings.from_config(settings)
    predictor = Predictor.load(model_dir)
    frozen = frozen_backbone(read_description(model_dir).config)
    wings = pd.read_csv(wings_path, keep_default_na=False)
    splits = pd.read_csv(splits_path, keep_default_na=False)
    metadata = read_metadata(metadata_path)
    phash_pairs = pd.read_csv(phash_pairs_path, keep_default_na=False)
    kinds = ("embeddings", "probabilities", "metrics", "duplicates", "map")
    for table, *paths in zip(outputs["tables"], *(outputs[kind] for kind in kinds)):
        embed_table(predictor, frozen, table_rows(wings, metadata, splits, table), table, phash_pairs, *paths, settings)


def frozen_backbone(model_config: dict[str, Any]) -> Backbone | None:
    """The pretrained backbone the model was fine-tuned from, as it was before (None when the
    model was trained from random weights, or its weights cannot be had here)."""
    if not model_config.get("pretrained"):
        return None
    try:
        return load_backbone(model_config["backbone"], allow_random_init=False)
    except BackboneUnavailable as error:
        log.warning("no embedding of the frozen pretrained backbone: %s", error)
        return None


def embed_table(
    predictor: Predictor,
    frozen: Backbone | None,
    rows: pd.DataFrame,
    table: str,
    phash_pairs: pd.DataFrame,
    embeddings_path: str,
    probabilities_path: str,
    metrics_path: str,
    duplicates_path: str,
    map_path: str,
    settings: ReviewSettings,
) -> None:
    """One table: the trained model's embedding (e columns) and, with a pretrained backbone, the
    frozen one's (p columns, metrics under ``frozen_pretrained``)."""
    paths = rows["path"].tolist()
    features, logits = embed_files(
        predictor.classifiers,
        paths,
        predictor.size,
        predictor.mean,
        predictor.std,
        predictor.device,
        settings.batch_size,
    )
    frame = embedding_frame(rows, features)
    metrics = {"table": table, **taxa_metrics(frame, settings.seed), "frozen_pretrained": None}
    if frozen is not None:
        frame = embedding_frame(
            frame, frozen_features(frozen, paths, predictor.device, settings.batch_size), FROZEN_PREFIX
        )
        metrics["frozen_pretrained"] = {"backbone": frozen.source, **taxa_metrics(frame, settings.seed, FROZEN_PREFIX)}
    frame.to_parquet(embeddings_path, index=False)
    probabilities = np.stack(
        [ensemble_probabilities(member[None], predictor.inference.temperature) for member in logits]
    )
    np.save(probabilities_path, probabilities.astype(np.float32))
    Path(metrics_path).write_text(json.dumps(metrics, indent=2))
    duplicates = beside_phash_pairs(near_duplicates(frame, settings.duplicate_cosine), phash_pairs)
    duplicates.to_csv(duplicates_path, index=False)
    coordinates, method = map_2d(embedding_matrix(frame), settings.seed)
    embedding_map(frame, coordinates, method, f"{table}: {len(frame)} images", map_path)
    log.info(
        "%s: %d images, %d dimensions; 1-NN cosine accuracy %s (subspecies), %s (species); %d embedding "
        "near-duplicate pairs (cosine >= %s)",
        table,
        len(frame),
        features.shape[1],
        format_metric(metrics["knn1_cosine_subspecies"]),
        format_metric(metrics["knn1_cosine_species"]),
        len(duplicates),
        settings.duplicate_cosine,
    )


def zero_shot_judge(backbone: str) -> tuple[Any, str]:
    """A callable (paths, prompts) -> (images, prompts) probabilities from the pretrained CLIP named
    `backbone`, and "", or None and why there is none."""
    try:
        model, _, pretrained = load_clip(backbone, allow_random_init=False)
    except BackboneUnavailable as error:
        return None, f"no pretrained text tower ({error})"
    reason = why_not_zero_shot(model, pretrained)
    if reason:
        return None, reason
    size, mean, std = preprocessing(model.visual)
    tokenizer = tokenizer_of(backbone)

    def judge(paths: list[str], prompts: list[str]) -> np.ndarray:
        return prompt_probabilities(model, tokenizer, prompts, paths, size, mean, std, torch.device("cpu"))

    return judge, ""


def junk_flags(judge, reason: str, photographs: pd.DataFrame, settings: ZeroShotSettings) -> pd.DataFrame:
    """The zero-shot table of `photographs` (image_id, path of the raw photograph); without a judge
    it says why in its ``reason`` column and flags nothing."""
    if judge is None:
        return photographs[["image_id"]].assign(
            p_wing=np.nan, likeliest_junk="", p_junk=np.nan, junk=False, reason=reason
        )
    prompts = list(settings.prompts)
    return junk_table(photographs, judge(photographs["path"].tolist(), prompts), prompts, settings.threshold).assign(
        reason=""
    )


def triage_step(
    model_dir: str,
    metadata_path: str,
    inputs: dict[str, list[str]],
    outputs: dict[str, list[str]],
    settings: dict[str, Any],
    threads: int,
) -> None:
    """The triage rule: for every table, the zero-shot junk flags of its raw photographs, then
    uncertainty, bands and the two contact sheets; the zero-shot judge is the backbone the model
    was fine-tuned from."""
    torch.set_num_threads(max(1, threads))
    settings = ReviewSettings.from_config(settings)
    description = read_description(model_dir)
    raw_paths = read_metadata(metadata_path).set_index("image_id")["path"]
    judge, reason = zero_shot_judge(description.config["backbone"])
    if reason:
        log.info("zero-shot filter skipped: %s", reason)
    kinds = ("zero_shot", "triage", "bands", "misclassified")
    for table, embeddings_path, probabilities_path, *paths in zip(
        outputs["tables"], inputs["embeddings"], inputs["probabilities"], *(outputs[k] for k in kinds)
    ):
        rows = pd.read_parquet(embeddings_path, columns=ROW_COLUMNS)
        junk = junk_flags(
            judge, reason, rows[["image_id"]].assign(path=rows["image_id"].map(raw_paths)), settings.zero_shot
        )
        junk.to_csv(paths[0], index=False)
        if judge is not None:
            log.info(
                "%s: %d of %d photographs flagged as junk by the text prompts",
                table,
                int(junk["junk"].sum()),
                len(junk),
            )
        triage_table(
            rows, np.load(probabilities_path), junk, description.classes, description.score, table, *paths[1:], settings
        )


def triage_table(
    rows: pd.DataFrame,
    member_probabilities: np.ndarray,
    junk: pd.DataFrame,
    classes: list[str],
    score: str,
    table: str,
    triage_path: str,
    bands_path: str,
    misclassified_path: str,
    settings: ReviewSettings,
) -> None:
    measures = uncertainty(member_probabilities)
    mean = member_probabilities.mean(0)
    label_index = rows["label"].map({name: i for i, name in enumerate(classes)})
    p_label = [mean[i, int(k)] if pd.notna(k) else np.nan for i, k in enumerate(label_index)]
    triage = pd.concat([rows, measures.drop(columns="top_class")], axis=1).assign(
        predicted=[classes[i] for i in measures["top_class"]], p_label=p_label, **{score: hybrid_scores(mean)[score]}
    )
    triage = triage.merge(junk[["image_id", "junk", "likeliest_junk"]], on="image_id", how="left")
    triage["band"] = assign_bands(triage, settings.triage)
    triage.round(5).to_csv(triage_path, index=False)
    counts = triage["band"].value_counts().reindex(list(BANDS), fill_value=0)
    log.info(
        "%s: triage bands %s", table, ", ".join(f"{band} {count} ({BANDS[band]})" for band, count in counts.items())
    )
    per_band = settings.sheet_images
    sections = []
    for band, meaning in BANDS.items():
        shown = triage[triage["band"] == band].sort_values("entropy", ascending=False).head(per_band)
        sections.append(
            (
                f"{band}: {meaning}, {counts[band]} images",
                shown["path"].tolist(),
                [f"{p} {q:.2f}" for p, q in zip(shown["predicted"], shown["p_top"])],
            )
        )
    contact_sheet(sections, bands_path, title=f"{table}: triage bands (caption: predicted class, mean top probability)")
    known = triage["label"].isin(classes)
    wrong = triage[known & (triage["label"] != triage["predicted"])].sort_values(
        ["label", "p_top"], ascending=[True, False]
    )
    sections = []
    for label, group in wrong.groupby("label"):
        shown = group.head(per_band)
        sections.append(
            (
                f"true class {label}",
                shown["path"].tolist(),
                [f"-> {p} {q:.2f}" for p, q in zip(shown["predicted"], shown["p_top"])],
            )
        )
    contact_sheet(
        sections or [("misclassified", [], [])],
        misclassified_path,
        title=f"{table}: {len(wrong)} of {int(known.sum())} labelled images misclassified "
        "(caption: predicted class, its probability)",
    )
