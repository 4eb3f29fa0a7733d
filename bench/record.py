"""The tables of the experiment record (docs/experiments.md), generated from the committed rows in
bench/results/*.csv.

Each table sits between ``<!-- rows: NAME -->`` and ``<!-- end rows -->`` in the record, where NAME
is a table below; everything else in the record is written by hand (the question, the rule, the
decision). Usage: python bench/record.py [--check]   (--check: exit 1 if the record is out of date)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
RECORD = REPO / "docs/experiments.md"
RESULTS = REPO / "bench/results"
MARKED = re.compile(r"(<!-- rows: (\w+) -->\n).*?(<!-- end rows -->)", re.DOTALL)


def markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "| " + " | ".join("---" if k == 0 else "---:" for k in range(len(frame.columns))) + " |"
    lines = ["| " + " | ".join(str(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *lines]) + "\n"


def spread(values: pd.Series) -> str:
    """The sample standard deviation over seeds, or a dash for one seed."""
    return f"{values.std(ddof=1):.3f}" if len(values) > 1 else "-"


def dev_selection_settings(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per setting: dev's challenge score and parts over its seeds (the shipped score)."""
    shipped = rows[rows["shipped_score"]]
    out = []
    for setting, group in shipped.groupby("setting", sort=False):
        out.append(
            {
                "setting": setting,
                "seeds": ", ".join(str(seed) for seed in sorted(group["seed"])),
                "dev mean (sd)": f"**{group['dev'].mean():.3f}** ({spread(group['dev'])})",
                "seeds' range": f"{group['dev'].min():.3f}-{group['dev'].max():.3f}",
                "major": f"{group['dev_major'].mean():.3f}",
                "minor": f"{group['dev_minor'].mean():.3f}",
                "mimic": f"{group['dev_mimic'].mean():.3f}",
                "val": f"{group['val'].mean():.3f}",
                "minutes": f"{group['minutes'].mean():.0f}",
            }
        )
    return pd.DataFrame(out)


def dev_selection_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Every run: its dev score with the bootstrap 90% interval, parts, val, minutes, commit, machine."""
    shipped = rows[rows["shipped_score"]].sort_values(["setting", "seed"], kind="stable")
    return pd.DataFrame(
        {
            "setting": shipped["setting"],
            "seed": shipped["seed"],
            "dev": shipped["dev"].map("{:.3f}".format),
            "dev 90%": [
                f"{low:.3f}-{high:.3f}" for low, high in zip(shipped["dev_ci90_low"], shipped["dev_ci90_high"])
            ],
            "major / minor / mimic": [
                f"{a:.3f} / {b:.3f} / {c:.3f}"
                for a, b, c in zip(shipped["dev_major"], shipped["dev_minor"], shipped["dev_mimic"])
            ],
            "ROC-AUC": shipped["dev_roc_auc"].map("{:.3f}".format),
            "val": shipped["val"].map("{:.3f}".format),
            "minutes": shipped["minutes"],
            "commit": shipped["commit"],
            "machine": shipped["machine"],
        }
    )


def dev_selection_scores(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean dev challenge score of every hybrid score on the same models (reported, never chosen on)."""
    table = rows.pivot_table(index="setting", columns="score", values="dev", aggfunc="mean", sort=False)
    return table.map("{:.3f}".format).reset_index()


def dev_atypicality_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Every model and score of the atypicality bench: dev with its 90% interval, parts, ROC-AUC."""
    return pd.DataFrame(
        {
            "setting": rows["setting"],
            "seed": rows["seed"],
            "score": rows["score"],
            "dev": rows["dev"].map("{:.3f}".format),
            "dev 90%": [f"{low:.3f}-{high:.3f}" for low, high in zip(rows["dev_ci90_low"], rows["dev_ci90_high"])],
            "major / minor / mimic": [
                f"{a:.3f} / {b:.3f} / {c:.3f}"
                for a, b, c in zip(rows["dev_major"], rows["dev_minor"], rows["dev_mimic"])
            ],
            "ROC-AUC": rows["dev_roc_auc"].map("{:.3f}".format),
            "commit": rows["commit"],
        }
    )


def dev_ranks_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Every model of the ranks bench: novelty's ROC-AUC for the species never trained, and the
    accuracy of dev's calls at subspecies rank against all its calls."""
    return pd.DataFrame(
        {
            "setting": rows["setting"],
            "seed": rows["seed"],
            "novelty ROC-AUC, unseen species": rows["novelty_roc_auc_unseen_species"].map("{:.3f}".format),
            "accuracy, subspecies rank": rows["accuracy_subspecies_rank"].map("{:.3f}".format),
            "accuracy, all calls": rows["accuracy_all_calls"].map("{:.3f}".format),
            "at subspecies rank": rows["share_at_subspecies_rank"].map("{:.1%}".format),
            "unknown: known / unseen": [
                f"{a:.1%} / {b:.1%}" for a, b in zip(rows["share_unknown_of_known"], rows["share_unknown_of_unseen"])
            ],
            "commit": rows["commit"],
        }
    )


def unet_encoder_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Every U-Net row: its encoder setting, epochs, validation IoU, pattern coverage and minutes."""
    return pd.DataFrame(
        {
            "setting": rows["setting"],
            "seed": rows["seed"],
            "epochs": rows["epochs_run"],
            "val IoU": rows["val_iou"].map("{:.3f}".format),
            "coverage, all": rows["coverage_all"].map("{:.4f}".format),
            "coverage, dev": rows["coverage_dev"].map("{:.4f}".format),
            "under 0.95": rows["share_under_095_all"].map("{:.1%}".format),
            "train_unet min": rows["minutes_train_unet"],
            "commit": rows["commit"],
            "machine": rows["machine"],
        }
    )


TABLES = {
    "dev_selection_settings": ("dev_selection.csv", dev_selection_settings),
    "dev_selection_rows": ("dev_selection.csv", dev_selection_rows),
    "dev_selection_scores": ("dev_selection.csv", dev_selection_scores),
    "dev_atypicality_rows": ("dev_atypicality.csv", dev_atypicality_rows),
    "dev_ranks_rows": ("dev_ranks.csv", dev_ranks_rows),
    "unet_encoder_rows": ("unet_encoder.csv", unet_encoder_rows),
}


def generated(record: str) -> str:
    """The record with every marked table made anew from its rows."""

    def table(match: re.Match) -> str:
        source, build = TABLES[match.group(2)]
        return match.group(1) + markdown(build(pd.read_csv(RESULTS / source))) + match.group(3)

    return MARKED.sub(table, record)


def main() -> int:
    record = RECORD.read_text()
    fresh = generated(record)
    if "--check" in sys.argv[1:]:
        if fresh != record:
            print(f"{RECORD} is out of date with {RESULTS}: run python bench/record.py", file=sys.stderr)
            return 1
        return 0
    RECORD.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
