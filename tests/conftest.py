"""Shared fixtures: the real Heliconius photographs beside the project and small tables cut from them."""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# Two test workers share the machine's cores: torch in a worker's own process takes one thread, and
# so does every job of the Snakemake runs below (CORES). Four OpenMP threads on two cores ran two tiny
# runs side by side in 231 s each; one thread apiece, in 148 s, as fast as one run alone.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
HELICONIUS = REPO.parent / "shared" / "data" / "heliconius"
TAXA = REPO / "src/hybridwing/data/heliconius_taxa.csv"
CORES = ("--cores", "1")
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
#: The tiny synthetic run: the whole DAG in about two and a half minutes (tiny_run, below).
TINY_CONFIG = {
    "dataset": {
        "synthetic": {
            "image_size": 96,
            "train_images": 60,
            "train_hybrids": 4,
            "eval": {
                "major": {"non_hybrid": 4, "hybrid": 4},
                "minor": {"non_hybrid": 4, "hybrid": 2},
                "mimic": {"non_hybrid": 4, "hybrid": 2},
            },
        }
    },
    "teacher": {"method": "provided"},
    "unet": {"image_size": 64, "epochs": 2, "decoder_channels": [16, 16, 8, 8]},
    "balance": {"min_per_class": 12, "crosses": {"per_pair": 1}},
    "finetune": {
        "model": "hybridwing-vit-tiny",
        "allow_random_init": True,
        "unfrozen_blocks": "all",
        "epochs": 1,
        "batch_size": 16,
    },
    "score": {"bootstrap": 50},
}
#: An ensemble of two with mirror averaging and a fitted temperature (the active-learning round trains one).
ENSEMBLE = {"ensemble": 2, "flip_average": True, "temperature": "fit"}


#: The order the test workers take modules in (--dist loadscope gives each module to one worker, and
#: by default the modules with the most tests first). The module that builds the tiny run goes
#: first; the other worker meanwhile runs the longer modules that do not need it, about as long as
#: the build; then come the modules that work on copies of the tiny run, the longest first, and the
#: short modules last, so that both workers finish together.
BUILDS_THE_TINY_RUN = "test_workflow.py"
WHILE_IT_BUILDS = ("test_bioclip_layout.py", "test_config.py", "test_finetune.py", "test_segment.py")
ON_COPIES_OF_IT = ("test_active_learning.py", "test_cluster.py", "test_held_out_model.py", "test_reruns.py")


#: A test that uses one of these (a helper it calls, or a fixture it takes, however indirectly) runs
#: Snakemake, and is marked `workflow`: `pytest -m "not workflow"` is the library's quick loop.
RUNS_SNAKEMAKE = {"run_snakemake", "dry_run", "planned_jobs", "tiny_run"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that run Snakemake; order the build, the long modules beside it, the copies of
    the tiny run, then the short modules."""
    for item in items:
        code = getattr(getattr(item, "function", None), "__code__", None)
        if RUNS_SNAKEMAKE & {*item.fixturenames, *(code.co_names if code else ())}:
            item.add_marker(pytest.mark.workflow)

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        if name == BUILDS_THE_TINY_RUN:
            return 0
        if name in WHILE_IT_BUILDS:
            return 1
        if name in ON_COPIES_OF_IT:
            return 2 + ON_COPIES_OF_IT.index(name)
        return 2 + len(ON_COPIES_OF_IT)

    items.sort(key=rank)


def run_snakemake(
    workdir: Path, *args: str, timeout: int = 900, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Snakemake on the project's Snakefile in `workdir`, output and errors together."""
    return subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        env=env,
    )


def job_counts(stdout: str) -> dict[str, int]:
    """The jobs a Snakemake run or dry run lists in its job stats, by rule (none for "Nothing to be done")."""
    if "Nothing to be done" in stdout:
        return {}
    stats = stdout.split("Job stats:")[1].split("total")[0]
    return {name: int(count) for name, count in re.findall(r"^(\w+)\s+(\d+)$", stats, flags=re.MULTILINE)}


