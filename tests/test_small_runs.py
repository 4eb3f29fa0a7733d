"""The workflow on small inputs of its own, beside the shared tiny run: config validation before any
job, a small run on real images, a failed fetch, and the real config over the synthetic default.
(Apart from test_workflow.py so that a second test worker takes them while the first builds the
tiny run.)"""

from __future__ import annotations

import os
import shutil
import subprocess

import pandas as pd
import pytest
import yaml
from conftest import CORES, REPO, SNAKEMAKE, TAXA, job_counts, run_snakemake, write_config


@pytest.fixture()
def small_dataset(tmp_path, heliconius, train_rows, dev_rows) -> dict:
    """40 training and 20 evaluation rows of the real tables, images referenced by file:// URL."""
    data = tmp_path / "data"
    data.mkdir()
    train = pd.concat([train_rows.head(8), train_rows.iloc[200:232]])
    train["file_url"] = [(heliconius / url).as_uri() for url in train["file_url"]]
    train.to_csv(data / "train.csv", index=False)
    dev = dev_rows.head(20).copy()
    dev["file_url"] = [(heliconius / url).as_uri() for url in dev["file_url"]]
    dev.to_csv(data / "dev.csv", index=False)
    return {
        "dataset": {
            "train_table": str(data / "train.csv"),
            "eval_tables": {"dev": str(data / "dev.csv")},
            "taxa": str(TAXA),
        },
        "fetch": {"max_parallel": 4, "backoff_s": 0.0},
    }


def test_unknown_key_fails_the_dry_run_naming_it(tmp_path, small_dataset):
    small_dataset["split"] = {"max_hammming": 3}
    result = run_snakemake(tmp_path, "-n", "--configfile", str(write_config(tmp_path, small_dataset)))
    assert result.returncode != 0
    assert "config key split.max_hammming: not a setting of split; the keys allowed there are" in result.stdout


def test_wrong_type_fails_naming_the_key(tmp_path, small_dataset):
    small_dataset["fetch"]["retries"] = "many"
    result = run_snakemake(tmp_path, "-n", "--configfile", str(write_config(tmp_path, small_dataset)))
    assert result.returncode != 0
    assert "'many' is not of type 'integer'" in result.stdout and "retries" in result.stdout


def test_missing_table_fails_naming_the_key(tmp_path, small_dataset):
    small_dataset["dataset"]["eval_tables"]["dev"] = str(tmp_path / "nowhere.csv")
    result = run_snakemake(tmp_path, "-n", "--configfile", str(write_config(tmp_path, small_dataset)))
    assert result.returncode != 0
    assert "dataset.eval_tables.dev: file not found" in result.stdout


def test_an_evaluation_table_named_like_a_split_is_refused(tmp_path, small_dataset):
    small_dataset["dataset"]["eval_tables"]["test"] = small_dataset["dataset"]["eval_tables"].pop("dev")
    result = run_snakemake(tmp_path, "-n", "--configfile", str(write_config(tmp_path, small_dataset)))
    assert result.returncode != 0
    assert "config key dataset.eval_tables: 'test' is a reserved name (reserved: train, val, test" in result.stdout


def test_small_run_fetches_and_splits(tmp_path, small_dataset):
    config = write_config(tmp_path, small_dataset)
    result = run_snakemake(tmp_path, *CORES, "results/data/splits.csv", "--configfile", str(config))
    assert result.returncode == 0, result.stdout[-3000:]
    metadata = pd.read_csv(tmp_path / "results/data/metadata.csv")
    splits = pd.read_csv(tmp_path / "results/data/splits.csv")
    assert len(metadata) == 60 and list(splits["image_id"]) == list(metadata["image_id"])
    assert set(splits.loc[splits["source"] == "dev", "split"]) == {"dev"}
    assert set(splits.loc[splits["source"] == "train", "split"]) <= {"train", "val", "test"}
    assert all((tmp_path / path).is_file() for path in metadata["path"])
    assert (tmp_path / "logs/split.log").read_text().count("images per class and split") == 1

    rerun = run_snakemake(tmp_path, "-n", "results/data/splits.csv", "--configfile", str(config))
    assert rerun.returncode == 0 and "Nothing to be done" in rerun.stdout


