"""The score rule's figures: ROC and precision-recall curves per challenge part, score histograms,
and the novelty of known and never-trained taxa."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hybridwing.hybrid_scores import comparison_score
from hybridwing.score.challenge import GROUPS

PART_COLOURS = {"major": "tab:red", "minor": "tab:purple", "mimic": "tab:blue"}
GROUP_TITLES = {"species_a": "species A (major + minor)", "mimic": "mimic"}


def score_figures(
    predictions: pd.DataFrame, metrics: dict, curves_path: str | Path, histogram_path: str | Path
) -> None:
    """ROC and precision-recall curves per part (each part's hybrids against its group's
    non-hybrids; the metrics' score solid, its comparison dashed), and score histograms of hybrids
    and non-hybrids per group with the challenge threshold."""
    from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: PLC0415 - scikit-learn loads in seconds; only the figures need it

    method = metrics["score"]
    comparison = comparison_score(method)

    figure = Figure(figsize=(9, 3.8))
    roc_axis, pr_axis = figure.subplots(1, 2)
    for part, colour in PART_COLOURS.items():
        group = next(parts for parts in GROUPS.values() if part in parts)
        rows = predictions[
            (predictions["part"] == part) & predictions["is_hybrid"]
            | predictions["part"].isin(group) & ~predictions["is_hybrid"]
        ]
        if rows["is_hybrid"].nunique() < 2:
            continue
        for score, style in ((method, "-"), (comparison, "--")):
            fpr, tpr, _ = roc_curve(rows["is_hybrid"], rows[score])
            precision, recall, _ = precision_recall_curve(rows["is_hybrid"], rows[score])
            label = f"{part} ({score})" if style == "-" else None
            roc_axis.plot(fpr, tpr, style, color=colour, label=label)
            pr_axis.plot(recall, precision, style, color=colour, label=label)
    roc_axis.plot([0, 1], [0, 1], ":", color="grey")
    roc_axis.set(xlabel="false positive rate", ylabel="hybrid recall", title=f"ROC (dashed: {comparison})")
    pr_axis.set(xlabel="hybrid recall", ylabel="precision", title=f"precision-recall (dashed: {comparison})")
    roc_axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(curves_path, dpi=110)

    groups = [(group, parts) for group, parts in GROUPS.items() if predictions["part"].isin(parts).any()]
    figure = Figure(figsize=(4.5 * max(1, len(groups)), 3.4))
    axes = figure.subplots(1, max(1, len(groups)), squeeze=False)[0]
    for axis, (group, parts) in zip(axes, groups):
        rows = predictions[predictions["part"].isin(parts)]
        bins = [k / 25 for k in range(26)]
        axis.hist(rows.loc[~rows["is_hybrid"], method], bins=bins, alpha=0.6, color="tab:green", label="non-hybrid")
        axis.hist(rows.loc[rows["is_hybrid"], method], bins=bins, alpha=0.6, color="tab:red", label="hybrid")
        threshold = metrics.get(f"threshold_{group}")
        if threshold is not None:
            axis.axvline(threshold, color="black", linestyle="--", label="threshold (95% non-hybrids below)")
        axis.set(xlabel=f"hybrid score ({method})", ylabel="images", title=GROUP_TITLES[group])
        axis.legend(
            fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2, frameon=False
        )  # below the axes, off the bars
    figure.tight_layout()
    figure.savefig(histogram_path, dpi=110, bbox_inches="tight")


def novelty_figure(predictions: pd.DataFrame, classes: list[str], threshold: float | None, path: str | Path) -> None:
    """The novelty of a table's photographs: non-hybrids of trained subspecies, non-hybrids of taxa
    never trained on, and hybrids, with the threshold above which a call's rank is unknown."""
    figure = Figure(figsize=(6, 3.4))
    axis = figure.subplots()
    if "novelty" not in predictions:
        axis.text(0.5, 0.5, "this model folder stores no novelty reference", ha="center", va="center")
        axis.set_axis_off()
    else:
        values = predictions["novelty"].clip(upper=predictions["novelty"].quantile(0.99))
        bins = np.linspace(0, max(float(values.max()), (threshold or 0) * 1.1, 1e-6), 31)
        known = predictions["truth"].isin(classes[:-1])
        for rows, colour, label in (
            (~predictions["is_hybrid"] & known, "tab:green", "trained subspecies"),
            (~predictions["is_hybrid"] & ~known, "tab:purple", "never trained"),
            (predictions["is_hybrid"], "tab:red", "hybrids"),
        ):
            if rows.any():
                axis.hist(values[rows], bins=bins, alpha=0.55, color=colour, label=label)
        if threshold is not None:
            axis.axvline(threshold, color="black", linestyle="--", label="rank unknown above")
        axis.set(xlabel="novelty (1 = the validation median)", ylabel="photographs")
        axis.legend(fontsize=7, frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
