"""What a classifier sees: an image as RGB, resized to the model's input size, scaled by its mean/std."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm


def image_tensor(image: Image.Image, size: int) -> torch.Tensor:
    """uint8 (3, size, size): the image as RGB, resized (bicubic) to the model's input size."""
    rgb = image.convert("RGB").resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)


def mask_array(mask: np.ndarray, size: int) -> np.ndarray:
    """bool (size, size): a wing mask resized (nearest neighbour) as `image_tensor` resizes its image."""
    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((size, size), Image.NEAREST)) > 0


def load_image(path: str, size: int) -> torch.Tensor:
    with Image.open(path) as image:
        return image_tensor(image, size)


def load_images(paths: list[str], size: int, desc: str) -> torch.Tensor:
    """uint8 (N, 3, size, size) tensor of every image."""
    out = torch.empty((len(paths), 3, size, size), dtype=torch.uint8)
    for k, path in enumerate(tqdm(paths, desc=desc, unit="img")):
        out[k] = load_image(path, size)
    return out


def normalised_batches(
    paths: list[str], size: int, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device, batch_size: int
):
    """Image files `batch_size` at a time, resized and scaled by mean/std, on `device`."""
    for start in range(0, len(paths), batch_size):
        yield normalise(
            torch.stack([load_image(path, size) for path in paths[start : start + batch_size]]).to(device), mean, std
        )


def normalise(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    mean_t = torch.tensor(mean, device=images.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255 - mean_t) / std_t
