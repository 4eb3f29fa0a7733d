"""What the benchmarks that write rows share: the real configuration run in a working folder, and
the commit, machine and dev figures every row carries."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The rules a row may run again on a folder's masks, in the order they run.
RERUNNABLE = ("augment", "balance", "finetune", "score")


def run_real_config(
    workdir: Path, targets: list[str], overlay: Path, rerun_from: str | None = None, allowed: set[str] | None = None
) -> float:
    """Snakemake on config/heliconius.yaml and `overlay` in `workdir`, two cores; minutes taken.

    With `rerun_from` (a rule), that rule and what follows it run again and every other output in
    the folder is kept as it is (only missing or older inputs trigger): rows of a later commit
    then share the wing masks and balanced set of rows an earlier commit ran in the same folder.
    The run stops before it starts if it would redo a rule outside `allowed` (by default `rerun_from`
    and the rules after it in RERUNNABLE).
    """
    # --forcerun takes every word up to the next option: it comes after the targets.
    kept = [] if rerun_from is None else ["--rerun-triggers", "mtime", "--forcerun", rerun_from]
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    command += ["--cores", "2", *targets, *kept, "--configfile", str(REPO / "config/heliconius.yaml"), str(overlay)]
    if rerun_from is not None:
        refuse_upstream_jobs(command, allowed or set(RERUNNABLE[RERUNNABLE.index(rerun_from) :]))
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return (time.perf_counter() - started) / 60


def refuse_upstream_jobs(command: list[str], allowed: set[str]) -> None:
    """Stop before a run that would redo anything but `allowed` rules: with mtime triggers, a file of
    this checkout newer than the folder's outputs (the taxa table of a fresh clone) reruns the fetch
    and everything after it, the U-Net included, and the folder's masks are lost."""
    planned = subprocess.run([*command, "-n"], capture_output=True, text=True, check=True).stdout
    rules = {line.split()[1].rstrip(":") for line in planned.splitlines() if line.startswith(("rule ", "localrule "))}
    if rules - allowed:
        raise SystemExit(
            f"the run would redo {', '.join(sorted(rules - allowed))}, not only {', '.join(sorted(allowed))}: files "
            "of this checkout are newer than the folder's outputs (touch them older) or the folder lacks outputs"
        )


def machine() -> str:
    """The host, processor and core count, so rows from different machines are told apart."""
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), platform.processor())
    return f"{platform.node()}: {model}, {os.cpu_count()} cores"


def commit() -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def dev_figures(metrics: dict) -> dict:
    """A score's dev figures from a metrics.json block: challenge score, its 90% interval, parts, ROC-AUC."""
    low, high = metrics.get("challenge_score_ci90", [None, None])
    return {
        "dev": metrics["challenge_score"],
        "dev_ci90_low": low,
        "dev_ci90_high": high,
        "dev_major": metrics["major_recall"],
        "dev_minor": metrics["minor_recall"],
        "dev_mimic": metrics["mimic_recall"],
        "dev_roc_auc": metrics["roc_auc"],
    }