def test_failed_fetch_keeps_what_it_fetched(tmp_path, small_dataset):
    train = pd.read_csv(small_dataset["dataset"]["train_table"], dtype=str, keep_default_na=False)
    train.loc[3, "md5"] = "0" * 32
    train.to_csv(small_dataset["dataset"]["train_table"], index=False)
    config = write_config(tmp_path, small_dataset)
    result = run_snakemake(tmp_path, *CORES, "results/data/splits.csv", "--configfile", str(config))
    assert result.returncode != 0
    assert not (tmp_path / "results/data/tables/train.csv").exists()
    failures = pd.read_csv(tmp_path / "logs/fetch/train_failures.csv")
    assert failures["reason"].str.contains("md5 mismatch").tolist() == [True]
    stored = list((tmp_path / "resources/images").rglob("*.jpg"))
    assert len(stored) >= 39

    small_dataset["fetch"]["allow_missing"] = True
    config = write_config(tmp_path, small_dataset)
    result = run_snakemake(tmp_path, *CORES, "results/data/splits.csv", "--configfile", str(config))
    assert result.returncode == 0, result.stdout[-3000:]
    assert len(pd.read_csv(tmp_path / "results/data/tables/train.csv")) == 39
    assert "0 fetched, 39 already stored, 1 failed" in (tmp_path / "logs/fetch/train.log").read_text()


def test_real_config_overrides_the_synthetic_default(tmp_path):
    """--configfile extends config/config.yaml: the real-data config must replace what matters."""
    result = subprocess.run(
        [
            *SNAKEMAKE,
            "-n",
            "--configfile",
            str(REPO / "config/heliconius.yaml"),
            "--printshellcmds",
            "results/data/splits.csv",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "synthesize" not in result.stdout
    import snakemake.utils  # the same merge Snakemake applies

    merged = yaml.safe_load((REPO / "config/config.yaml").read_text())
    snakemake.utils.update_config(merged, yaml.safe_load((REPO / "config/heliconius.yaml").read_text()))
    assert merged["teacher"]["method"] == "classical"
    assert merged["unet"]["max_train_images"] == 800


# The HTML report in a real browser: Debian's Chromium (installed with apt where it is missing),
# driven by playwright, opens every section of the shared tiny run's report and every result in it.


def test_a_change_in_the_library_reruns_the_rules_that_run_it(tmp_path, small_dataset):
    """The split's code lives in src/hybridwing, not in its script: a changed copy of the library
    (first on the path) reruns the data rules, and the unchanged one leaves them done."""
    config = write_config(tmp_path, small_dataset)
    result = run_snakemake(tmp_path, *CORES, "results/data/splits.csv", "--configfile", str(config))
    assert result.returncode == 0, result.stdout[-3000:]
    library = tmp_path / "library"
    shutil.copytree(REPO / "src/hybridwing", library / "hybridwing", ignore=shutil.ignore_patterns("__pycache__"))
    on_the_copy = os.environ | {"PYTHONPATH": str(library)}
    unchanged = run_snakemake(tmp_path, "-n", "results/data/splits.csv", "--configfile", str(config), env=on_the_copy)
    assert unchanged.returncode == 0 and "Nothing to be done" in unchanged.stdout, unchanged.stdout[-2000:]

    split_module = library / "hybridwing/data/split.py"
    split_module.write_text(split_module.read_text() + "\n# a change in the library\n")
    changed = run_snakemake(tmp_path, "-n", "results/data/splits.csv", "--configfile", str(config), env=on_the_copy)
    assert changed.returncode == 0, changed.stdout[-2000:]
    assert {"split", "metadata"} <= set(job_counts(changed.stdout)), changed.stdout[-2000:]
    assert "Params have changed since last execution" in changed.stdout