def write_config(workdir: Path, config: dict, name: str = "config.yaml") -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / name
    path.write_text(yaml.safe_dump(config))
    return path


def planned_jobs(workdir: Path, config: dict) -> dict[str, int]:
    """Jobs a dry run with `config` would run, by rule (`config` goes to planned.yaml: the run's own
    config.yaml is left as it is)."""
    result = run_snakemake(workdir, "-n", "--configfile", str(write_config(workdir, config, "planned.yaml")))
    assert result.returncode == 0, result.stdout[-3000:]
    return job_counts(result.stdout)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The whole workflow once on TINY_CONFIG, locally and unsharded, once for all test workers: the
    first to ask builds it under a lock while the other waits, and a failed build fails both with its
    output. Tests must not write to it: those that change it work on a copy."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder, above each worker's own
    workdir, outcome = root / "tiny_run", root / "tiny_run.outcome"
    with (root / "tiny_run.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not outcome.exists():
            result = run_snakemake(workdir, *CORES, "--configfile", str(write_config(workdir, TINY_CONFIG)))
            outcome.write_text(f"{result.returncode}\n{result.stdout[-3000:]}")
    returncode, _, output = outcome.read_text().partition("\n")
    assert returncode == "0", output
    return workdir


@pytest.fixture(scope="session")
def heliconius() -> Path:
    if not (HELICONIUS / "train.csv").is_file():
        pytest.skip(f"real images not found at {HELICONIUS}")
    return HELICONIUS


@pytest.fixture(scope="session")
def taxa():
    from hybridwing.data.tables import Taxa

    return Taxa.read(TAXA)


@pytest.fixture(scope="session")
def train_rows(heliconius) -> pd.DataFrame:
    """The real training table, every cell a string, as the loader reads it."""
    return pd.read_csv(heliconius / "train.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="session")
def dev_rows(heliconius) -> pd.DataFrame:
    return pd.read_csv(heliconius / "dev.csv", dtype=str, keep_default_na=False)


BIOCLIP_MEAN = (0.41, 0.43, 0.39)  # not the OpenAI or ImageNet values, so a default cannot pass for them
BIOCLIP_STD = (0.21, 0.23, 0.25)


@pytest.fixture(scope="session")
def bioclip_folder(tmp_path_factory) -> Path:
    """ViT-B-16 with random weights (text tower included), written as hf-hub:imageomics/bioclip's
    folder is laid out."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("bioclip")
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-16", pretrained=None)
    config = {
        "model_cfg": open_clip.get_model_config("ViT-B-16"),
        "preprocess_cfg": {
            "mean": list(BIOCLIP_MEAN),
            "std": list(BIOCLIP_STD),
            "interpolation": "bicubic",
            "resize_mode": "shortest",
        },
    }
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    save_file(
        {name: tensor.contiguous() for name, tensor in model.state_dict().items()},
        folder / "open_clip_model.safetensors",
    )
    return folder


@pytest.fixture()
def tiny_sets(tmp_path):
    """32 training and 8 validation images of two colours: easy to learn, fast to run."""
    rows = []
    rng = np.random.default_rng(0)
    for k in range(40):
        label = k % 2
        pixels = np.full((40, 40, 3), (200, 40, 40) if label else (40, 40, 200), np.uint8)
        pixels = np.clip(pixels + rng.normal(0, 20, pixels.shape), 0, 255).astype(np.uint8)
        path = tmp_path / f"{k}.png"
        Image.fromarray(pixels).save(path)
        rows.append(
            {
                "image_id": f"i{k}",
                "path": str(path),
                "class_index": label,
                "class": "ab"[label],
                "source_image": f"i{k}",
            }
        )
    frame = pd.DataFrame(rows)
    return frame.iloc[:32].reset_index(drop=True), frame.iloc[32:].reset_index(drop=True)
