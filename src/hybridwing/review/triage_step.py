"""The triage rule, file to file: the zero-shot junk flags of every table's raw photographs, then
ensemble uncertainty, bands and the two contact sheets. It imports torch only to run a pretrained
zero-shot judge, so a model trained from random weights is triaged without loading it."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from hybridwing.data.tables import read_metadata
from hybridwing.hybrid_scores import hybrid_scores
from hybridwing.model.description import read_description
from hybridwing.plots import contact_sheet
from hybridwing.review.embedding_table import ROW_COLUMNS
from hybridwing.review.settings import ReviewSettings, ZeroShotSettings
from hybridwing.review.triage import BANDS, assign_bands, label_support, uncertainty

log = logging.getLogger(__name__)

#: Why a model trained from random weights gets no zero-shot judge.
NO_PRETRAINED_BACKBONE = "no pretrained text tower (the model was trained from randomly initialised weights)"
#: Why a model fine-tuned from pretrained trunk weights alone (no CLIP) gets none.
IMAGE_TRUNK_ONLY = "no pretrained text tower (only the image trunk was pretrained: finetune.trunk_weights)"


def junk_table(rows: pd.DataFrame, probabilities: np.ndarray, prompts: list[str], threshold: float) -> pd.DataFrame:
    """Per image: the probability of the clean prompt, the likeliest junk prompt and whether the junk
    prompts together reach `threshold`."""
    junk = probabilities[:, 1:]
    return (
        rows[["image_id"]]
        .reset_index(drop=True)
        .assign(
            p_wing=probabilities[:, 0].round(4),
            likeliest_junk=[prompts[1 + i] for i in junk.argmax(1)] if len(junk) else [],
            p_junk=junk.sum(1).round(4),
            junk=junk.sum(1) >= threshold,
        )
    )


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
    uncertainty, bands and the two contact sheets; the zero-shot judge is the pretrained backbone
    the model was fine-tuned from (none when it was trained from random weights)."""
    settings = ReviewSettings.from_config(settings)
    description = read_description(model_dir)
    raw_paths = read_metadata(metadata_path).set_index("image_id")["path"]
    judge, reason = None, NO_PRETRAINED_BACKBONE
    if description.config.get("trunk_weights"):
        reason = IMAGE_TRUNK_ONLY
    elif description.config.get("pretrained"):
        import torch  # noqa: PLC0415 - only a pretrained judge needs torch

        from hybridwing.review.zero_shot import zero_shot_judge  # noqa: PLC0415

        torch.set_num_threads(max(1, threads))
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
    scores = hybrid_scores(mean)[score].to_numpy()
    triage = pd.concat([rows, measures.drop(columns="top_class")], axis=1).assign(
        predicted=[classes[i] for i in measures["top_class"]],
        p_label=label_support(mean, rows["label"], classes, scores),
        **{score: scores},
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
