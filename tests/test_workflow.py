"""The shared tiny synthetic run (conftest.tiny_run): its outputs, an active-learning round, the
held-out model, and its report in a browser. Reruns of it are in test_reruns.py and the SLURM run
in test_cluster.py; runs of their own are in test_small_runs.py."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from apt import install_with_apt
from conftest import CORES, TINY_CONFIG, job_counts, run_snakemake, write_config
from PIL import Image
from playwright.sync_api import sync_playwright

from hybridwing.cli import main as cli_main
from hybridwing.scores import SCORE_NAMES


def planned_jobs(workdir: Path, config: dict) -> dict[str, int]:
    """Jobs a dry run with `config` would run, by rule (the config file is restored afterwards)."""
    result = run_snakemake(workdir, "-n", "--configfile", str(write_config(workdir, config, "planned.yaml")))
    assert result.returncode == 0, result.stdout[-3000:]
    return job_counts(result.stdout)


DESIGN_METRICS = {
    "challenge_score",
    "major_recall",
    "minor_recall",
    "mimic_recall",
    "prc_auc",
    "roc_auc",
    "subspecies_macro_f1",
    "n_images",
}


def test_synthetic_default_runs_offline(tiny_run, report, tmp_path, capsys):
    """The whole DAG on a tiny synthetic collection: data, teacher, U-Net, masks, wings, QC,
    balancing, fine-tuning, scoring, and the report (checked on a copy of the shared run)."""
    shutil.copytree(tiny_run, tmp_path, dirs_exist_ok=True, symlinks=True)
    config = TINY_CONFIG
    splits = pd.read_csv(tmp_path / "results/data/splits.csv")
    assert set(splits["source"]) == {"train", "dev"}
    assert len(splits) == len(pd.read_csv(tmp_path / "resources/synthetic/train.csv")) + 20
    assert (tmp_path / "results/synthetic/sheet.png").is_file()
    teacher = pd.read_csv(tmp_path / "results/segment/teacher/index.csv")
    assert set(teacher["split"]) == {"train", "val", "test"}
    qc = pd.read_csv(tmp_path / "results/segment/qc.csv", keep_default_na=False)
    wings = pd.read_csv(tmp_path / "results/segment/wings.csv", keep_default_na=False)
    assert len(qc) == len(splits) == len(wings)
    segmentation = json.loads((tmp_path / "results/segment/metrics.json").read_text())
    assert segmentation["all"]["student"]["n_masks"] == len(splits) and segmentation["all"]["teacher"][
        "n_masks"
    ] == len(teacher)
    assert segmentation["all"]["student"]["n_pattern_maps"] == 0, "no pattern maps configured"
    assert all((tmp_path / path).is_file() for path in wings["path"])
    metrics = json.loads((tmp_path / "results/segment/unet/metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and 0 <= metrics["teacher_agreement_test"]["iou"] <= 1
    assert (tmp_path / "results/segment/overlay.png").is_file()
    manifest = pd.read_csv(tmp_path / "results/balance/manifest.csv")
    assert (manifest.groupby("class").size() >= 12).all() and manifest["class"].iloc[-1] == "hybrid"
    train_ids = set(splits.loc[splits["split"] == "train", "image_id"])
    assert set(manifest["source_image"]) <= train_ids, "augmented images come from the TRAIN split only"
    held_out = set(splits.loc[splits["split"] != "train", "image_id"])
    assert not any(Path(path).name.split("_aug")[0].split(".")[0] in held_out for path in manifest["path"])
    assert all((tmp_path / path).is_file() for path in manifest["path"])
    finetuned = json.loads((tmp_path / "results/finetune/metrics.json").read_text())
    assert finetuned["pretrained_backbone"] is False and finetuned["epochs_run"] == 1
    model_dir = tmp_path / "results/finetune/model"
    assert json.loads((model_dir / "classes.json").read_text())[-1] == "hybrid"
    inference = json.loads((model_dir / "inference.json").read_text())
    assert inference["threshold"] == finetuned["call_threshold"] is not None, (
        "the call threshold is stored with the model"
    )
    assert (model_dir / "weights.safetensors").is_file() and (model_dir / "preprocess.json").is_file()
    assert (model_dir / "segmenter.pt").is_file() and (model_dir / "mask.json").is_file()
    for subset in ("val", "test", "dev"):
        scored = json.loads((tmp_path / f"results/score/{subset}/metrics.json").read_text())
        assert set(scored) >= DESIGN_METRICS, subset
        predictions = pd.read_csv(tmp_path / f"results/score/{subset}/predictions.csv")
        assert len(predictions) == scored["n_images"] == (splits["split"] == subset).sum()
        lines = (tmp_path / f"results/score/{subset}/submission.txt").read_text().splitlines()
        assert [line.split(",")[0] for line in lines] == predictions["filename"].tolist()
    dev = pd.read_csv(tmp_path / "results/score/dev/predictions.csv", keep_default_na=False)
    assert set(dev["part"]) == {"major", "minor", "mimic"} and dev["is_hybrid"].sum() == 8
    metadata = pd.read_csv(tmp_path / "results/data/metadata.csv", keep_default_na=False).set_index("image_id")
    val_ids = splits.loc[splits["split"] == "val", "image_id"]
    val_species = set(metadata.loc[val_ids].query("not is_hybrid")["species"])
    # the tiny validation split holds non-hybrids of one species: one threshold (per species: test_predict.py)
    assert val_species == {"erato_like"} and inference["species_thresholds"] == {}
    classes = json.loads((model_dir / "classes.json").read_text())[:-1]
    species_of = metadata.query("not is_hybrid").drop_duplicates("subspecies").set_index("subspecies")["species"]
    assert inference["species"] == {name: species_of[name] for name in classes}, "each class's species"
    per_row = [
        inference["species_thresholds"].get(inference["species"][name], inference["threshold"])
        for name in dev["subspecies"]
    ]
    assert (dev["call"] == np.where(dev["hybrid_score"] > per_row, "hybrid", "non-hybrid")).all()
    dev_metrics = json.loads((tmp_path / "results/score/dev/metrics.json").read_text())
    assert dev_metrics["n_hybrids_with_parents"] == 8 and 0 <= dev_metrics["parent_pair_accuracy"] <= 1
    summary = pd.read_csv(tmp_path / "results/score/summary.csv")
    assert set(summary["table"]) == {"val", "test", "dev"} and summary["score"].nunique() == len(SCORE_NAMES)
    assert summary.loc[summary["table"] == "dev", "n_training_duplicates"].eq(0).all(), (
        "the report counts leaks per evaluation table"
    )
    assert "near-duplicates of a training photograph" in (tmp_path / "results/score/summary.html").read_text()
    assert cli_main(["scores", str(tmp_path / "results/score/summary.csv")]) == 0
    printed = capsys.readouterr().out
    assert summary["chosen"].sum() == 3 and set(summary.loc[summary["chosen"], "score"]) == {"hybrid_score"}
    assert "dev" in printed and printed.count("hybrid_score") == 3, "only the score.method rows"
    summary.drop(columns="chosen").to_csv(tmp_path / "before_score_method.csv", index=False)
    assert cli_main(["scores", str(tmp_path / "before_score_method.csv")]) == 0
    assert capsys.readouterr().out == printed, "a summary written before score.method prints the same"
    for table in ("train", "val", "test", "dev"):
        embedded = pd.read_parquet(tmp_path / f"results/embed/{table}/embeddings.parquet")
        assert len(embedded) == (splits["split"] == table).sum() and "e0" in embedded
        knn = json.loads((tmp_path / f"results/embed/{table}/metrics.json").read_text())
        assert knn["n_images"] == len(embedded) and {"knn1_cosine_subspecies", "knn5_euclidean_species"} <= set(knn)
        triage = pd.read_csv(tmp_path / f"results/review/{table}/triage.csv")
        assert triage["image_id"].tolist() == embedded["image_id"].tolist() and set(triage["band"]) <= set("ABCD")
        assert (tmp_path / f"results/review/{table}/bands.png").is_file()
    zero_shot = pd.read_csv(tmp_path / "results/review/dev/zero_shot.csv")
    assert not zero_shot["junk"].any() and zero_shot["reason"].str.contains("no pretrained text tower").all()
    issues = pd.read_csv(tmp_path / "results/review/label_issues.csv")
    assert len(issues) == (splits["split"] == "train").sum() and {"suggested", "label_quality", "train_loss"} <= set(
        issues
    )
    assert pd.read_csv(tmp_path / "results/review/rounds.csv")["round"].unique().tolist() == ["round-0"]

    assert planned_jobs(tmp_path, config) == {}, "touching nothing reruns nothing (not even in a copied folder)"
    changed_lr = config | {"finetune": config["finetune"] | {"backbone_lr": 1e-4}}
    assert set(planned_jobs(tmp_path, changed_lr)) == {
        "finetune",
        "score",
        "score_summary",
        "embed",
        "triage",
        "label_issues",
        "rounds",
        "all",
    }
    black = config | {"mask": {"background": "black"}}
    assert set(planned_jobs(tmp_path, black)) == {
        "apply_masks",
        "wings",
        "augment",
        "balance",
        "finetune",
        "score",
        "score_summary",
        "embed",
        "triage",
        "label_issues",
        "rounds",
        "all",
    }
    assert set(planned_jobs(tmp_path, config | {"review": {"triage": {"confident": 0.5}}})) == {
        "triage",
        "rounds",
        "all",
    }

    html = report.read_text()
    for caption in (
        "wing mask",
        "confusion",
        "precision-recall",
        "bootstrap",
        "triage band",
        "label quality",
        "active-learning round",
    ):
        assert caption in html, caption

    ensemble = config | {"finetune": config["finetune"] | ENSEMBLE}
    assert set(planned_jobs(tmp_path, ensemble)) == {
        "finetune",
        "score",
        "score_summary",
        "embed",
        "triage",
        "label_issues",
        "rounds",
        "all",
    }


ENSEMBLE = {"ensemble": 2, "flip_average": True, "temperature": "fit"}


def test_an_active_learning_round_reruns_what_the_labels_reach_and_is_recorded(tiny_run, tmp_path):
    """Round 2: dev photographs from `hybridwing review` (labels kept, the mimic species' rows left
    out as a curator would) join the training table, two training photographs are excluded, and the
    round trains an ensemble of two; everything after the metadata reruns, nothing before it, the
    old checkpoint is not resumed, and rounds.csv holds both rounds."""
    shutil.copytree(tiny_run, tmp_path, dirs_exist_ok=True, symlinks=True)
    batch_path = tmp_path / "round_2_labels.csv"
    taxa = tmp_path / "resources/synthetic/taxa.csv"
    assert (
        cli_main(
            [
                "review",
                "dev",
                "--results",
                str(tmp_path / "results"),
                "--taxa",
                str(taxa),
                "--count",
                "8",
                "--out",
                str(batch_path),
            ]
        )
        == 0
    )
    batch = pd.read_csv(batch_path, dtype=str, keep_default_na=False)
    assert len(batch) == 8 and set(batch["band"]) <= {"B", "C"}
    labelled = batch[(batch["subspecies"] != "") | (batch["parent_subspecies_2"] != "")]
    labelled.to_csv(batch_path, index=False)
    splits = pd.read_csv(tmp_path / "results/data/splits.csv")
    excluded = splits.loc[splits["split"] == "train", "image_id"].head(2).tolist()
    (tmp_path / "exclude.csv").write_text(
        "image_id,reason\n" + "".join(f"{image_id},blurred\n" for image_id in excluded)
    )

    round_2 = TINY_CONFIG | {
        "dataset": TINY_CONFIG["dataset"] | {"extra_labels": str(batch_path), "exclude": str(tmp_path / "exclude.csv")},
        "finetune": TINY_CONFIG["finetune"] | ENSEMBLE,
    }
    planned = planned_jobs(tmp_path, round_2)
    assert "synthesize" not in planned and planned["fetch"] == 1, "only the reviewed labels are fetched"
    assert {"metadata", "split", "train_unet", "finetune", "score", "embed", "triage", "label_issues", "rounds"} <= set(
        planned
    )
    result = run_snakemake(tmp_path, *CORES, "--configfile", str(write_config(tmp_path, round_2)))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "reviewed labels: %d images" % len(labelled) in (tmp_path / "logs/metadata.log").read_text()
    metadata = pd.read_csv(tmp_path / "results/data/metadata.csv")
    assert not set(excluded) & set(metadata["image_id"])
    moved = metadata[metadata["image_id"].isin(labelled["filename"].str.removesuffix(".jpg"))]
    assert len(moved) == len(labelled) and set(moved["source"]) == {"train"}
    dev = json.loads((tmp_path / "results/score/dev/metrics.json").read_text())
    assert dev["n_images"] == 20 - len(labelled)
    log = (tmp_path / "logs/finetune.log").read_text()
    assert (
        "ignoring resources/checkpoints/finetune.pt: it was written for other settings, classes, image contents or code"
        in log
    )
    model_dir = tmp_path / "results/finetune/model"
    inference = json.loads((model_dir / "inference.json").read_text())
    assert (
        inference["weights"] == ["weights.safetensors", "weights_1.safetensors"] and inference["flip_average"] is True
    )
    finetuned = json.loads((tmp_path / "results/finetune/metrics.json").read_text())
    assert finetuned["ensemble"] == 2 and finetuned["temperature"] == inference["temperature"] > 0
    assert set(pd.read_csv(tmp_path / "results/finetune/history.csv")["member"]) == {0, 1}
    members = np.load(tmp_path / "results/embed/dev/member_probabilities.npy")
    triage = pd.read_csv(tmp_path / "results/review/dev/triage.csv")
    assert members.shape[0] == 2 and (triage["variation_ratio"] > 0).tolist() == list(
        members.argmax(-1).min(0) != members.argmax(-1).max(0)
    )
    rounds = pd.read_csv(tmp_path / "results/review/rounds.csv")
    assert rounds["round"].nunique() == 2 and rounds.groupby("round")[
        "extra_labels"
    ].first().sort_values().tolist() == [0, len(labelled)]
    assert planned_jobs(tmp_path, round_2) == {}, "the round is complete"


def test_the_held_out_model_is_scored_on_crosses_it_never_saw(tiny_run, tmp_path):
    """Issue 22: with finetune.holdout_crosses, a second model trains without the real cross and the
    held-out pairs (none of their photographs or composites), on a set balanced again from 2 TRAIN
    photographs of each real parent (thin_parents), and unseen_cross scores it on them."""
    shutil.copytree(tiny_run, tmp_path, dirs_exist_ok=True, symlinks=True)
    holdout = {"pairs": 2, "per_pair": 3, "thin_parents": 2}
    held = TINY_CONFIG | {"finetune": TINY_CONFIG["finetune"] | {"holdout_crosses": holdout}}
    config = write_config(tmp_path, held)
    shards = len(list((tmp_path / "results/balance/shards").iterdir()))
    assert planned_jobs(tmp_path, held) == {
        "holdout_pairs": 1,
        "augment_holdout": shards,
        "balance_holdout": 1,
        "finetune_holdout": 1,
        "unseen_cross": 1,
        "all": 1,
    }, "the main model is not retrained"
    result = run_snakemake(tmp_path, *CORES, "--configfile", str(config))
    assert result.returncode == 0, result.stdout[-3000:]
    pairs = pd.read_csv(tmp_path / "results/score/unseen_cross/pairs.csv")
    assert pairs["kind"].tolist()[0] == "real" and (pairs["kind"] == "composed").sum() >= 1
    left_out = pd.read_csv(tmp_path / "results/score/unseen_cross/thinned_parents.csv")["image_id"]
    manifest = pd.read_csv(tmp_path / "results/balance/holdout/manifest.csv", keep_default_na=False)
    originals = manifest[manifest["recipe"] == "original"]
    real = pairs[pairs["kind"] == "real"].iloc[0]
    assert len(left_out) and originals["class"].value_counts()[[real["parent_1"], real["parent_2"]]].max() == 2
    stems = manifest["path"].map(lambda path: Path(path).stem)
    partners = stems[stems.str.contains("_x_")].str.split("_x_").str[1].str.rsplit("_", n=1).str[0]
    assert len(partners) and not manifest["source_image"].isin(left_out).any(), "no copy of a left-out photograph"
    assert not partners.isin(left_out).any(), "no composite of one either"
    assert (manifest["class"].value_counts().drop("hybrid") >= 12).all(), "every class balanced again"
    log = (tmp_path / "logs/finetune_holdout.log").read_text()
    assert "held-out model:" in log and "every hybrid of" in log
    metrics = json.loads((tmp_path / "results/score/unseen_cross/metrics.json").read_text())
    crosses = metrics["crosses"]
    assert {values["kind"] for values in crosses.values()} == {"real", "composed"}
    assert all(0 <= values["roc_auc"] <= 1 for values in crosses.values()) and metrics["n_non_hybrids"] > 0
    assert set(metrics["alternatives"]) == {"one_minus_max_p", "p_hybrid", "entropy", "probability_filter"}
    with Image.open(tmp_path / "results/score/unseen_cross/recall.png") as figure:
        assert figure.width > 400, "the report's figure of the held-out crosses"
    predictions = pd.read_csv(tmp_path / "results/score/unseen_cross/predictions.csv", keep_default_na=False)
    splits = pd.read_csv(tmp_path / "results/data/splits.csv").set_index("image_id")["split"]
    composed = predictions[predictions["kind"] == "composed"]
    sources = pd.concat([composed["image_id"].str.split("_x_").str[0], composed["image_id"].str.split("_x_").str[1]])
    assert len(composed) and set(splits[sources]) <= {"val", "test"}, (
        "validation composites never use a TRAIN photograph"
    )


MENU_ENTRY = "nav a.transition-all"  # the sidebar's categories, subcategories and menu items
MENU_ITEMS = {"Workflow", "Statistics", "About"}


def chromium_executable() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-headless-shell")


@pytest.fixture(scope="module")
def chromium() -> str:
    if chromium_executable() is None:
        reason = install_with_apt("chromium")
        if reason:
            pytest.skip(f"no Chromium here and {reason}")
    return chromium_executable()


@pytest.fixture(scope="module")
def report(tiny_run, tmp_path_factory) -> Path:
    """The tiny run's Snakemake report, made on a copy of it (the other worker may be copying it)."""
    workdir = tmp_path_factory.mktemp("report")
    shutil.copytree(tiny_run, workdir, dirs_exist_ok=True, symlinks=True)
    path = workdir / "results/report.html"
    result = run_snakemake(workdir, "--report", str(path), "--configfile", str(workdir / "config.yaml"))
    assert result.returncode == 0, result.stdout[-3000:]
    return path


