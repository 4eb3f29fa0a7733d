"""The rank at which a call is sure, and how novel a photograph is.

Every photograph gets a novelty score, its atypicality (`hybridwing.model.atypicality`): how far its
embedding lies from the TRAIN photographs of its predicted subspecies, over the validation median.
Its rank is ``unknown`` when the novelty is above what all but `FALSE_ALARM` of the validation
photographs reach (a taxon the model never saw looks like none it knows), else ``subspecies`` when
the top subspecies' probability reaches the level above which validation calls are wrong at most
`FALSE_ALARM` of the time, else ``species`` when the summed probability of that subspecies' species
reaches the same kind of level, else ``unknown``. The thresholds are set on the validation split
when the model is trained and stored in the model folder (`RANKS`, `REFERENCE`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hybridwing.model.atypicality import Atypicality, unit_rows

#: The share of validation photographs of known taxa that each threshold lets be wrong (or novel).
FALSE_ALARM = 0.05
#: The thresholds and the validation medians, in a model folder.
RANKS = "ranks.json"
#: The TRAIN photographs' embeddings and classes, in a model folder.
REFERENCE = "reference.npz"
#: A level no probability reaches.
NEVER = 1.0 + 1e-9


def sure_level(confidence: np.ndarray, right: np.ndarray, false_alarm: float = FALSE_ALARM) -> float:
    """The lowest confidence at and above which the calls are wrong at most `false_alarm` of the
    time (above 1 when no level is that sure)."""
    order = np.argsort(-confidence, kind="stable")
    wrong_share = np.cumsum(~right[order]) / np.arange(1, len(order) + 1)
    sure = np.flatnonzero(wrong_share <= false_alarm)
    return float(confidence[order][sure[-1]]) if len(sure) else NEVER


def species_probability(probabilities: np.ndarray, top: np.ndarray, species: list[str]) -> np.ndarray:
    """The summed probability of the subspecies of each row's top subspecies' species."""
    names = np.array(species)
    same = names[None, :] == names[top][:, None]  # (rows, subspecies)
    return (probabilities[:, : len(species)] * same).sum(axis=1)


@dataclass(frozen=True)
class Ranks:
    """The novelty reference and the three thresholds of a model; `species` per non-hybrid class."""

    novelty: Atypicality
    novelty_threshold: float
    subspecies_threshold: float
    species_threshold: float
    species: list[str]

    @classmethod
    def fit(
        cls,
        train_features: np.ndarray,
        train_classes: np.ndarray,
        val_features: np.ndarray,
        val_probabilities: np.ndarray,
        val_classes: np.ndarray,
        species: list[str],
    ) -> Ranks:
        """From the TRAIN photographs' embeddings and the validation non-hybrids' embeddings,
        probabilities and true classes (indices into `species`, one per non-hybrid class). Without
        validation non-hybrids nothing is sure and nothing novel."""
        if not len(val_classes):
            return cls(Atypicality(unit_rows(train_features), train_classes, {}, 1.0, 5), np.inf, NEVER, NEVER, species)
        novelty = Atypicality.fit(train_features, train_classes, val_features, val_classes)
        top = val_probabilities[:, : len(species)].argmax(axis=1)
        names = np.array(species)
        return cls(
            novelty,
            float(np.quantile(novelty(val_features, top), 1 - FALSE_ALARM)),
            sure_level(val_probabilities[:, : len(species)].max(axis=1), top == val_classes),
            sure_level(species_probability(val_probabilities, top, species), names[top] == names[val_classes]),
            list(species),
        )

    def table(self, probabilities: np.ndarray, features: np.ndarray) -> pd.DataFrame:
        """Each photograph's `rank` and `novelty`."""
        top = probabilities[:, : len(self.species)].argmax(axis=1)
        novelty = self.novelty(features, top)
        conditions = [
            novelty > self.novelty_threshold,
            probabilities[:, : len(self.species)].max(axis=1) >= self.subspecies_threshold,
            species_probability(probabilities, top, self.species) >= self.species_threshold,
        ]
        rank = np.select(conditions, ["unknown", "subspecies", "species"], default="unknown")
        return pd.DataFrame({"rank": rank, "novelty": novelty})

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        np.savez(folder / REFERENCE, train=self.novelty.train, train_classes=self.novelty.train_classes)
        thresholds = {
            "false_alarm": FALSE_ALARM,
            "novelty_threshold": self.novelty_threshold,
            "subspecies_threshold": self.subspecies_threshold,
            "species_threshold": self.species_threshold,
            "species": self.species,
            "k": self.novelty.k,
            "class_medians": {str(k): v for k, v in self.novelty.class_medians.items()},
            "pooled_median": self.novelty.pooled_median,
        }
        (folder / RANKS).write_text(json.dumps(thresholds, indent=2))

    @classmethod
    def load(cls, folder: str | Path) -> Ranks | None:
        """The ranks a model folder stores; None in folders written before them."""
        folder = Path(folder)
        if not (folder / RANKS).is_file():
            return None
        stored = json.loads((folder / RANKS).read_text())
        with np.load(folder / REFERENCE) as reference:
            novelty = Atypicality(
                reference["train"],
                reference["train_classes"],
                {int(k): float(v) for k, v in stored["class_medians"].items()},
                float(stored["pooled_median"]),
                int(stored["k"]),
            )
        return cls(
            novelty,
            stored["novelty_threshold"],
            stored["subspecies_threshold"],
            stored["species_threshold"],
            stored["species"],
        )
