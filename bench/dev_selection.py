"""Settings of the real configuration compared on the challenge's development-phase table (dev).

Runs config/heliconius.yaml with one setting overlay and one fine-tune seed in a working folder
(what the overlay does not change is not rerun), then appends one row per hybrid score to
bench/results/dev_selection.csv: commit, machine, setting, seed, dev's challenge score with its
bootstrap 90% interval and its three parts, the validation split's challenge score, and the minutes
the row took. Settings are chosen on dev's mean challenge score over seeds, by the rules in
bench/results/dev_selection_rules.md, each committed before its rows ran.

Usage: python bench/dev_selection.py WORKDIR SETTING SEED [SEED ...]
WORKDIR lies beside the repository (the real config names ../shared/...). Training jobs run one at
a time (--cores 2).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
RECORD = REPO / "bench/results/dev_selection.csv"
EVALUATED = {"dev": "results/score/dev/metrics.json", "val": "results/score/val/metrics.json"}

#: The configuration of 2026-11-29: resnet18 from scratch, no synthetic crosses, the hybrid class as
#: target, three epochs of the balanced set.
NOV29 = {
    "balance": {"crosses": {"per_pair": 0}},
    "finetune": {
        "model": "hybridwing-resnet18",
        "allow_random_init": True,
        "trunk_weights": None,
        "backbone_lr": 0.0003,
        "head_lr": 0.0003,
        "epochs": 3,
        "hybrid_target": "class",
    },
}
#: Each setting is an overlay of config/heliconius.yaml; `shipped` is the file as it is.
SETTINGS: dict[str, dict] = {"shipped": {}, "nov29": NOV29}


def machine() -> str:
    """The host, processor and core count, so rows from different machines are told apart."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return f"{platform.node()}: {model}, {os.cpu_count()} cores"


def commit() -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def rows_of(workdir: Path, setting: str, seed: int, minutes: float) -> list[dict]:
    """One row per hybrid score: dev's figures and the validation split's challenge score."""
    dev, val = (json.loads((workdir / path).read_text()) for path in EVALUATED.values())
    rows = []
    for score in [dev["score"], *dev["alternatives"]]:
        d = dev if score == dev["score"] else dev["alternatives"][score]
        v = val if score == val["score"] else val["alternatives"][score]
        low, high = d.get("challenge_score_ci90", [None, None])
        rows.append(
            {
                "commit": commit(),
                "machine": machine(),
                "setting": setting,
                "seed": seed,
                "score": score,
                "shipped_score": score == dev["score"],
                "dev": d["challenge_score"],
                "dev_ci90_low": low,
                "dev_ci90_high": high,
                "dev_major": d["major_recall"],
                "dev_minor": d["minor_recall"],
                "dev_mimic": d["mimic_recall"],
                "dev_roc_auc": d["roc_auc"],
                "val": v["challenge_score"],
                "minutes": round(minutes, 1),
            }
        )
    return rows


def run_row(workdir: Path, setting: str, seed: int) -> list[dict]:
    overlay = workdir / f"{setting}_seed{seed}.yaml"
    finetune = SETTINGS[setting].get("finetune", {}) | {"seed": seed}
    overlay.write_text(yaml.safe_dump(SETTINGS[setting] | {"finetune": finetune}))
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(workdir),
            "--cores",
            "2",
            *EVALUATED.values(),
            "--configfile",
            str(REPO / "config/heliconius.yaml"),
            str(overlay),
        ],
        check=True,
    )
    return rows_of(workdir, setting, seed, (time.perf_counter() - started) / 60)


def main() -> None:
    workdir = Path(sys.argv[1]).resolve()
    setting, seeds = sys.argv[2], [int(seed) for seed in sys.argv[3:]]
    for seed in seeds:
        rows = pd.DataFrame(run_row(workdir, setting, seed))
        record = pd.read_csv(RECORD) if RECORD.is_file() else pd.DataFrame()
        pd.concat([record, rows], ignore_index=True).to_csv(RECORD, index=False, float_format="%.4f")
        print(rows.to_string(index=False), flush=True)


if __name__ == "__main__":
    main()