def menu_entries(page) -> list[str]:
    return [text.strip() for text in page.locator(MENU_ENTRY).all_inner_texts() if text.strip()]


def broken_images(frame) -> list[str]:
    """Images of a page or frame that did not load."""
    return frame.evaluate(
        "() => Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src.slice(0, "
        "80))"
    )


def open_result(page, row) -> list[str]:
    """Show one result (its eye icon) and return what is wrong with it: broken images, or nothing shown."""
    row.locator("a").first.click()
    page.wait_for_timeout(150)
    problems = broken_images(page)
    frames = [frame for frame in page.frames if frame != page.main_frame]
    for frame in frames:
        frame.wait_for_load_state()
        problems += broken_images(frame)
        if not frame.evaluate("() => document.body && document.body.innerText.trim().length > 0"):
            problems.append(f"empty frame {frame.url[:60]}")
    if not frames and page.locator("main img, img[src^='data:image/png']").count() == 0:
        problems.append("neither an image nor a page is shown")
    return problems


def test_every_report_section_shows_its_results(chromium, report):
    problems: list[str] = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on(
            "console",
            lambda message: (
                problems.append(f"console {message.type}: {message.text}") if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.goto(report.as_uri())
        page.wait_for_load_state("networkidle")
        landing = page.inner_text("body")
        assert "hybridwing-vit-tiny" in landing and "randomly initialised" in landing, (
            "the landing page names the backbone and its weights"
        )
        categories = [entry for entry in menu_entries(page) if entry not in MENU_ITEMS]
        assert [c.split(".")[0] for c in categories] == ["1", "2", "3", "4", "5"], categories
        opened = 0
        for category in categories:
            page.goto(report.as_uri())
            page.get_by_text(category, exact=True).click()
            subcategories = (
                [entry for entry in menu_entries(page) if entry not in MENU_ITEMS]
                if page.locator("tbody tr").count() == 0
                else [""]
            )
            assert subcategories, f"{category}: an empty section"
            for subcategory in subcategories:
                if subcategory:
                    page.goto(report.as_uri())
                    page.get_by_text(category, exact=True).click()
                    page.locator(MENU_ENTRY, has_text=re.compile(f"^{re.escape(subcategory)}$")).first.click()
                rows = page.locator("tbody tr")
                assert rows.count() > 0, f"{category} / {subcategory}: an empty section"
                for index in range(rows.count()):
                    found = open_result(page, rows.nth(index))
                    problems += [f"{category} / {subcategory} / row {index + 1}: {problem}" for problem in found]
                    opened += 1
        browser.close()
    assert opened >= 20, f"only {opened} results opened"
    assert not problems, "\n".join(problems)
