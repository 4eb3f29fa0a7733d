"""One row per specimen: a table may list several photographs of one specimen (one CAMID, say its
dorsal and ventral sides), and a curator decides per specimen."""

from __future__ import annotations

import pandas as pd

from hybridwing.hybrid_scores import SCORE_NAMES

#: The columns of a predictions table that describe a photograph, not its specimen.
PER_PHOTOGRAPH = {"image_id", "filename", "subspecies", "p_top1", "top2", "p_top2", "call", "parents", *SCORE_NAMES}


def specimen_table(predictions: pd.DataFrame, score: str) -> pd.DataFrame:
    """Per CAMID, highest score first: the photographs, the mean and largest `score`, the call
    (hybrid when any of its photographs is called hybrid), the likeliest parents (the two most
    likely subspecies of its highest-scoring photograph), and the specimen's other columns (truth,
    part, the table's own columns) as its highest-scoring photograph has them."""
    ordered = predictions.sort_values(score, ascending=False, kind="stable")
    grouped = ordered.groupby("camid", sort=False)
    top = grouped.head(1).set_index("camid")
    table = pd.DataFrame(
        {
            "photographs": grouped.size(),
            "image_ids": grouped["image_id"].agg(" ".join),
            f"mean_{score}": grouped[score].mean(),
            f"max_{score}": grouped[score].max(),
        }
    )
    if "call" in predictions:
        table["call"] = grouped["call"].agg(lambda calls: "hybrid" if calls.eq("hybrid").any() else "non-hybrid")
    table["likeliest_parents"] = [" x ".join(sorted(pair)) for pair in zip(top["subspecies"], top["top2"])]
    return table.join(top[[name for name in top.columns if name not in PER_PHOTOGRAPH]]).reset_index()
