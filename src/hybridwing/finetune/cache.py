"""Frozen-trunk token cache.

With only the last k vision blocks trainable, everything before them (patch embedding, class and
position embeddings, ln_pre and the first N-k blocks) gives the same tokens for an image in every
epoch. They are computed once, stored as float16 in a memory-mapped ``.npy`` file, and training runs
the last k blocks and the head from them. A build that is interrupted continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap
from torch import nn
from tqdm import tqdm

from hybridwing.atomic import atomic_file
from hybridwing.digest import contents_digest, library_digest
from hybridwing.finetune.trainable import vision_blocks
from hybridwing.model.backbone import WingClassifier

log = logging.getLogger(__name__)

FLUSH_EVERY = 8  # batches between progress records while building


def _check_splittable(visual: nn.Module) -> None:
    if not (hasattr(visual, "_embeds") and hasattr(visual, "_pool")):
        raise ValueError(f"the token cache needs an open_clip VisionTransformer, not {type(visual).__name__}")


def _run_blocks(visual: nn.Module, tokens: torch.Tensor, blocks: list[nn.Module]) -> torch.Tensor:
    """Tokens (N, L, D) through `blocks`, in the layout the tower's transformer expects."""
    batch_first = getattr(visual.transformer, "batch_first", True)
    x = tokens if batch_first else tokens.transpose(0, 1)
    for block in blocks:
        x = block(x)
    return x if batch_first else x.transpose(0, 1)


def frozen_tokens(classifier: WingClassifier, images: torch.Tensor, n_frozen: int) -> torch.Tensor:
    """Tokens (N, L, D) after the patch embedding and the first `n_frozen` blocks of normalised images."""
    visual = classifier.visual
    _check_splittable(visual)
    return _run_blocks(visual, visual._embeds(images), list(vision_blocks(visual))[:n_frozen])


def logits_from_tokens(classifier: WingClassifier, tokens: torch.Tensor, n_frozen: int) -> torch.Tensor:
    """The classifier's logits from cached tokens: the remaining blocks, pooling, proj and the head."""
    visual = classifier.visual
    x = _run_blocks(visual, tokens, list(vision_blocks(visual))[n_frozen:])
    pooled, _ = visual._pool(x)
    if visual.proj is not None:
        pooled = pooled @ visual.proj
    return classifier.head(pooled)


def frozen_count(classifier: WingClassifier, unfrozen_blocks: int) -> int:
    """How many leading blocks stay frozen when the last `unfrozen_blocks` train."""
    return max(0, len(vision_blocks(classifier.visual)) - unfrozen_blocks)


def cache_key(classifier: WingClassifier, n_frozen: int, paths: list[str], size: int, mean, std) -> str:
    """A digest of everything the tokens depend on: the frozen weights, preprocessing, the image
    files' contents and the code that computes them (this module and what it imports)."""
    digest = hashlib.sha256(
        json.dumps(
            {"n_frozen": n_frozen, "size": size, "mean": list(mean), "std": list(std), "code": library_digest(__file__)}
        ).encode()
    )
    visual = classifier.visual
    frozen_blocks = [f"transformer.resblocks.{k}." for k in range(n_frozen)]
    for name, tensor in visual.state_dict().items():
        if name.startswith(("conv1.", "class_embedding", "positional_embedding", "ln_pre.", *frozen_blocks)):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(contents_digest(paths).encode())
    return digest.hexdigest()


class TokenFeed:
    """Model inputs by index from a token cache; `logits` runs the trainable tail."""

    def __init__(self, tokens: np.ndarray, n_frozen: int):
        self.tokens = tokens
        self.n_frozen = n_frozen

    def __len__(self) -> int:
        return len(self.tokens)

    def batch(self, index: torch.Tensor, device: torch.device) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.tokens[index.numpy()], dtype=np.float32)).to(device)

    def logits(self, model: WingClassifier, x: torch.Tensor) -> torch.Tensor:
        return logits_from_tokens(model, x, self.n_frozen)


def build_token_cache(
    classifier: WingClassifier,
    n_frozen: int,
    batches_from: Callable[[int], Iterator[torch.Tensor]],
    n_images: int,
    key: str,
    path: Path,
    device: torch.device,
    desc: str,
) -> np.ndarray:
    """The float16 tokens of `n_images` images, read from `path` when it holds them for `key`, else
    computed from ``batches_from(start)`` (normalised images in order, from image `start` on).
    An interrupted build resumes at the last recorded batch."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file() and json.loads(meta_path.read_text()) == {"key": key, "complete": True}:
        log.info("token cache %s is up to date", path)
        return np.load(path, mmap_mode="r")
    partial = path.with_suffix(".partial.npy")
    progress_path = path.with_suffix(".progress.json")
    progress = json.loads(progress_path.read_text()) if partial.is_file() and progress_path.is_file() else {}
    done = progress["done"] if progress.get("key") == key else 0
    if done:
        log.info("resuming token cache %s at image %d of %d", path, done, n_images)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokens = open_memmap(partial, mode="r+") if done else None
    position = done
    classifier.eval()
    with torch.inference_mode(), tqdm(total=n_images, initial=done, desc=desc, unit="img") as bar:
        for batch_number, images in enumerate(batches_from(done), start=1):
            out = frozen_tokens(classifier, images.to(device), n_frozen).float().cpu().numpy()
            if tokens is None:
                tokens = open_memmap(partial, mode="w+", dtype=np.float16, shape=(n_images, *out.shape[1:]))
            tokens[position : position + len(out)] = out.astype(np.float16)
            position += len(out)
            bar.update(len(out))
            if batch_number % FLUSH_EVERY == 0:
                tokens.flush()
                _write_json(progress_path, {"key": key, "done": position})
    if tokens is None:
        return np.zeros((0, 0, 0), dtype=np.float16)
    tokens.flush()
    del tokens
    partial.replace(path)
    _write_json(meta_path, {"key": key, "complete": True})
    progress_path.unlink(missing_ok=True)
    return np.load(path, mmap_mode="r")


def _write_json(path: Path, value: dict) -> None:
    with atomic_file(path) as temporary:
        temporary.write_text(json.dumps(value))
