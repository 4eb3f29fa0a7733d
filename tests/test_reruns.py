"""Reruns of the shared tiny run on copies of it: a changed background retrains, and another
workflow imports hybridwing as a module (test_workflow.py checks the run itself)."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import yaml
from conftest import CORES, REPO, SNAKEMAKE, TINY_CONFIG, run_snakemake, write_config
from PIL import Image


def test_a_changed_background_retrains_instead_of_resuming(tiny_run, tmp_path):
    """Mask.background rewrites the training images at the same paths; the fine-tune
    must not resume the old checkpoint, so the weights change and mask.json agrees with them."""
    shutil.copytree(tiny_run, tmp_path, dirs_exist_ok=True, symlinks=True)
    model_dir = tmp_path / "results/finetune/model"
    before = (model_dir / "weights.safetensors").read_bytes()
    first_image = tmp_path / pd.read_csv(tmp_path / "results/balance/manifest.csv")["path"].iloc[0]
    white = np.asarray(Image.open(first_image).convert("RGB"))
    black = TINY_CONFIG | {"mask": {"background": "black"}}
    result = run_snakemake(
        tmp_path, *CORES, "results/finetune/metrics.json", "--configfile", str(write_config(tmp_path, black))
    )
    assert result.returncode == 0, result.stdout[-3000:]
    log = (tmp_path / "logs/finetune.log").read_text()
    assert "resuming" not in log and "training afresh" in log
    assert (model_dir / "weights.safetensors").read_bytes() != before
    assert json.loads((model_dir / "mask.json").read_text())["background"] == "black"
    now = np.asarray(Image.open(first_image).convert("RGB"))
    background = (white == 255).all(-1)
    assert background.mean() > 0.2 and (now[background] == 0).all(-1).mean() > 0.95, (
        "the same path holds the black-background image"
    )


#: The outer workflow of a lab that runs hybridwing inside its own (the README's snippet).
MODULE_SNAKEFILE = """configfile: "outer.yaml"


module hybridwing:
    snakefile:
        "{snakefile}"
    config:
        config["hybridwing"]


use rule * from hybridwing as hw_*
"""


def test_another_workflow_imports_hybridwing_as_a_module(tiny_run, tmp_path):
    """An outer workflow with its own working directory and config imports the Snakefile
    with `module` and `use rule * from hybridwing as hw_*`. Its config is the tiny run's, so the
    tiny run's results are up to date under the prefixed rules, and the rules it reruns through the
    module (the balanced set) write the same images as the workflow run directly."""
    shutil.copytree(tiny_run, tmp_path, dirs_exist_ok=True, symlinks=True)
    # the tiny run's config exactly as its --configfile gave it (key order is part of a rule's params)
    tiny = yaml.safe_load((tiny_run / "config.yaml").read_text())
    (tmp_path / "outer.yaml").write_text(yaml.safe_dump({"hybridwing": tiny}, sort_keys=False))
    (tmp_path / "Snakefile").write_text(MODULE_SNAKEFILE.format(snakefile=REPO / "Snakefile"))
    outer = [SNAKEMAKE[0], "-m", "snakemake", "--snakefile", str(tmp_path / "Snakefile"), "--directory", str(tmp_path)]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*outer, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)

    dry = run("-n")
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout, dry.stdout[-3000:]
    manifest = tmp_path / "results/balance/manifest.csv"
    before = pd.read_csv(manifest)
    pixels = {path: np.asarray(Image.open(tmp_path / path)) for path in before["path"].iloc[::25]}
    shutil.rmtree(tmp_path / "results/balance")
    (tmp_path / "logs/balance/balance.log").unlink()
    result = run(*CORES, str(manifest.relative_to(tmp_path)))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "rule hw_balance:" in result.stdout and "rule hw_augment:" in result.stdout
    assert "balanced" in (tmp_path / "logs/balance/balance.log").read_text(), (
        "the module's rules log into the outer working directory"
    )
    pd.testing.assert_frame_equal(pd.read_csv(manifest), before)
    assert all(np.array_equal(np.asarray(Image.open(tmp_path / path)), picture) for path, picture in pixels.items())
