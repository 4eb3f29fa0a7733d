"""The embed rule, file to file: embeddings, member probabilities and their metrics (triage is in
`review.triage_step`, label issues in `review.label_issues`, the record of each active-learning
round in `review.rounds`)."""

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
)
from hybridwing.model.description import read_description
from hybridwing.model.inference import embed_files, ensemble_probabilities
from hybridwing.review.embed import (
    beside_phash_pairs,
    frozen_features,
    map_2d,
    near_duplicates,
    taxa_metrics,
)
from hybridwing.review.embedding_table import FROZEN_PREFIX, ROW_COLUMNS, embedding_frame, embedding_matrix
from hybridwing.review.figures import embedding_map
from hybridwing.review.settings import ReviewSettings
from hybridwing.score.predictor import Predictor
from hybridwing.score.summary import format_metric

log = logging.getLogger(__name__)


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
        return load_backbone(model_config["backbone"], False, model_config.get("trunk_weights"))
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
