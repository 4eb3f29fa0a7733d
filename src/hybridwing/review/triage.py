"""Ensemble uncertainty per photograph and the triage bands a curator works through:
A confident and the models agree, B confident but the models disagree, C uncertain, D likely not a
clean example (flagged as junk, or a known label the models all but rule out)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

BANDS = {
    "A": "confident, models agree",
    "B": "confident, models disagree",
    "C": "uncertain",
    "D": "likely not a clean example",
}


@dataclass(frozen=True)
class TriageSettings:
    """`confident`: the least top probability of a confident prediction; `disagreement`: the least
    mutual information (nats) that counts as disagreement; `label_ruled_out`: a known label with
    less probability than this marks the image as unclean."""

    confident: float = 0.8
    disagreement: float = 0.05
    label_ruled_out: float = 0.02

    @classmethod
    def from_config(cls, block: dict[str, Any]) -> TriageSettings:
        return cls(**{key: float(block[key]) for key in ("confident", "disagreement", "label_ruled_out")})


def _entropy(probabilities: np.ndarray) -> np.ndarray:
    return -(probabilities * np.log(np.clip(probabilities, 1e-12, None))).sum(-1)


def uncertainty(member_probabilities: np.ndarray) -> pd.DataFrame:
    """From (members, images, classes): the top class and its mean probability, the entropy of the
    mean (nats), the mutual information between prediction and member (its disagreement part) and
    the variation ratio (share of members whose top class is not the modal one)."""
    mean = member_probabilities.mean(0)
    entropy = _entropy(mean)
    votes = member_probabilities.argmax(-1)  # (members, images)
    n_classes = member_probabilities.shape[-1]
    counts = np.stack([(votes == c).sum(0) for c in range(n_classes)], axis=-1)
    return pd.DataFrame(
        {
            "top_class": mean.argmax(-1),
            "p_top": mean.max(-1),
            "entropy": entropy,
            "mutual_information": np.clip(entropy - _entropy(member_probabilities).mean(0), 0, None),
            "variation_ratio": 1.0 - counts.max(-1) / member_probabilities.shape[0],
        }
    )


def label_support(mean: np.ndarray, labels: pd.Series, classes: list[str], hybrid_score: np.ndarray) -> np.ndarray:
    """How much the model backs each row's known label (NaN where none is known): the label's
    probability, and for a hybrid (the last class) its hybrid score, the number hybrids are called
    by. A model trained towards a hybrid's parents never raises the hybrid class's own probability,
    which would put every real hybrid in band D."""
    index = labels.map({name: k for k, name in enumerate(classes)})
    hybrid = len(classes) - 1
    return np.array(
        [
            np.nan if pd.isna(k) else hybrid_score[row] if int(k) == hybrid else mean[row, int(k)]
            for row, k in enumerate(index)
        ]
    )


def assign_bands(table: pd.DataFrame, settings: TriageSettings) -> pd.Series:
    """The band of each row of a table with ``p_top``, ``mutual_information``, ``variation_ratio``,
    ``p_label`` (NaN where no label is known) and ``junk``."""
    unclean = table["junk"].astype(bool) | (table["p_label"] < settings.label_ruled_out)
    uncertain = table["p_top"] < settings.confident
    disagree = (table["mutual_information"] >= settings.disagreement) | (table["variation_ratio"] > 0)
    bands = np.where(unclean, "D", np.where(uncertain, "C", np.where(disagree, "B", "A")))
    return pd.Series(bands, index=table.index, name="band")


def next_batch(triage: pd.DataFrame, count: int) -> pd.DataFrame:
    """What a person should label next: band C by entropy, then band B by mutual information."""
    uncertain = triage[triage["band"] == "C"].sort_values("entropy", ascending=False, kind="stable")
    disputed = triage[triage["band"] == "B"].sort_values("mutual_information", ascending=False, kind="stable")
    return pd.concat([uncertain, disputed]).head(count)
