"""Settings the schema lets through but that would fail late or blow up are refused
before the first job, naming the key."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from conftest import REPO, TINY_CONFIG, run_snakemake


def dry_run(workdir, config: dict | str) -> tuple[int, str]:
    path = workdir / "config.yaml"
    workdir.mkdir(parents=True, exist_ok=True)
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    result = run_snakemake(workdir, "-n", "--configfile", str(path))
    return result.returncode, result.stdout


def with_block(block: str, **values) -> dict:
    return TINY_CONFIG | {block: TINY_CONFIG.get(block, {}) | values}


def test_what_the_schema_cannot_check_is_named_before_any_job(tmp_path):
    config = TINY_CONFIG | {
        "shards": 2.0,
        "balance": TINY_CONFIG["balance"] | {"augment": {"scale": [1.2, 0.8], "gamma": [1.3, 0.7]}},
        "unet": TINY_CONFIG["unet"] | {"encoder_depth": 5},
    }
    status, out = dry_run(tmp_path, config)
    assert status != 0
    for expected in (
        "config key shards: 2.0 must be a whole number written without a decimal point (2)",
        "config key balance.augment.scale: [1.2, 0.8] is reversed",
        "config key balance.augment.gamma: [1.3, 0.7] is reversed",
        "config key unet.decoder_channels: 4 values for unet.encoder_depth 5",
    ):
        assert expected in out, out[-3000:]
    assert "Job stats" not in out


def test_more_shards_than_images_is_refused(tmp_path):
    status, out = dry_run(tmp_path, TINY_CONFIG | {"shards": 500})
    images = 60 + 4 + 4 + 4 + 2 + 4 + 2
    assert status != 0 and f"config key shards: 500 shards for {images} images (use at most {images})" in out, out[
        -2000:
    ]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (with_block("balance", min_per_class=10**12), "1000000000000 is greater than the maximum of 100000"),
        (with_block("score", bootstrap=10**9), "1000000000 is greater than the maximum of 100000"),
        (with_block("finetune", unfrozen_blocks=1000), "1000 is not valid under any of the given schemas"),
        (with_block("unet", encoder="resnet19"), "'resnet19' is not valid under any of the given schemas"),
        (TINY_CONFIG | {"shards": 100_000}, "100000 is greater than the maximum of 1024"),
        (
            with_block(
                "finetune", trunk_weights={"path": "package:no_such_weights/x.pth", "mean": [0] * 3, "std": [1] * 3}
            ),
            "finetune.trunk_weights package:no_such_weights/x.pth: no installed package 'no_such_weights'",
        ),
    ],
    ids=["min_per_class", "bootstrap", "unfrozen_blocks", "encoder", "shards", "weights_package"],
)
def test_the_schema_bounds_what_would_blow_up(tmp_path, config, expected):
    status, out = dry_run(tmp_path, config)
    assert status != 0 and expected in out, out[-2000:]


def test_a_key_given_twice_in_a_config_file_is_an_error(tmp_path):
    text = yaml.safe_dump(TINY_CONFIG) + "balance:\n  min_per_class: 20\n"
    status, out = dry_run(tmp_path, text)
    assert (
        status != 0
        and "key 'balance' is given twice in one block" in out
        and "YAML would silently drop the first" in out
    ), out[-2000:]


def test_the_encoder_list_of_the_schema_is_the_installed_one():
    import segmentation_models_pytorch as smp

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    listed = schema["properties"]["unet"]["properties"]["encoder"]["anyOf"][0]["enum"]
    assert sorted(listed) == sorted(smp.encoders.get_encoder_names())


def test_more_unfrozen_blocks_than_the_model_has_names_the_key():
    from hybridwing.finetune.trainable import configure_trainable
    from hybridwing.model.backbone import WingClassifier, load_backbone

    classifier = WingClassifier(load_backbone("hybridwing-vit-tiny", allow_random_init=True).visual, 3)
    with pytest.raises(ValueError, match=r"config key finetune.unfrozen_blocks: 40, but the model has \d+ blocks"):
        configure_trainable(classifier, 40, train_proj=True)


def test_the_shipped_configs_pass_the_checks():
    for name in ("config.yaml", "heliconius.yaml"):
        result = run_snakemake(REPO, "-n", "--configfile", str(REPO / "config" / name))
        assert result.returncode == 0, result.stdout[-2000:]


def test_the_shipped_taxa_table_resolves_from_the_checkout_elsewhere(tmp_path, monkeypatch):
    """Run as a module from another working directory, the default dataset.taxa names the
    checkout's table; a file of that name in the working directory, or any other path, is kept."""
    from hybridwing.config import from_checkout

    monkeypatch.chdir(tmp_path)
    assert from_checkout("src/hybridwing/data/heliconius_taxa.csv", REPO) == str(
        REPO / "src/hybridwing/data/heliconius_taxa.csv"
    )
    assert from_checkout("config/missing.csv", REPO) == "config/missing.csv"
    (tmp_path / "src/hybridwing/data").mkdir(parents=True)
    (tmp_path / "src/hybridwing/data/heliconius_taxa.csv").write_text("code,subspecies,species\n")
    assert from_checkout("src/hybridwing/data/heliconius_taxa.csv", REPO) == "src/hybridwing/data/heliconius_taxa.csv"


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (with_block("split", fractions={"train": NAN, "val": 0.15, "test": 0.15}), "split.fractions.train: nan is not"),
        (with_block("mask", threshold=NAN), "config key mask.threshold: nan is not a finite number"),
        (with_block("finetune", backbone_lr=NAN), "config key finetune.backbone_lr: nan is not a finite number"),
        (with_block("finetune", temperature=INF), "config key finetune.temperature: inf is not a finite number"),
        (with_block("fetch", timeout_s=INF), "config key fetch.timeout_s: inf is not a finite number"),
        (TINY_CONFIG | {"shards": NAN}, "nan is not of type 'integer'"),  # the schema refuses it by type
        (
            with_block("split", fractions={"train": 0.9, "val": 0.5, "test": 0.5}),
            "config key split.fractions: train + val + test = 1.9; they must add up to 1",
        ),
    ],
    ids=["fraction_nan", "threshold_nan", "lr_nan", "temperature_inf", "timeout_inf", "shards_nan", "fractions_sum"],
)
def test_numbers_that_are_not_finite_and_fractions_that_do_not_add_up_stop_before_any_job(tmp_path, config, expected):
    status, out = dry_run(tmp_path, config)
    assert status != 0 and expected in out, out[-2000:]
    assert "Job stats" not in out and not (tmp_path / "results").exists()


