"""Where a finished run's time went: `python bench/profile_run.py [RUN_DIR] [--ops]`.

Reads the Snakemake `benchmark:` files of RUN_DIR (default: this checkout) and prints, per rule,
the jobs, their wall seconds, their share of all job seconds and the largest resident memory; the
training histories add seconds per epoch. Writes the table to RUN_DIR/results/bench/run_profile.csv.
With --ops, also profiles three training steps of the configured fine-tune model (torch profiler,
2 threads) and prints the operators that take the most time: the answer to "compute or overhead?".
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]


def rule_names(run_dir: Path) -> set[str]:
    return {
        m
        for path in (run_dir / "workflow" / "rules").glob("*.smk")
        for m in re.findall(r"^rule (\w+):", path.read_text(), re.M)
    }


def rule_seconds(run_dir: Path) -> pd.DataFrame:
    """One row per rule: jobs, wall seconds, share of all job seconds, largest max_rss (MB)."""
    names, rows = rule_names(run_dir), []
    for path in sorted((run_dir / "benchmarks").rglob("*.tsv")):
        parts = path.relative_to(run_dir / "benchmarks").with_suffix("").parts
        rule = next(part for part in reversed(parts) if part in names)  # benchmarks/STAGE/RULE/SHARD.tsv and the like
        last = pd.read_csv(path, sep="\t").iloc[-1]
        rows.append({"rule": rule, "seconds": float(last["s"]), "max_rss_mb": float(last["max_rss"])})
    if not rows:
        raise SystemExit(f"no benchmark files under {run_dir / 'benchmarks'}: run the workflow there first")
    jobs = pd.DataFrame(rows)
    table = jobs.groupby("rule").agg(
        jobs=("seconds", "size"), seconds=("seconds", "sum"), max_rss_mb=("max_rss_mb", "max")
    )
    table["share"] = table["seconds"] / table["seconds"].sum()
    return table.sort_values("seconds", ascending=False).reset_index()


def epoch_seconds(run_dir: Path) -> pd.DataFrame:
    """Epochs and mean seconds per epoch of each training history the run wrote."""
    rows = []
    for name, path in (
        ("train_unet", "results/segment/unet/history.csv"),
        ("finetune", "results/finetune/history.csv"),
    ):
        if (run_dir / path).is_file():
            history = pd.read_csv(run_dir / path)
            rows.append({"rule": name, "epochs": len(history), "seconds_per_epoch": history["seconds"].mean()})
    return pd.DataFrame(rows)


def operator_profile(config_path: Path, steps: int = 3) -> str:
    """The torch profiler's operator table for `steps` training steps of the configured fine-tune model."""
    from torch.profiler import ProfilerActivity, profile

    from hybridwing.finetune.train import FinetuneSettings
    from hybridwing.finetune.trainable import configure_trainable, parameter_groups
    from hybridwing.model.backbone import WingClassifier, load_backbone

    settings = FinetuneSettings.from_config(yaml.safe_load(config_path.read_text())["finetune"])
    torch.set_num_threads(2)
    backbone = load_backbone(settings.model, settings.allow_random_init)
    model = WingClassifier(backbone.visual, 11)
    configure_trainable(model, settings.unfrozen_blocks, settings.train_proj)
    optimiser = torch.optim.AdamW(parameter_groups(model, settings.backbone_lr, settings.head_lr))
    images = torch.randn(settings.batch_size, 3, backbone.image_size, backbone.image_size)
    labels = torch.randint(0, 11, (settings.batch_size,))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    step()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            step()
    return profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=8)


def main() -> None:
    arguments = [a for a in sys.argv[1:] if a != "--ops"]
    run_dir = Path(arguments[0]) if arguments else REPO
    table = rule_seconds(run_dir)
    epochs = epoch_seconds(run_dir)
    if not epochs.empty:
        table = table.merge(epochs, on="rule", how="left")
    out = run_dir / "results" / "bench" / "run_profile.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"all jobs: {table['seconds'].sum():.0f} s; written to {out}")
    if "--ops" in sys.argv:
        print(operator_profile(run_dir / "config" / "config.yaml"))


if __name__ == "__main__":
    main()
