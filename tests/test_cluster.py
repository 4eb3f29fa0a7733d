"""Sharded per-image work and the SLURM executor: the per-image stages of the tiny synthetic run,
split into two shards on a one-node SLURM cluster started here, through the shipped profile, give
the same results as the unsharded local run."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from apt import install_with_apt
from conftest import CORES, REPO, TINY_CONFIG, run_snakemake, write_config
from slurm_cluster import CLUSTER_NAME, ClusterRefused, LocalCluster, left_by_a_killed_run, missing_tools

from hybridwing.shards import parse_shard, shard_rows


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def comparable(workdir: Path) -> dict[str, object]:
    """What must not depend on sharding or on where jobs ran: the tables of the sharded stages with
    file paths replaced by the files' contents."""

    def by_content(table: str, *columns: str) -> list:
        frame = pd.read_csv(workdir / table, keep_default_na=False)
        for column in columns:
            frame[column] = [digest(workdir / path) if path else "" for path in frame[column]]
        return frame.to_dict("records")

    return {
        "splits": (workdir / "results/data/splits.csv").read_text(),
        "teacher": by_content("results/segment/teacher/index.csv", "mask"),
        "qc": by_content("results/segment/qc.csv", "mask", "teacher_mask"),
        "wings": by_content("results/segment/wings.csv", "path"),
        "manifest": by_content("results/balance/manifest.csv", "path"),
    }


#: The per-image stages: sharding reruns them, through sbatch here.
SUBMITTED = ("teacher_masks", "train_unet", "segment", "apply_masks", "qc")
SEGMENT_TARGETS = ["results/segment/qc.csv", "results/segment/wings.csv"]


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


def test_a_config_left_by_a_killed_test_run_is_stale_but_no_other(tmp_path):
    """A killed run leaves /etc/slurm/slurm.conf behind; the next run may replace it only when this
    module wrote it and its slurmctld is gone."""
    conf = tmp_path / "slurm.conf"
    pid_file = tmp_path / "slurmctld.pid"
    conf.write_text(f"{CLUSTER_NAME}\nSlurmctldPidFile={pid_file}\n")
    assert left_by_a_killed_run(conf), "no pid file: the controller is gone"
    pid_file.write_text(str(os.getpid()))
    assert not left_by_a_killed_run(conf), "a live controller keeps its config"
    conf.write_text(f"ClusterName=site\nSlurmctldPidFile={tmp_path / 'none.pid'}\n")
    assert not left_by_a_killed_run(conf), "someone else's config is never touched"


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A one-node SLURM cluster on localhost; where CI sets HYBRIDWING_REQUIRE_SLURM=1, a cluster
    that cannot start fails the test instead of skipping it."""
    required = os.environ.get("HYBRIDWING_REQUIRE_SLURM") == "1"
    give_up = pytest.fail if required else pytest.skip
    if missing_tools():
        reason = install_with_apt("slurm-wlm", "munge")
        if reason:
            give_up(f"no SLURM here and {reason}")
    cluster = LocalCluster(tmp_path_factory.mktemp("slurm"), cpus=2)  # two 1-thread jobs at once
    try:
        cluster.start()
    except ClusterRefused as error:
        cluster.stop()
        give_up(str(error))
    except (RuntimeError, TimeoutError) as error:
        cluster.stop()
        pytest.fail(f"the local SLURM cluster did not start: {error}")
    yield cluster
    cluster.stop()


def filled_profile(folder: Path) -> Path:
    """profiles/slurm with its placeholders filled for the local cluster (one partition, no
    accounts) and quick status checks; every other key is the shipped profile's own."""
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    assert "CHANGE-ME-partition" in str(profile) and "CHANGE-ME-account" in str(profile), (
        "the placeholders the overlay fills"
    )
    profile["default-resources"] = {"slurm_partition": "debug", "mem_mb": 1000}
    profile["set-resources"]["finetune"] = {"slurm_partition": "debug", "gpu": 0, "mem_mb": 3000}
    profile["set-resources"]["train_unet"] = {"mem_mb": 2000}
    # one thread a job, as the local runs of these tests take (conftest.CORES)
    profile["set-threads"] = dict.fromkeys(SUBMITTED, 1)
    profile |= {
        "jobs": 4,
        "latency-wait": 10,
        "slurm-no-account": True,
        "slurm-status-command": "squeue",
        # The plugin waits this long, then 10 s longer after each check that finds no job finished:
        # checks at 1, 12 and 33 s, where most of these 15-30 s jobs are seen (5 s: at 5, 20, 45).
        "slurm-init-seconds-before-status-checks": 1,
        "seconds-between-status-checks": 1,
    }
    (folder / "profile").mkdir()
    (folder / "profile" / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder / "profile"


def test_the_workflow_runs_on_slurm_through_the_profile_like_locally(slurm_cluster, tiny_run, tmp_path):
    """With --profile profiles/slurm (placeholders filled), a copy of the shared unsharded run
    switched to two shards reruns its per-image stages through sbatch; the sharded augmentation and
    the balanced set follow locally; the results equal the unsharded run's. (Data, training and
    scoring are single jobs that sharding does not change; the dry run below checks their resources.)"""
    profile = filled_profile(tmp_path)
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, symlinks=True)
    config = write_config(tmp_path, TINY_CONFIG | {"shards": 2})
    result = run_snakemake(
        run,
        "--profile",
        str(profile),
        *SEGMENT_TARGETS,
        "--configfile",
        str(config),
        timeout=1200,
        env=slurm_cluster.env,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    submitted = re.findall(r"has been submitted with SLURM jobid \d+ \(log: \S*/rule_(\w+)/", result.stdout)
    assert set(SUBMITTED) <= set(submitted)
    assert submitted.count("segment") == 2 and not {"synthesize", "metadata", "split"} & set(submitted), (
        "sharding changes no data job"
    )
    assert sorted(path.name for path in (run / "results/segment/shards").iterdir()) == ["1-of-1", "1-of-2", "2-of-2"]
    job_logs = re.findall(r"has been submitted with SLURM jobid \d+ \(log: (\S+?)\)", result.stdout)
    assert job_logs and all("logs/slurm/rule_" in log for log in job_logs), "job logs go to the profile's slurm-logdir"
    balanced = run_snakemake(run, *CORES, "results/balance/manifest.csv", "--configfile", str(config))
    assert balanced.returncode == 0, balanced.stdout[-3000:]
    assert sorted(path.name for path in (run / "results/balance/shards").iterdir()) == ["1-of-1", "1-of-2", "2-of-2"]
    assert comparable(run) == comparable(tiny_run)


def test_the_slurm_profile_lists_every_job_with_its_resources():
    result = run_snakemake(REPO, "--profile", str(REPO / "profiles/slurm"), "-n", "--forceall", timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", result.stdout, flags=re.MULTILINE)
    rules = {name for name, _ in jobs}
    assert {
        "synthesize",
        "fetch",
        "teacher_masks",
        "train_unet",
        "segment",
        "apply_masks",
        "augment",
        "balance",
        "finetune",
        "score",
    } <= rules
    for name, resources in jobs:
        if name != "all":
            assert "mem_mb=" in resources and "slurm_partition=" in resources, name
    assert any(name == "finetune" and "gpu=1" in resources for name, resources in jobs)
