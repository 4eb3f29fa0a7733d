"""The shared tiny synthetic run (conftest.tiny_run): its outputs and its report in a browser. Runs
on copies of it are in test_active_learning.py, test_held_out_model.py, test_reruns.py and (on
SLURM) test_cluster.py; runs of their own are in test_small_runs.py."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from apt import install_with_apt
from conftest import ENSEMBLE, TINY_CONFIG, planned_jobs, run_snakemake
from playwright.sync_api import sync_playwright

from hybridwing.cli import main as cli_main
from hybridwing.hybrid_scores import SCORE_NAMES

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
        card = (report.parents[1] / "results/finetune/MODEL_CARD.md").read_text()
        classes = next(line for line in card.splitlines() if line.startswith("- Classes:"))[2:].replace("`", "")
        assert "The model, from its card" in landing and classes in landing, "the card's headline"
        summary = pd.read_csv(report.parents[1] / "results/score/summary.csv", keep_default_na=False)
        dev = summary[(summary["table"] == "dev") & summary["chosen"]].iloc[0]
        assert f"dev: {dev['challenge_score']} ({dev['challenge_score_ci90']})" in landing, "this run's dev score"
        assert "three fine-tune seeds each" in landing, "which table the settings were chosen on, and how"
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


def test_the_model_card_says_what_the_files_say(tiny_run, capsys):
    """MODEL_CARD.md in the model folder: every number equals the metrics file, the per-class table
    and the balanced set it summarises; the synthetic mimic species, never trained on, is named as
    such; `hybridwing describe` prints the card."""
    from hybridwing.model.card import MODEL_CARD

    model = tiny_run / "results/finetune/model"
    card = (model / MODEL_CARD).read_text()
    metrics = json.loads((tiny_run / "results/finetune/metrics.json").read_text())
    inference = json.loads((model / "inference.json").read_text())
    assert f"Macro-F1 {metrics['val_macro_f1']:.3f}, accuracy {metrics['val_accuracy']:.3f}" in card
    assert f"on {metrics['n_val']} photographs" in card and f"{metrics['n_train']} images" in card
    assert f"above {inference['threshold']:.4f}; {metrics['val_non_hybrids_above_threshold']:.1%}" in card
    for row in pd.read_csv(tiny_run / "results/finetune/per_class.csv").itertuples():
        assert f"| {row._1} | {round(row.precision, 3)} | {round(row.recall, 3)} | {round(row.f1, 3)} |" in card
    manifest = pd.read_csv(tiny_run / "results/balance/manifest.csv", keep_default_na=False)
    real = manifest[manifest["recipe"] == "original"].groupby("class").size()
    total = manifest.groupby("class").size()
    for name in total.index:
        assert re.search(rf"\| {name} \| {real.get(name, 0)} \| \d+ \| \d+ \| {total[name]} \|", card), name
    assert "randomly initialised" in card and "`hybridwing-vit-tiny`" in card
    metadata = pd.read_csv(tiny_run / "results/data/metadata.csv", keep_default_na=False)
    classes = json.loads((model / "classes.json").read_text())
    unseen = sorted(set(metadata["species"]) - set(metadata.loc[metadata["subspecies"].isin(classes), "species"]))
    assert unseen and all(f"- *{species}* (a species never trained)" in card for species in unseen)
    ranks = json.loads((model / "ranks.json").read_text())
    assert f"at least {ranks['subspecies_threshold']:.3f}" in card and f"above {ranks['novelty_threshold']:.3f}" in card
    assert cli_main(["describe", str(model)]) == 0 and capsys.readouterr().out == card
    assert cli_main(["describe", str(tiny_run / "results")]) == 1


def test_a_tables_own_columns_reach_the_predictions_and_specimens(tiny_run):
    """The synthetic dev table's own column X (not one the format reads) reaches predictions.csv as
    table_X on every photograph's row; specimens.csv has one row per CAMID with its photographs."""
    table = pd.read_csv(tiny_run / "resources/synthetic/dev.csv", dtype=str, keep_default_na=False)
    predictions = pd.read_csv(tiny_run / "results/score/dev/predictions.csv", dtype=str, keep_default_na=False)
    expected = dict(zip(table["filename"], table["X"]))
    assert [expected[name] for name in predictions["filename"]] == predictions["table_X"].tolist()
    specimens = pd.read_csv(tiny_run / "results/score/dev/specimens.csv", keep_default_na=False)
    assert sorted(specimens["camid"]) == sorted(predictions["camid"].unique())
    assert specimens["photographs"].sum() == len(predictions) and "table_X" in specimens


def test_every_prediction_has_a_rank_and_a_novelty(tiny_run, capsys):
    """Every scored row has a rank and a novelty; the thresholds are in the model folder; `predict`
    prints both columns. (That novelty tells a taxon never trained from the trained ones is
    tests/test_ranks.py's, on a model that has learnt its classes; the tiny run's has not.)"""
    from hybridwing.model.ranks import RANKS

    dev = pd.read_csv(tiny_run / "results/score/dev/predictions.csv", keep_default_na=False)
    assert set(dev["rank"]) <= {"subspecies", "species", "unknown"} and (dev["novelty"] > 0).all()
    stored = json.loads((tiny_run / "results/finetune/model" / RANKS).read_text())
    assert stored["false_alarm"] == 0.05 and stored["novelty_threshold"] > 0
    assert (tiny_run / "results/score/dev/novelty.png").stat().st_size > 10_000, "the novelty histogram"
    photograph = str(tiny_run / "resources/synthetic/images" / dev["filename"].iloc[0])
    assert cli_main(["predict", str(tiny_run / "results/finetune/model"), photograph]) == 0
    header = capsys.readouterr().out.splitlines()[0].split(",")
    assert header[-2:] == ["rank", "novelty"]


def test_the_highest_hybrid_calls_of_each_table_are_explained(tiny_run):
    """Each scored table draws the explanations of its photographs called hybrid, highest score
    first, at most score.explain of them, and their contact sheet for the report."""
    for table in ("dev", "val"):
        scored = tiny_run / "results/score" / table
        predictions = pd.read_csv(scored / "predictions.csv", keep_default_na=False)
        called = predictions[predictions["call"] == "hybrid"].sort_values("hybrid_score", ascending=False)
        drawn = sorted(path.stem for path in (scored / "explanations").glob("*.png"))
        assert drawn == sorted(called["image_id"].head(8)), table
        assert (scored / "explanations.png").stat().st_size > 5_000, "the contact sheet"
