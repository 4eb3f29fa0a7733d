"""Image embeddings of a trained model and what they say about the taxa: nearest-neighbour accuracy
(neighbours from other specimens only), k-means clusters, a 2-D map and embedding near-duplicates."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from hybridwing.device import autocast
from hybridwing.model.backbone import Backbone, feature_size
from hybridwing.model.preprocess import normalised_batches
from hybridwing.review.embedding_table import EMBEDDING_PREFIX, embedding_matrix

NEIGHBOURS = (1, 5)
METRICS = ("cosine", "euclidean")


def frozen_features(backbone: Backbone, paths: list[str], device: torch.device, batch_size: int = 64) -> np.ndarray:
    """(images, features) of a backbone as it was before fine-tuning, at its own input size and
    mean/std."""
    visual = backbone.visual.to(device).eval()
    out = []
    for batch in normalised_batches(paths, backbone.image_size, backbone.mean, backbone.std, device, batch_size):
        with torch.inference_mode(), autocast(device):
            out.append(visual(batch).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, feature_size(visual)), np.float32)


def _distances(features: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        unit = features / np.linalg.norm(features, axis=1, keepdims=True).clip(min=1e-12)
        return 1.0 - unit @ unit.T
    squared = (features**2).sum(1)
    return np.sqrt(np.clip(squared[:, None] + squared[None, :] - 2 * features @ features.T, 0, None))


def knn_accuracies(
    features: np.ndarray, labels: pd.Series, specimens: pd.Series, ks: tuple[int, ...], metric: str
) -> dict[int, float | None]:
    """For each k of `ks`: the share of images whose k nearest neighbours (by `metric`, other
    specimens only; a majority vote, ties to the nearer) carry their label; None with fewer than
    k + 1 specimens. The neighbours are ordered once for every k."""
    labels, specimens = np.asarray(labels), np.asarray(specimens)
    usable = [k for k in ks if len(set(specimens)) > k]
    accuracies: dict[int, float | None] = dict.fromkeys(ks)
    if not usable:
        return accuracies
    distances = _distances(features, metric)
    distances[specimens[:, None] == specimens[None, :]] = np.inf
    order = np.argsort(distances, axis=1, kind="stable")[:, : max(usable)]
    for k in usable:
        hits = 0
        for row, neighbours in enumerate(order[:, :k]):
            votes: dict[Any, int] = {}
            for neighbour in neighbours:
                votes[labels[neighbour]] = votes.get(labels[neighbour], 0) + 1
            hits += max(votes, key=votes.get) == labels[row]  # dicts keep insertion order: ties go to the nearer label
        accuracies[k] = hits / len(labels)
    return accuracies


def knn_accuracy(features: np.ndarray, labels: pd.Series, specimens: pd.Series, k: int, metric: str) -> float | None:
    """`knn_accuracies` for one k."""
    return knn_accuracies(features, labels, specimens, (k,), metric)[k]


def cluster_scores(features: np.ndarray, labels: pd.Series, seed: int) -> dict[str, float]:
    """k-means (k = number of labels, on unit vectors) against the labels: purity and NMI."""
    labels = np.asarray(labels)
    k = len(set(labels))
    unit = features / np.linalg.norm(features, axis=1, keepdims=True).clip(min=1e-12)
    clusters = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(unit)
    majority = pd.crosstab(clusters, labels).max(axis=1).sum()
    return {
        "kmeans_k": k,
        "kmeans_purity": float(majority / len(labels)),
        "kmeans_nmi": float(normalized_mutual_info_score(labels, clusters)),
    }


def taxa_metrics(frame: pd.DataFrame, seed: int, prefix: str = EMBEDDING_PREFIX) -> dict[str, Any]:
    """k-NN accuracy (k = 1 and 5, cosine and Euclidean) for subspecies (hybrids left out) and for
    species (every image), and k-means purity and NMI against subspecies, of the embedding columns
    with `prefix`."""
    features = embedding_matrix(frame, prefix)
    pure = ~frame["is_hybrid"].to_numpy(bool)
    metrics: dict[str, Any] = {"n_images": len(frame), "n_hybrids": int((~pure).sum()), "dimensions": features.shape[1]}
    for level, rows in (("subspecies", pure), ("species", np.ones(len(frame), bool))):
        labels = frame.loc[rows, "label" if level == "subspecies" else "species"]
        for metric in METRICS:
            for k, accuracy in knn_accuracies(
                features[rows], labels, frame.loc[rows, "specimen"], NEIGHBOURS, metric
            ).items():
                metrics[f"knn{k}_{metric}_{level}"] = accuracy
    labels = frame.loc[pure, "label"]
    if labels.nunique() > 1 and pure.sum() > labels.nunique():
        metrics |= cluster_scores(features[pure], labels, seed)
    return metrics


def map_2d(features: np.ndarray, seed: int) -> tuple[np.ndarray, str]:
    """Two coordinates per image, with the method's name: UMAP (cosine) where umap-learn is
    installed and there are enough images, principal components otherwise."""
    if len(features) > 15:
        try:
            import umap  # noqa: PLC0415 - optional dependency
        except ImportError:
            pass
        else:
            return umap.UMAP(metric="cosine", random_state=seed).fit_transform(features), "UMAP"
    centred = features - features.mean(0)
    if len(features) < 2:
        return np.zeros((len(features), 2)), "PCA"
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    coordinates = centred @ components[:2].T
    return np.pad(coordinates, ((0, 0), (0, 2 - coordinates.shape[1]))), "PCA"


def near_duplicates(frame: pd.DataFrame, min_cosine: float) -> pd.DataFrame:
    """Pairs of images from different specimens whose embeddings' cosine similarity is at least
    `min_cosine`, most similar first."""
    features = embedding_matrix(frame)
    unit = features / np.linalg.norm(features, axis=1, keepdims=True).clip(min=1e-12)
    similarity = unit @ unit.T
    specimens = frame["specimen"].to_numpy()
    first, second = np.nonzero(np.triu(similarity >= min_cosine, k=1) & (specimens[:, None] != specimens[None, :]))
    pairs = pd.DataFrame(
        {
            "image_a": frame["image_id"].to_numpy()[first],
            "image_b": frame["image_id"].to_numpy()[second],
            "cosine": similarity[first, second].round(5),
        }
    )
    return pairs.sort_values("cosine", ascending=False, kind="stable").reset_index(drop=True)


def beside_phash_pairs(pairs: pd.DataFrame, phash_pairs: pd.DataFrame) -> pd.DataFrame:
    """Embedding pairs with the perceptual-hash distance (``hamming``) of those that the split's
    near-duplicate table also holds (either order), empty otherwise."""
    hamming = {
        frozenset(pair): distance
        for *pair, distance in phash_pairs[["image_a", "image_b", "hamming"]].itertuples(index=False)
    }
    return pairs.assign(
        hamming=[hamming.get(frozenset(pair), "") for pair in pairs[["image_a", "image_b"]].itertuples(index=False)]
    )
