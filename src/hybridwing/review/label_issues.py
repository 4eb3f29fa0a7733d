"""Which training labels look wrong: out-of-fold class probabilities (a linear probe on the image
embeddings, K folds grouped by specimen) judged by confident learning (cleanlab), beside the
fine-tune's per-image loss; and the label_issues rule, file to file. No torch: the job reads the
embed rule's table."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from hybridwing.model.description import read_description
from hybridwing.plots import contact_sheet
from hybridwing.review.embedding_table import FROZEN_PREFIX, embedding_matrix
from hybridwing.review.settings import ReviewSettings

log = logging.getLogger(__name__)


def out_of_fold_probabilities(
    features: np.ndarray, labels: np.ndarray, groups: np.ndarray, n_classes: int, folds: int, seed: int
) -> np.ndarray:
    """(images, n_classes) probabilities, each image's from a logistic regression fitted on the
    folds that do not hold its specimen. A class missing from a fold's training part gets 0."""
    probabilities = np.zeros((len(labels), n_classes))
    folds = max(2, min(folds, len(set(groups))))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for fit_rows, held_rows in splitter.split(features, labels, groups):
            probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000))
            probe.fit(features[fit_rows], labels[fit_rows])
            probabilities[np.ix_(held_rows, probe.classes_)] = probe.predict_proba(features[held_rows])
    return probabilities


def label_issues(frame: pd.DataFrame, features: np.ndarray, classes: list[str], folds: int, seed: int) -> pd.DataFrame:
    """One row per image of `frame` (image_id, label, specimen): the out-of-fold probability of its
    label, the suggested label (the probe's top class), cleanlab's label quality (self-confidence)
    and whether confident learning flags it; worst quality first."""
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(frame["label"]) - set(index))
    if unknown:
        raise ValueError(f"label issues: labels {unknown} are not among the model's classes {classes}")
    labels = frame["label"].map(index).to_numpy()
    probabilities = out_of_fold_probabilities(features, labels, frame["specimen"].to_numpy(), len(classes), folds, seed)
    present = np.unique(labels)  # cleanlab wants every class of the probabilities among the labels
    squeezed = probabilities[:, present]
    squeezed = squeezed / squeezed.sum(1, keepdims=True).clip(min=1e-12)
    local = np.searchsorted(present, labels)
    flagged = (
        find_label_issues(local, squeezed, filter_by="prune_by_noise_rate")
        if len(present) > 1
        else np.zeros(len(labels), bool)
    )
    table = (
        frame[["image_id", "label", "specimen"]]
        .reset_index(drop=True)
        .assign(
            p_label=probabilities[np.arange(len(labels)), labels].round(4),
            suggested=[classes[i] for i in probabilities.argmax(1)],
            p_suggested=probabilities.max(1).round(4),
            label_quality=get_label_quality_scores(local, squeezed).round(4),
            label_issue=flagged,
        )
    )
    return table.sort_values("label_quality", kind="stable").reset_index(drop=True)


def with_training_loss(issues: pd.DataFrame, losses: pd.DataFrame) -> pd.DataFrame:
    """`issues` with the fine-tune's mean per-image loss of each source image (its own copy and its
    augmented ones averaged) and whether that loss flagged it."""
    by_image = (
        losses.groupby("source_image")
        .agg(train_loss=("mean_loss", "mean"), loss_flagged=("flagged", "any"))
        .reset_index()
    )
    merged = issues.merge(by_image.rename(columns={"source_image": "image_id"}), on="image_id", how="left")
    merged["loss_flagged"] = merged["loss_flagged"].fillna(False).astype(bool)
    return merged


def label_issues_step(
    embeddings_path: str, model_dir: str, losses_path: str, issues_path: str, sheet_path: str, settings: dict[str, Any]
) -> None:
    """The label_issues rule: confident learning on the training images' embeddings (the frozen
    pretrained backbone's where there is one, else the fine-tuned model's), beside the fine-tune's
    per-image loss, and the ``review.sheet_images`` lowest label qualities as a contact sheet."""
    settings = ReviewSettings.from_config(settings)
    frame = pd.read_parquet(embeddings_path)
    classes = read_description(model_dir).classes
    frozen = embedding_matrix(frame, FROZEN_PREFIX)  # a pretrained backbone's, before it saw these labels
    features = frozen if frozen.shape[1] else embedding_matrix(frame)
    log.info("label issues: a probe on the %s embedding", "frozen pretrained" if frozen.shape[1] else "fine-tuned")
    issues = label_issues(frame, features, classes, settings.label_issues.folds, settings.seed)
    issues = with_training_loss(issues, pd.read_csv(losses_path))
    issues.to_csv(issues_path, index=False)
    worst = issues.head(settings.sheet_images).merge(frame[["image_id", "path"]], on="image_id")
    captions = [
        f"{lab} -> {sug}? {q:.2f}" for lab, sug, q in zip(worst["label"], worst["suggested"], worst["label_quality"])
    ]
    contact_sheet(
        [(f"lowest label quality of {len(issues)} training images", worst["path"].tolist(), captions)],
        sheet_path,
        title=f"label issues: {int(issues['label_issue'].sum())} flagged by confident learning "
        "(caption: label -> suggested, quality)",
    )
    log.info(
        "label issues: %d of %d training images flagged (%d also by the training loss)",
        int(issues["label_issue"].sum()),
        len(issues),
        int((issues["label_issue"] & issues["loss_flagged"]).sum()),
    )
