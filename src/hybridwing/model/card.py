"""The model card: what a model folder holds, in words a curator reads before trusting a call.

Every number is read from the files the card summarises (the folder's JSON, the fine-tune's
metrics and per-class table, the balanced set and the metadata of every table), so the card and
the files cannot disagree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from hybridwing.data.tables import read_metadata
from hybridwing.model.ranks import RANKS

#: The card's file name inside a model folder.
MODEL_CARD = "MODEL_CARD.md"

#: What the hybrid class is trained towards, per ``hybrid_target`` (the per-class table says it too).
HYBRID_TRAINED_TOWARDS = {
    "class": "itself",
    "parents": "its two parents, 0.5 each: never a target itself, so never predicted (called by the hybrid score)",
    "both": "itself 0.5 and its two parents 0.25 each",
}

INTENDED_USE = """\
- Sorting photographs of spread *Heliconius* wings of the subspecies listed above, taken as the
  training photographs were (same layout, background removed by the segmenter shipped beside the
  weights), and pointing a curator at the likely hybrids to look at first.
- Not a species identifier for taxa it never saw (above): their photographs are forced into a known
  subspecies or called hybrid. Not a replacement for a specialist's call on a single specimen: the
  score ranks photographs, and the threshold is only as good as the validation split it was set on.
- Scores and the threshold come from this run's validation split; photographs from another
  collection, camera or mounting may score differently."""


def backbone_line(config: dict[str, Any]) -> str:
    """The backbone and where its weights came from, from the folder's config.json."""
    name = config["backbone"]
    if config.get("trunk_weights"):
        return f"`{name}`, its image trunk pretrained from `{config['trunk_weights']['path']}`"
    if config["pretrained"]:
        return f"`{name}`, pretrained weights (a hub model or a local checkpoint folder)"
    return f"`{name}`, randomly initialised: trained from scratch, no pretraining"


def training_counts(manifest: pd.DataFrame) -> pd.DataFrame:
    """Per class: real photographs, augmented copies, synthetic crosses and the total."""
    kind = manifest["recipe"].map(
        lambda recipe: "real" if recipe == "original" else "crosses" if '"cross"' in recipe else "augmented"
    )
    counts = pd.crosstab(manifest["class"], kind).reindex(columns=["real", "augmented", "crosses"], fill_value=0)
    return counts.assign(total=counts.sum(axis=1))


def never_seen(metadata: pd.DataFrame, classes: list[str]) -> list[str]:
    """Species and subspecies that some table holds and the training set does not, by species."""
    known = metadata[metadata["subspecies"] != ""]
    trained_species = set(known.loc[known["subspecies"].isin(classes), "species"])
    lines = []
    for species, rows in known[~known["subspecies"].isin(classes)].groupby("species"):
        names = ", ".join(sorted(set(rows["subspecies"])))
        what = "subspecies of a trained species" if species in trained_species else "a species never trained"
        lines.append(f"- *{species}* ({what}): {names}; {len(rows)} photographs in the tables, none trained on")
    return lines or ["- every subspecies in the tables was trained on"]


def markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(str(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def ranks_line(folder: Path) -> str:
    """What the rank and novelty thresholds mean, from the folder's ranks.json."""
    if not (folder / RANKS).is_file():
        return ""
    ranks = json.loads((folder / RANKS).read_text())
    share = f"{ranks['false_alarm']:.0%}"
    return (
        f"Each prediction's `rank` is `subspecies` when the top subspecies' probability is at least "
        f"{ranks['subspecies_threshold']:.3f}, else `species` when its species' summed probability is at least "
        f"{ranks['species_threshold']:.3f}, else `unknown`; at those levels {share} of the validation calls are "
        f"wrong. A `novelty` above {ranks['novelty_threshold']:.3f} (reached by {share} of the validation "
        "photographs) makes the rank `unknown`: the photograph looks like no subspecies the model knows."
    )


def model_card(
    folder: Path,
    metrics: dict[str, Any],
    per_class: pd.DataFrame,
    manifest: pd.DataFrame,
    metadata: pd.DataFrame,
) -> str:
    """The card's Markdown."""
    config = json.loads((folder / "config.json").read_text())
    inference = json.loads((folder / "inference.json").read_text())
    classes = json.loads((folder / "classes.json").read_text())
    settings = config["settings"]
    counts = training_counts(manifest).reindex(classes, fill_value=0).rename_axis("class").reset_index()
    validation = per_class.assign(**{name: per_class[name].round(3) for name in ("precision", "recall", "f1")})
    above = metrics.get("val_non_hybrids_above_threshold")
    threshold = (
        f"A photograph is called hybrid when its `{inference['score']}` is above {inference['threshold']:.4f}; "
        + (f"{above:.1%} of the validation split's non-hybrids score above it." if above is not None else "")
        if inference["threshold"] is not None
        else "No threshold: the validation split held no non-hybrids to set it on."
    )
    sections = [
        f"# Model card: {config['backbone']}",
        f"Written by the fine-tune of hybridwing {config.get('hybridwing', '')}; "
        "`hybridwing describe FOLDER` prints it.",
        "## What it is",
        f"- Backbone: {backbone_line(config)}.\n"
        f"- Classes: {len(classes) - 1} subspecies and `{classes[-1]}`, which is trained towards "
        f"{HYBRID_TRAINED_TOWARDS[settings['hybrid_target']]}.\n"
        f"- {metrics['ensemble']} model(s) averaged, temperature {metrics['temperature']:.3g}, "
        f"test-time flip {'on' if metrics['flip_average'] else 'off'}.\n"
        f"- Settings: {settings['epochs']} epoch(s) (best {metrics['best_epoch']}), batch {settings['batch_size']}, "
        f"learning rates {settings['backbone_lr']:g} (backbone) and {settings['head_lr']:g} (head), "
        f"unfrozen blocks {settings['unfrozen_blocks']}, fresh crosses {settings.get('cross_share', 0):g} of each "
        f"batch, seed {settings['seed']}.",
        "## Training data",
        f"{metrics['n_train']} images in the balanced training set: real photographs of the TRAIN split, "
        "augmented copies of them, and synthetic crosses (wings of two subspecies composed).",
        markdown_table(counts),
        "## Validation",
        f"Macro-F1 {metrics['val_macro_f1']:.3f}, accuracy {metrics['val_accuracy']:.3f} on {metrics['n_val']} "
        "photographs of the validation split.",
        markdown_table(validation),
        "## The call",
        threshold,
        ranks_line(folder),
        "## Crosses it never saw",
        "How a model fares on crosses it never saw is measured by the held-out-cross validation, a second "
        "model trained without some crosses (the `holdout` block); its results are in "
        "results/holdout/metrics.json when that stage runs, and are not part of this card, so that "
        "turning the stage on does not retrain this model.",
        "## What it never saw",
        "\n".join(never_seen(metadata, classes)),
        "## Intended use and known limits",
        INTENDED_USE,
    ]
    return "\n\n".join(sections) + "\n"


def write_model_card(
    folder: str,
    metrics_path: str,
    per_class_path: str,
    manifest_path: str,
    metadata_path: str,
    copy_path: str,
) -> None:
    """MODEL_CARD.md in the model folder, from the files it summarises, and a copy at `copy_path`
    (the report's)."""
    card = model_card(
        Path(folder),
        json.loads(Path(metrics_path).read_text()),
        pd.read_csv(per_class_path),
        pd.read_csv(manifest_path, keep_default_na=False),
        read_metadata(metadata_path),
    )
    (Path(folder) / MODEL_CARD).write_text(card)
    Path(copy_path).write_text(card)
