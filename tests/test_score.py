"""The hybrid score formula and the challenge metric, against hand computations and an
independent implementation."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from hybridwing.hybrid_scores import hybrid_scores, threshold_at
from hybridwing.score.challenge import hybrid_metrics


@pytest.mark.parametrize(
    ("probabilities", "expected"),
    [
        ([0.5, 0.3, 0.2], 0.8),  # 1 - (0.5 - 0.3) beats p_hybrid 0.2
        ([0.4, 0.4, 0.2], 1.0),  # a tie between the top two subspecies: as unsure as it gets
        ([0.9, 0.05, 0.05], 0.15),  # confident: 1 - (0.9 - 0.05)
        ([0.1, 0.05, 0.85], 0.95),  # hybrid class highest: max(0.85, 1 - (0.1 - 0.05))
        ([0.02, 0.0, 0.98], 0.98),  # hybrid class highest and p_hybrid wins
        ([0.7, 0.3], 0.3),  # one subspecies and the hybrid class: top2 is 0, max(0.3, 1 - 0.7)
        ([0.2, 0.8], 0.8),  # two classes, hybrid highest
    ],
)
def test_hybrid_score_by_hand(probabilities, expected):
    scores = hybrid_scores(np.array([probabilities]))
    assert scores["hybrid_score"].iloc[0] == pytest.approx(expected)
    assert scores["p_hybrid"].iloc[0] == pytest.approx(probabilities[-1])
    assert scores["one_minus_max_p"].iloc[0] == pytest.approx(1 - max(probabilities[:-1]))


def test_entropy_is_normalised_and_bad_shapes_are_refused():
    scores = hybrid_scores(np.array([[0.25] * 4, [1.0, 0, 0, 0]]))
    assert scores["entropy"].tolist() == pytest.approx([1.0, 0.0])
    with pytest.raises(ValueError, match="hybrid class last"):
        hybrid_scores(np.array([[1.0]]))


def independent_challenge(scores, is_hybrid, parts):
    """The README's definition, written plainly: per group, the smallest candidate threshold with at
    least 95% of the non-hybrids at or below it; hybrids above it are found."""
    recalls, thresholds = {}, []
    for members in (("major", "minor"), ("mimic",)):
        negatives = [s for s, h, p in zip(scores, is_hybrid, parts) if p in members and not h]
        threshold = next(c for c in sorted(set(negatives)) if sum(n <= c for n in negatives) >= 0.95 * len(negatives))
        thresholds.append(threshold)
        for part in members:
            positives = [s for s, h, p in zip(scores, is_hybrid, parts) if p == part and h]
            recalls[part] = sum(s > threshold for s in positives) / len(positives)
    return thresholds, recalls, statistics.harmonic_mean(recalls.values()) if min(recalls.values()) > 0 else 0.0


@pytest.fixture()
def fixed_table():
    """40 species A non-hybrids whose 95% point falls on a tie (three at 0.7), hybrids exactly at
    the threshold (not found) and above it; 20 mimic rows."""
    rng = np.random.default_rng(3)
    rows = [
        (float(s), False, "major" if k % 2 else "minor") for k, s in enumerate(np.round(rng.uniform(0, 0.65, 37), 3))
    ]
    rows += [(0.7, False, "major"), (0.7, False, "minor"), (0.7, False, "major")]
    rows += [(0.7, True, "major"), (0.9, True, "major"), (0.71, True, "major"), (0.2, True, "major")]
    rows += [(0.7, True, "minor"), (0.95, True, "minor")]
    rows += [(float(s), False, "mimic") for s in np.round(rng.uniform(0, 0.5, 19), 3)] + [(0.8, False, "mimic")]
    rows += [(0.8, True, "mimic"), (0.85, True, "mimic"), (0.3, True, "mimic")]
    scores, is_hybrid, parts = map(list, zip(*rows))
    return scores, is_hybrid, parts


def test_challenge_metric_matches_an_independent_computation(fixed_table):
    scores, is_hybrid, parts = fixed_table
    metrics = hybrid_metrics(scores, is_hybrid, parts, bootstrap=200, seed=1)
    thresholds, recalls, challenge = independent_challenge(scores, is_hybrid, parts)
    assert metrics["threshold_species_a"] == thresholds[0] == 0.7  # the tie: 37/40 below 0.7, 40/40 at or below
    assert metrics["threshold_mimic"] == thresholds[1] < 0.8  # 19 of 20 at or below: the lone 0.8 is above
    assert metrics["major_recall"] == pytest.approx(recalls["major"]) == pytest.approx(0.5)
    assert metrics["minor_recall"] == pytest.approx(recalls["minor"]) == pytest.approx(0.5)
    assert metrics["mimic_recall"] == pytest.approx(recalls["mimic"]) == pytest.approx(2 / 3)
    assert metrics["challenge_score"] == pytest.approx(challenge)
    for name in ("challenge_score", "major_recall", "minor_recall", "mimic_recall"):
        low, high = metrics[f"{name}_ci90"]
        assert 0 <= low <= high <= 1
    assert metrics["n_images"] == len(scores) and metrics["n_hybrids"] == 9


def test_thresholds_and_missing_parts():
    assert threshold_at([0.1, 0.2, 0.3, 0.4] * 5) == 0.4  # 95% of 20 is 19: the 19th smallest
    assert threshold_at(list(range(100))) == 94
    assert threshold_at([0.5]) == 0.5
    metrics = hybrid_metrics(
        [0.1, 0.2, 0.9, 0.3], [False, False, True, False], ["major", "minor", "major", "major"], bootstrap=50
    )
    assert metrics["minor_recall"] is None and metrics["mimic_recall"] is None
    assert metrics["parts_scored"] == ["major"] and metrics["challenge_score"] == metrics["major_recall"] == 1.0
    with pytest.raises(ValueError, match="unknown part"):
        hybrid_metrics([0.1], [False], ["other"])


def test_bootstrap_is_reproducible_and_brackets_the_estimate(fixed_table):
    first = hybrid_metrics(*fixed_table, bootstrap=300, seed=7)
    again = hybrid_metrics(*fixed_table, bootstrap=300, seed=7)
    assert first["major_recall_ci90"] == again["major_recall_ci90"]
    low, high = first["major_recall_ci90"]
    assert low <= first["major_recall"] <= high and high - low > 0
    assert not math.isnan(first["prc_auc"]) and 0 <= first["roc_auc"] <= 1


def test_the_probability_filter_trusts_confident_calls_and_flags_shared_mass():
    """1 - top1 above a top-1 of 0.75, else top1 + top2 (the two parents' share)."""
    probabilities = np.array([[0.9, 0.05, 0.05, 0.0], [0.45, 0.4, 0.1, 0.05], [0.3, 0.3, 0.3, 0.1]])
    scores = hybrid_scores(probabilities)["probability_filter"].to_numpy()
    assert np.allclose(scores, [0.1, 0.85, 0.6])


def test_every_score_is_named_once_in_the_registry_and_the_schema():
    """Choosing another score is one config key. The schema's ``score.method`` offers the
    registry's names, and no module but the registry spells the default score's name."""
    import yaml
    from conftest import REPO

    from hybridwing.hybrid_scores import DEFAULT_SCORE, SCORE_NAMES, check_score

    method = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())["properties"]["score"][
        "properties"
    ]["method"]
    assert method["enum"] == list(SCORE_NAMES) and method["default"] == DEFAULT_SCORE
    spelled = [
        str(path.relative_to(REPO))
        for folder in ("src", "workflow")
        for path in (REPO / folder).rglob("*")
        if path.suffix in {".py", ".smk"}
        and path.name != "hybrid_scores.py"
        and f'"{DEFAULT_SCORE}"' in path.read_text()
    ]
    assert spelled == []
    assert list(hybrid_scores(np.array([[0.5, 0.3, 0.2]])).columns) == list(SCORE_NAMES)
    with pytest.raises(ValueError, match="unknown hybrid score 'margin': one of hybrid_score, one_minus_max_p"):
        check_score("margin")


