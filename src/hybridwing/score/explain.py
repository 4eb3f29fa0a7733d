"""Why a photograph was called hybrid: where on its wings the evidence for each of its two likeliest
subspecies lies.

Occlusion (captum): a square window slides over the wing image, hiding the wing pattern under it (its
wing pixels painted the wings' mean colour), and every pixel the window covered is credited with the
probability each subspecies lost. Regions that speak for the likeliest subspecies are drawn in cyan,
those for the second in magenta (colours no Heliconius wing has); outside the wing mask the
photograph is greyed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from captum.attr import Occlusion
from PIL import Image

from hybridwing.hybrid_scores import top_two
from hybridwing.model.inference import TrainedClassifiers
from hybridwing.plots import contact_sheet

#: The occluding window's side and step as shares of the image side.
WINDOW_SHARE = 1 / 10
STRIDE_SHARE = 1 / 16
#: Colours of the regions that speak for the likeliest and the second subspecies (cyan, magenta).
FIRST_COLOUR = np.array([0, 200, 230], np.float32)
SECOND_COLOUR = np.array([220, 0, 180], np.float32)
#: How strongly the strongest region is painted over the photograph.
OPACITY = 0.75
LEGEND = "cyan: regions for the likeliest subspecies; magenta: for the second; grey: outside the wing mask"


@dataclass(frozen=True)
class Explanation:
    """One photograph's wing image and mask at the model's size, its two likeliest subspecies with
    their probabilities, and for each the probability it loses when a region is hidden (2, S, S)."""

    wings: np.ndarray
    mask: np.ndarray
    subspecies: tuple[str, str]
    probabilities: tuple[float, float]
    maps: np.ndarray

    def share_within(self, region: np.ndarray) -> np.ndarray:
        """The share of each subspecies' evidence (the positive part of its map) inside `region`."""
        evidence = np.clip(self.maps, 0, None)
        totals = evidence.sum(axis=(1, 2))
        return np.divide(evidence[:, region].sum(axis=1), totals, out=np.zeros(2), where=totals > 0)

    def caption(self) -> str:
        (first, second), (p_first, p_second) = self.subspecies, self.probabilities
        return f"{first} {p_first:.2f}\n{second} {p_second:.2f}"

    def picture(self) -> Image.Image:
        """The photograph with each subspecies' regions painted in its colour, grey off the wings."""
        image = self.wings.astype(np.float32)
        grey = image.mean(axis=2, keepdims=True) * 0.35 + 150
        image = np.where(self.mask[..., None], image, grey)
        for evidence, colour in zip(np.clip(self.maps, 0, None), (FIRST_COLOUR, SECOND_COLOUR)):
            peak = evidence.max()
            weight = (evidence / peak if peak > 0 else evidence)[..., None] * OPACITY
            image = image * (1 - weight) + colour * weight
        return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def hidden(wings: torch.Tensor, mask: np.ndarray) -> torch.Tensor:
    """What an occluded pixel becomes (3, S, S float): the mean colour of the wings on the wings, so
    that their pattern is hidden and their outline kept, and the image itself off them."""
    on_wings = torch.from_numpy(mask)
    wing_colour = wings[:, on_wings].float().mean(dim=1) if on_wings.any() else torch.full((3,), 127.5)
    return torch.where(on_wings, wing_colour.view(3, 1, 1), wings.float())


def explain(classifier: TrainedClassifiers, wings: torch.Tensor, mask: np.ndarray) -> Explanation:
    """The occlusion maps of one uint8 wing image (3, S, S) with its wing mask (S, S) at the model's
    size, for its two likeliest subspecies under `classifier`'s probabilities."""

    def probabilities(images: torch.Tensor) -> torch.Tensor:
        # The two targets are two copies of one image, so each occluded image comes twice: run it once.
        unique, inverse = torch.unique(images.flatten(1), dim=0, return_inverse=True)
        pixels = unique.view(-1, *images.shape[1:]).round().clamp(0, 255).to(torch.uint8)
        return torch.as_tensor(classifier.probabilities(pixels), dtype=torch.float32)[inverse]

    first, p_first, second, p_second = top_two(classifier.probabilities(wings[None]))
    side = wings.shape[-1]
    window, stride = max(2, round(side * WINDOW_SHARE)), max(1, round(side * STRIDE_SHARE))
    inputs = wings[None].float().expand(2, -1, -1, -1).contiguous()
    baseline = hidden(wings, mask)[None].expand_as(inputs).contiguous()
    attributions = Occlusion(probabilities).attribute(
        inputs,
        sliding_window_shapes=(3, window, window),
        strides=(3, stride, stride),
        baselines=baseline,
        target=[int(first[0]), int(second[0])],
        perturbations_per_eval=32,
    )
    return Explanation(
        wings=wings.permute(1, 2, 0).numpy(),
        mask=mask,
        subspecies=(classifier.classes[int(first[0])], classifier.classes[int(second[0])]),
        probabilities=(float(p_first[0]), float(p_second[0])),
        maps=attributions[:, 0].numpy(),
    )


def write_explanations(explanations: dict[str, Explanation], folder: str | Path, sheet: str | Path, table: str) -> None:
    """One picture per photograph (``NAME.png`` in `folder`) and their contact sheet at `sheet`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, explanation in explanations.items():
        explanation.picture().save(folder / f"{name}.png")
        paths.append(str(folder / f"{name}.png"))
    captions = [f"{name}\n{explanation.caption()}" for name, explanation in explanations.items()]
    heading = f"{table}: photographs called hybrid, highest score first"
    contact_sheet([(heading, paths, captions)], sheet, f"Why each was called hybrid ({LEGEND})", tile=160, columns=4)
