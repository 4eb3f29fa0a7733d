"""The rounds rule, file to file: the record of one active-learning round and the table and figure
of every round so far. Light on purpose: it imports no torch."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from hybridwing.data.tables import read_metadata
from hybridwing.review.figures import rounds_figure

log = logging.getLogger(__name__)

ROUND_SCORES = ("challenge_score", "prc_auc", "subspecies_macro_f1")


def rounds_step(
    round_name: str,
    score_paths: list[str],
    embed_paths: list[str],
    triage_paths: list[str],
    extra_labels_path: str | None,
    exclude_path: str | None,
    record_path: str,
    table_path: str,
    figure_path: str,
    history_path: str,
) -> None:
    """This active-learning round's record (its reviewed and excluded counts, the scores it reached,
    the 1-NN accuracy and band C's size), appended to `history_path` (one JSON line per run, never
    rewritten: Snakemake removes a rule's outputs before it reruns, and a rerun of a round would
    otherwise lose the first run's scores); then every run recorded so far, oldest first, as a long
    table and a figure of each score across rounds."""
    metrics: dict[str, dict[str, Any]] = {}
    for path in score_paths:
        scored = json.loads(Path(path).read_text())
        metrics.setdefault(scored["table"], {}).update({k: scored.get(k) for k in ROUND_SCORES})
    for path in embed_paths:
        embedded = json.loads(Path(path).read_text())
        metrics.setdefault(embedded["table"], {})["knn1_cosine_subspecies"] = embedded.get("knn1_cosine_subspecies")
    record = {
        "round": round_name,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "extra_labels": len(read_metadata(extra_labels_path)) if extra_labels_path else 0,
        "excluded": len(pd.read_csv(exclude_path)) if exclude_path else 0,
        "scores": metrics,
        "band_C": {Path(p).parent.name: int((pd.read_csv(p)["band"] == "C").sum()) for p in triage_paths},
    }
    Path(record_path).write_text(json.dumps(record, indent=2))
    history = Path(history_path)
    history.parent.mkdir(parents=True, exist_ok=True)
    with history.open("a", encoding="utf-8") as stream:
        stream.write(json.dumps(record) + "\n")
    records = [json.loads(line) for line in history.read_text(encoding="utf-8").splitlines() if line.strip()]
    recorded = {(r["round"], r["finished"]) for r in records}
    earlier = [json.loads(path.read_text()) for path in Path(record_path).parent.glob("round-*.json")]
    records += [r for r in earlier if (r["round"], r["finished"]) not in recorded]  # runs from before the history
    records.sort(key=lambda r: r["finished"])
    rows = [
        {
            "round": r["round"],
            "finished": r["finished"],
            "extra_labels": r["extra_labels"],
            "excluded": r["excluded"],
            "table": table,
            "metric": metric,
            "value": value,
        }
        for r in records
        for table, metrics in r["scores"].items()
        for metric, value in metrics.items()
    ]
    table = pd.DataFrame(rows, columns=["round", "finished", "extra_labels", "excluded", "table", "metric", "value"])
    table.to_csv(table_path, index=False)
    rounds_figure(table, figure_path)
    log.info(
        "%d runs of %d rounds recorded; this one (%s): %d reviewed labels, %d excluded",
        len(records),
        len({r["round"] for r in records}),
        round_name,
        record["extra_labels"],
        record["excluded"],
    )