def test_specimens_gather_their_photographs():
    """Two photographs of one specimen are one row: both counted, the mean and largest score, called
    hybrid when either is, the parents of the higher-scoring one; the table's columns kept."""
    from hybridwing.score.specimens import specimen_table

    predictions = pd.DataFrame(
        {
            "image_id": ["a_dorsal", "a_ventral", "b"],
            "camid": ["A", "A", "B"],
            "truth": ["hybrid", "hybrid", "cyrbia"],
            "subspecies": ["lativitta", "cyrbia", "cyrbia"],
            "top2": ["notabilis", "lativitta", "venus"],
            "call": ["non-hybrid", "hybrid", "non-hybrid"],
            "hybrid_score": [0.4, 0.8, 0.1],
            "table_drawer": ["D1", "D1", "D7"],
        }
    )
    specimens = specimen_table(predictions, "hybrid_score").set_index("camid")
    assert specimens.loc["A", "photographs"] == 2 and specimens.loc["A", "image_ids"] == "a_ventral a_dorsal"
    assert specimens.loc["A", "mean_hybrid_score"] == pytest.approx(0.6)
    assert specimens.loc["A", "max_hybrid_score"] == 0.8
    assert specimens.loc["A", "call"] == "hybrid" and specimens.loc["A", "likeliest_parents"] == "cyrbia x lativitta"
    assert specimens.loc["B", "call"] == "non-hybrid" and specimens.loc["A", "table_drawer"] == "D1"
    assert list(specimens.index) == ["A", "B"], "highest score first"
