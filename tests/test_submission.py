"""The challenge export, run by the HDR challenge's own ingestion and scoring programs (read from
../shared/challenge, as an outside client) in a process that can import only what the challenge's
container has."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hybridwing.cli import main
from hybridwing.score.export import WHITELIST
from hybridwing.score.predictor import Predictor

CHALLENGE = Path(__file__).resolve().parents[2] / "shared" / "challenge"
INGESTION = CHALLENGE / "ingestion_program"
CONTAINER = Path(__file__).resolve().parent / "challenge_container.py"
#: The challenge score and its parts, as the scoring program names them and as metrics.json does.
OFFICIAL = {
    "challenge_score": "challenge_score",
    "A_score_major_recall": "major_recall",
    "A_score_minor_recall": "minor_recall",
    "mimic_recall": "mimic_recall",
}


@pytest.fixture(scope="module")
def submission(tiny_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "submission"
    assert main(["export-submission", str(tiny_run / "results/finetune/model"), str(out)]) == 0
    return out


def test_the_export_asks_only_for_whitelisted_packages_as_the_whitelist_spells_them(submission):
    whitelist = (INGESTION / "whitelist.txt").read_text().split()
    assert list(WHITELIST) == whitelist, "the export's copy of the whitelist is the challenge's"
    names = [line.split("==")[0] for line in (submission / "requirements.txt").read_text().splitlines()]
    assert names and set(names) <= set(whitelist), names
    assert "Pillow" in names and "opencv-python-headless" in names
    assert not list(submission.rglob("*.safetensors")), "weights travel as torch.export programs"


def test_the_official_programs_run_the_export_and_score_as_the_pipeline_does(
    tiny_run, submission, heliconius, tmp_path
):
    """Ingestion on the tiny run's dev photographs and three real ones; the official scorer on its
    predictions equals the pipeline's metrics.json, and every score equals the pipeline's own."""
    metadata = pd.read_csv(tiny_run / "results/data/metadata.csv", keep_default_na=False)
    dev = metadata[metadata["source"] == "dev"]
    photographs = tmp_path / "input"
    photographs.mkdir()
    for row in dev.itertuples():
        (photographs / row.filename).symlink_to((tiny_run / row.path).resolve())
    real = sorted((heliconius / "images").glob("*.jpg"))[:3]
    for path in real:
        (photographs / path.name).symlink_to(path)
    output = tmp_path / "output"
    output.mkdir()

    run = subprocess.run(
        [
            sys.executable,
            str(CONTAINER),
            str(INGESTION / "whitelist.txt"),
            str(submission),
            str(INGESTION / "ingestion.py"),
        ]
        + [str(photographs), str(output), str(INGESTION), str(submission)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # outside the checkout
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    predicted = pd.read_csv(output / "predictions.txt", header=None, names=["filename", "score"])
    assert sorted(predicted["filename"]) == sorted([*dev["filename"], *(path.name for path in real)])
    scores = dict(zip(predicted["filename"], predicted["score"]))

    pipeline = pd.read_csv(tiny_run / "results/score/dev/predictions.csv", keep_default_na=False)
    method = json.loads((tiny_run / "results/score/dev/metrics.json").read_text())["score"]
    assert np.allclose([scores[name] for name in pipeline["filename"]], pipeline[method], atol=1e-4)
    predictor = Predictor.load(tiny_run / "results/finetune/model")
    expected = predictor.predict_images([Image.open(path).convert("RGB") for path in real], [""] * len(real))
    assert np.allclose([scores[path.name] for path in real], expected[predictor.inference.score], atol=1e-4)

    scoring = tmp_path / "scoring"
    (scoring / "res").mkdir(parents=True)
    (scoring / "ref").mkdir()
    (scoring / "res" / "predictions.txt").write_text((output / "predictions.txt").read_text())
    reference = pd.DataFrame(
        {
            "filename": pipeline["filename"],
            "hybrid_stat": pipeline["is_hybrid"].astype(str).eq("True").astype(int),
            "ssp_indicator": pipeline["part"],
        }
    )
    reference.to_csv(scoring / "ref" / "ref.csv", index=False)
    (tmp_path / "out").mkdir()  # the scoring program makes only its output folder's parent
    scored = subprocess.run(
        [sys.executable, str(CHALLENGE / "scoring_program" / "score_combined.py"), str(scoring), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert scored.returncode == 0, scored.stderr[-3000:]
    official = json.loads((tmp_path / "out" / "scores.json").read_text())
    ours = json.loads((tiny_run / "results/score/dev/metrics.json").read_text())
    assert {name: official[name] for name in OFFICIAL} == pytest.approx(
        {name: ours[key] for name, key in OFFICIAL.items()}, abs=1e-4
    )
