"""The score_summary rule, file to file: one table of every scored table's metrics, as CSV and as a
page for the report. Light on purpose: it imports no torch, so the job starts in about a second."""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from hybridwing.data.split import SPLITS, training_leaks

log = logging.getLogger(__name__)


def format_metric(value: float | None) -> str:
    """A metric for a log line: three decimals, or n/a."""
    return "n/a" if value is None else f"{value:.3f}"


SUMMARY_COLUMNS = [
    "challenge_score",
    "challenge_score_ci90",
    "major_recall",
    "major_recall_ci90",
    "minor_recall",
    "minor_recall_ci90",
    "mimic_recall",
    "mimic_recall_ci90",
    "prc_auc",
    "roc_auc",
]


def summary_table(metrics_by_table: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per (table, score): the challenge score, recalls with 90% intervals, and the AUCs;
    subspecies accuracy and macro-F1 on the pipeline's row."""
    rows = []
    for table, metrics in metrics_by_table.items():
        for score, values in {metrics["score"]: metrics, **metrics["alternatives"]}.items():
            row = {
                "table": table,
                "score": score,
                "chosen": score == metrics["score"],
                "n_images": values["n_images"],
                "n_hybrids": values["n_hybrids"],
            }
            for column in SUMMARY_COLUMNS:
                value = values.get(column)
                row[column] = (
                    ""
                    if value is None
                    else (f"{value[0]:.3f}-{value[1]:.3f}" if isinstance(value, list) else round(value, 4))
                )
            row["subspecies_accuracy"] = metrics["subspecies_accuracy"] if row["chosen"] else None
            row["subspecies_macro_f1"] = metrics["subspecies_macro_f1"] if row["chosen"] else None
            rows.append(row)
    return pd.DataFrame(rows)


def summary_step(
    metrics_paths: list[str],
    finetune_metrics_path: str,
    duplicates_path: str,
    table_path: str,
    html_path: str,
    warning_paths: list[str] = (),
) -> None:
    """The summary table of every scored table, as CSV and as a page for the report that names the
    backbone and whether it was pretrained, repeats the earlier stages' warnings (the ``warnings``
    of the metrics files in `warning_paths`), says how many evaluation images are near-duplicates of
    training images, and fits the page (narrow, wrapping headers)."""
    warnings = [text for path in warning_paths for text in json.loads(Path(path).read_text()).get("warnings", [])]
    for warning in warnings:
        log.warning(warning)
    loaded = [json.loads(Path(path).read_text()) for path in metrics_paths]
    table = summary_table({metrics["table"]: metrics for metrics in loaded})
    leaks = training_leaks(pd.read_csv(duplicates_path, dtype={"hamming": int}, keep_default_na=False))
    leaked = leaks.groupby("evaluation_table")["evaluation_image"].nunique()
    table.insert(
        4, "n_training_duplicates", [int(leaked.get(name, 0)) if name not in SPLITS else "" for name in table["table"]]
    )
    table.to_csv(table_path, index=False)
    trained = json.loads(Path(finetune_metrics_path).read_text())
    weights = "pretrained" if trained["pretrained_backbone"] else "<b>randomly initialised</b> (no pretraining)"
    if trained.get("trunk_weights"):
        weights = f"its image trunk pretrained (<code>{html.escape(trained['trunk_weights']['path'])}</code>)"
    shown = table.rename(
        columns=lambda name: (
            name.replace("subspecies_", "subsp. ").replace("_ci90", " 90%").replace("n_", "").replace("_", " ")
        )
    )
    Path(html_path).write_text(
        "<html><head><meta charset='utf-8'><style>body{font:12px sans-serif;margin:8px}"
        "table{border-collapse:collapse;width:100%;table-layout:auto;font-size:11px}"
        "th{font-weight:600}td,th{border:1px solid #ccc;padding:2px 4px;text-align:right}"
        "td:first-child,td:nth-child(2){text-align:left}</style></head><body>"
        + "".join(f"<p style='color:#a00'><b>Warning:</b> {html.escape(text)}</p>" for text in warnings)
        + f"<p>Backbone <code>{html.escape(str(trained['backbone']))}</code>, {weights}; an ensemble of "
        f"{trained.get('ensemble', 1)}.</p>"
        "<p>Challenge score: harmonic mean of the hybrid recalls (major, minor, mimic) at the threshold that keeps 95% "
        "of each group's non-hybrids below it; intervals are bootstrap 90%.</p>"
        f"<p>Evaluation photographs that are near-duplicates of a training photograph (scored although seen, "
        f"allowed by split.allow_leaks): {leaks['evaluation_image'].nunique()}.</p>"
        + shown.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.3f}")
        + "</body></html>"
    )
    for row in table[table["chosen"]].itertuples():
        log.info("%s: challenge score %s (90%% interval %s)", row.table, row.challenge_score, row.challenge_score_ci90)
