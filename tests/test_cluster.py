"""Sharded per-image work and the SLURM executor: a tiny synthetic run split into shards, locally and
on a one-node SLURM cluster started here, gives the same results as the unsharded local run."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO
from slurm_cluster import ClusterRefused, LocalCluster, install_with_apt, missing_tools

from hybridwing.shards import parse_shard, shard_rows

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
TINY = {
    "dataset": {
        "synthetic": {
            "image_size": 96,
            "train_images": 48,
            "train_hybrids": 4,
            "eval": {"major": {"non_hybrid": 4, "hybrid": 3}, "minor": {"non_hybrid": 4, "hybrid": 2}, "mimic": {"non_hybrid": 4, "hybrid": 2}},
        }
    },
    "teacher": {"method": "provided"},
    "unet": {"image_size": 64, "epochs": 1, "decoder_channels": [16, 16, 8, 8]},
    "balance": {"min_per_class": 10},
    "finetune": {"model": "hybridwing-vit-tiny", "allow_random_init": True, "unfrozen_blocks": "all", "epochs": 1, "batch_size": 16},
    "score": {"bootstrap": 50},
}


def run_workflow(workdir: Path, shards: int, *extra: str) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump(TINY | {"shards": shards}))
    return subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), *extra, "--configfile", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900,
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def comparable(workdir: Path) -> dict[str, object]:
    """What must not depend on sharding or on where jobs ran: tables with file paths replaced by
    the files' contents, and the scores."""
    def by_content(table: str, *columns: str) -> list:
        frame = pd.read_csv(workdir / table, keep_default_na=False)
        for column in columns:
            frame[column] = [digest(workdir / path) if path else "" for path in frame[column]]
        return frame.to_dict("records")

    predictions = pd.read_csv(workdir / "results/score/dev/predictions.csv")
    return {
        "splits": (workdir / "results/data/splits.csv").read_text(),
        "teacher": by_content("results/segment/teacher/index.csv", "mask"),
        "qc": by_content("results/segment/qc.csv", "mask", "teacher_mask"),
        "wings": by_content("results/segment/wings.csv", "path"),
        "manifest": by_content("results/balance/manifest.csv", "path"),
        "dev_subspecies": predictions["subspecies"].tolist(),
        "dev_scores": predictions["hybrid_score"].round(4).tolist(),
    }


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory) -> dict[str, object]:
    workdir = tmp_path_factory.mktemp("unsharded")
    result = run_workflow(workdir, 1, "--cores", "2")
    assert result.returncode == 0, result.stdout[-3000:]
    return comparable(workdir)


def test_shards_partition_rows_in_order():
    frame = pd.DataFrame({"k": range(10)})
    pieces = [shard_rows(frame, f"{i}-of-3") for i in (1, 2, 3)]
    assert [len(p) for p in pieces] == [3, 4, 3]
    assert pd.concat(pieces)["k"].tolist() == list(range(10))
    assert shard_rows(frame, "1-of-1").equals(frame)
    assert len(shard_rows(frame.head(2), "3-of-3")) == 1 and parse_shard("2-of-5") == (2, 5)
    for bad in ("0-of-3", "4-of-3", "shard1"):
        with pytest.raises(ValueError, match="not a shard name"):
            parse_shard(bad)


def test_sharded_run_equals_the_unsharded_run(unsharded, tmp_path):
    result = run_workflow(tmp_path, 3, "--cores", "2")
    assert result.returncode == 0, result.stdout[-3000:]
    assert len(list((tmp_path / "results/segment/shards").iterdir())) == 3
    assert comparable(tmp_path) == unsharded


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    if missing_tools():
        reason = install_with_apt()
        if reason:
            pytest.skip(f"no SLURM here and {reason}")
    cluster = LocalCluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except ClusterRefused as error:
        cluster.stop()
        pytest.skip(str(error))
    except (RuntimeError, TimeoutError) as error:
        cluster.stop()
        pytest.fail(f"the local SLURM cluster did not start: {error}")
    yield cluster
    cluster.stop()


def test_the_workflow_runs_on_slurm_like_locally(slurm_cluster, unsharded, tmp_path):
    """Every job goes through sbatch (status from squeue); the results equal the local run's."""
    result = subprocess.run(
        [
            *SNAKEMAKE, "--directory", str(tmp_path), "--executor", "slurm", "--jobs", "4",
            "--slurm-no-account", "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1",
            "--default-resources", "slurm_partition=debug", "mem_mb=1000", "--set-resources", "finetune:gpu=0", "finetune:mem_mb=3000",
            "train_unet:mem_mb=2000", "--latency-wait", "10", "--configfile", str(_config(tmp_path, shards=2)),
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1200, env=slurm_cluster.env,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    submitted = re.findall(r"has been submitted with SLURM jobid \d+ \(log: \S*/rule_(\w+)/", result.stdout)
    assert {"synthesize", "teacher_masks", "train_unet", "segment", "apply_masks", "augment", "balance", "finetune", "score"} <= set(submitted)
    assert submitted.count("segment") == 2 and "fetch" not in submitted  # two shards; downloads stay local
    assert comparable(tmp_path) == unsharded
    assert json.loads((tmp_path / "results/score/dev/metrics.json").read_text())["n_images"] == 19


def _config(workdir: Path, shards: int) -> Path:
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump(TINY | {"shards": shards}))
    return config


def test_the_slurm_profile_lists_every_job_with_its_resources():
    result = subprocess.run(
        [*SNAKEMAKE, "--directory", str(REPO), "--profile", str(REPO / "profiles/slurm"), "-n", "--forceall"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", result.stdout, flags=re.MULTILINE)
    rules = {name for name, _ in jobs}
    assert {"synthesize", "fetch", "teacher_masks", "train_unet", "segment", "apply_masks", "augment", "balance", "finetune", "score"} <= rules
    for name, resources in jobs:
        if name != "all":
            assert "mem_mb=" in resources and "slurm_partition=" in resources, name
    assert any(name == "finetune" and "gpu=1" in resources for name, resources in jobs)
