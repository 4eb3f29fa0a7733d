"""Settings of the real configuration compared on the challenge's development-phase table (dev).

Runs config/heliconius.yaml with one setting overlay and one fine-tune seed in a working folder
(what the overlay does not change is not rerun), then appends one row per hybrid score to
bench/results/dev_selection.csv: commit, machine, setting, seed, dev's challenge score with its
bootstrap 90% interval and its three parts, the validation split's challenge score, and the minutes
the row took. Settings are chosen on dev's mean challenge score over seeds, by the rules in
bench/results/dev_selection_rules.md, each committed before its rows ran.

Usage: python bench/dev_selection.py WORKDIR SETTING SEED [SEED ...] [--rerun-from RULE]
WORKDIR lies beside the repository (the real config names ../shared/...). Training jobs run one at
a time (--cores 2). With --rerun-from finetune, the folder's wing masks and balanced set are kept
as an earlier commit made them and only the fine-tune and what follows run again, so a setting of
a later commit is compared on the same masks as the rows it is compared with; --rerun-from augment
also rebuilds the balanced set (for a setting of the balance stage).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import yaml
from common import RERUNNABLE, commit, dev_figures, machine, run_real_config
from holdout_settings import CLASS_TARGETS, NO_CROSSES, RESNET18_SCRATCH, merged

RECORD = Path(__file__).resolve().parent / "results/dev_selection.csv"
EVALUATED = {"dev": "results/score/dev/metrics.json", "val": "results/score/val/metrics.json"}

#: The configuration of 2026-11-29: resnet18 from scratch, no synthetic crosses, the hybrid class as
#: target, three epochs of the balanced set.
NOV29 = merged(RESNET18_SCRATCH, NO_CROSSES, CLASS_TARGETS, {"finetune": {"epochs": 3}})
#: A quarter of every batch replaced by fresh crosses (top half of one subspecies' photograph over
#: the bottom half of another's) on the 2026-11-29 configuration, whose hybrid class they train.
NOV29_BATCH_CROSSES = merged(NOV29, {"finetune": {"cross_share": 0.25}})
#: Each setting is an overlay of config/heliconius.yaml; `shipped` is the file as it is.
#: Hue and saturation jitter on every augmented copy, standing in for the mimic species' colours.
NOV29_HUE = merged(NOV29, {"balance": {"augment": {"hue": 0.1, "saturation": 0.3}}})
SETTINGS: dict[str, dict] = {
    "shipped": {},
    "nov29": NOV29,
    "nov29_batch_crosses": NOV29_BATCH_CROSSES,
    "nov29_hue": NOV29_HUE,
}


def rows_of(workdir: Path, setting: str, seed: int, minutes: float) -> list[dict]:
    """One row per hybrid score: dev's figures and the validation split's challenge score."""
    dev, val = (json.loads((workdir / path).read_text()) for path in EVALUATED.values())
    rows = []
    for score in [dev["score"], *dev["alternatives"]]:
        d = dev if score == dev["score"] else dev["alternatives"][score]
        v = val if score == val["score"] else val["alternatives"][score]
        rows.append(
            {"commit": commit(), "machine": machine(), "setting": setting, "seed": seed, "score": score}
            | {"shipped_score": score == dev["score"]}
            | dev_figures(d)
            | {"val": v["challenge_score"], "minutes": round(minutes, 1)}
        )
    return rows


def run_row(workdir: Path, setting: str, seed: int, rerun_from: str | None) -> list[dict]:
    overlay = workdir / f"{setting}_seed{seed}.yaml"
    finetune = SETTINGS[setting].get("finetune", {}) | {"seed": seed}
    overlay.write_text(yaml.safe_dump(SETTINGS[setting] | {"finetune": finetune}))
    minutes = run_real_config(workdir, list(EVALUATED.values()), overlay, rerun_from)
    return rows_of(workdir, setting, seed, minutes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("setting", choices=sorted(SETTINGS))
    parser.add_argument("seeds", type=int, nargs="+")
    parser.add_argument("--rerun-from", choices=RERUNNABLE, help="keep the folder's outputs upstream of this rule")
    args = parser.parse_args()
    for seed in args.seeds:
        rows = pd.DataFrame(run_row(args.workdir.resolve(), args.setting, seed, args.rerun_from))
        record = pd.read_csv(RECORD) if RECORD.is_file() else pd.DataFrame()
        pd.concat([record, rows], ignore_index=True).to_csv(RECORD, index=False, float_format="%.4f")
        print(rows.to_string(index=False), flush=True)


if __name__ == "__main__":
    main()