def test_an_evaluation_table_named_like_an_output_folder_is_refused(tmp_path, heliconius):
    """Tables are fetched by name, and the reviewed labels are fetched as the table extra_labels: a table
    of that name would clash."""
    config = {
        "dataset": {
            "train_table": str(heliconius / "train.csv"),
            "eval_tables": {"extra_labels": str(heliconius / "dev.csv")},
        }
    }
    status, out = dry_run(tmp_path, config)
    assert status != 0 and "config key dataset.eval_tables: 'extra_labels' is a reserved name" in out, out[-2000:]
    assert "AmbiguousRuleException" not in out


def test_a_config_the_schema_refuses_is_one_line_per_problem_with_the_allowed_keys(tmp_path):
    """A misspelt key names the keys of its block; every problem is listed, and no schema is printed."""
    config = with_block("finetune", epohcs=3) | {"unet": TINY_CONFIG["unet"] | {"epochs": "many"}}
    status, out = dry_run(tmp_path, config)
    assert status != 0 and "Job stats" not in out
    listed = [line.strip() for line in out.splitlines() if line.strip().startswith("config key")]
    assert len(listed) == 2, out
    assert listed[0].startswith("config key finetune.epohcs: not a setting of finetune; the keys allowed there are")
    assert "epochs" in listed[0].split("allowed there are")[1] and "cross_share" in listed[0]
    assert listed[1] == "config key unet.epochs: 'many' is not of type 'integer'"
    assert "Failed validating" not in out and "$schema" not in out
    assert len(out.splitlines()) < 20, out


def test_the_dry_run_checks_the_tables(tmp_path, heliconius):
    """A table without its ssp_indicator column stops `snakemake -n` with the file and the column
    (only `hybridwing check-table` found it before the fetch)."""
    dev = pd.read_csv(heliconius / "dev.csv", dtype=str, keep_default_na=False).head(20)
    dev.drop(columns="ssp_indicator").to_csv(tmp_path / "dev.csv", index=False)
    config = {
        "dataset": {"train_table": str(heliconius / "train.csv"), "eval_tables": {"dev": str(tmp_path / "dev.csv")}}
    }
    status, out = dry_run(tmp_path / "run", config)
    assert status != 0 and "Job stats" not in out
    assert f"table dev: {tmp_path / 'dev.csv'}: 1 problem(s)" in out and "missing column 'ssp_indicator'" in out
