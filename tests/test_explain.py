"""Explanations of hybrid calls: on composites whose truth is known (one subspecies' forewings, another's
hindwings), each subspecies' evidence lies on its own wings and little of it off the wings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from hybridwing.model.inference import TrainedClassifiers
from hybridwing.model.preprocess import image_tensor
from hybridwing.score.explain import Explanation, explain, write_explanations
from hybridwing.synthetic.patterns import BY_NAME
from hybridwing.synthetic.render import LEFT_FOREWING, LEFT_HINDWING, RIGHT_FOREWING, RIGHT_HINDWING, render_specimen

SIZE = 64
CLASSES = ["flava", "cinerea", "radiata", "hybrid"]


def composite(fore: str, hind: str, seed: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """`fore`'s forewings and `hind`'s hindwings on one specimen's layout, background white, at the
    model's size, with the two wing pairs' ground-truth masks."""
    first, first_mask = render_specimen(BY_NAME[fore].pattern, 128, np.random.default_rng(seed))
    second, second_mask = render_specimen(BY_NAME[hind].pattern, 128, np.random.default_rng(seed))
    forewings = np.isin(first_mask, (LEFT_FOREWING, RIGHT_FOREWING))
    hindwings = np.isin(second_mask, (LEFT_HINDWING, RIGHT_HINDWING))
    picture = np.where(hindwings[..., None], second, np.where(forewings[..., None], first, 255)).astype(np.uint8)

    def small(mask: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((SIZE, SIZE), Image.NEAREST)) > 0

    return image_tensor(Image.fromarray(picture), SIZE), small(forewings), small(hindwings)


@pytest.fixture(scope="module")
def wing_model() -> TrainedClassifiers:
    """A small network that learnt the three subspecies from their wings: trained on composites of
    random pairs with half of the target on each parent, as the fine-tune's parent targets do."""
    rng = np.random.default_rng(0)
    images, targets = [], []
    for seed in range(120):
        fore, hind = rng.integers(0, 3, 2)
        images.append(composite(CLASSES[fore], CLASSES[hind], seed)[0])
        target = torch.zeros(len(CLASSES))
        target[[fore, hind]] += 0.5
        targets.append(target)
    inputs, labels = (torch.stack(images).float() / 255 - 0.5) / 0.5, torch.stack(targets)
    torch.manual_seed(0)
    network = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(32, len(CLASSES)),
    )  # fmt: skip
    optimiser = torch.optim.Adam(network.parameters(), 1e-2)
    for _ in range(25):
        for batch in torch.randperm(len(inputs)).split(32):
            loss = nn.functional.cross_entropy(network(inputs[batch]), labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return TrainedClassifiers([network.eval()], CLASSES, SIZE, (0.5,) * 3, (0.5,) * 3, torch.device("cpu"))


@pytest.fixture(scope="module")
def composites(wing_model) -> list[tuple[str, str, Explanation, np.ndarray, np.ndarray]]:
    """Each ordered pair of the three subspecies as one unseen composite, explained."""
    out = []
    for number, (fore, hind) in enumerate(itertools.permutations(CLASSES[:-1], 2)):
        wings, forewings, hindwings = composite(fore, hind, 9000 + number)
        out.append((fore, hind, explain(wing_model, wings, forewings | hindwings), forewings, hindwings))
    return out


def test_each_parent_of_a_composite_is_explained_by_its_own_wings(composites):
    own_shares = []
    for fore, hind, explanation, forewings, hindwings in composites:
        assert set(explanation.subspecies) == {fore, hind}, "the two likeliest subspecies are the two parents"
        on_forewings = dict(zip(explanation.subspecies, explanation.share_within(forewings)))
        on_hindwings = dict(zip(explanation.subspecies, explanation.share_within(hindwings)))
        off_wings = explanation.share_within(~(forewings | hindwings))
        assert on_forewings[fore] > max(0.35, on_hindwings[fore]), (fore, hind, on_forewings, on_hindwings)
        assert on_hindwings[hind] > max(0.35, on_forewings[hind]), (fore, hind, on_forewings, on_hindwings)
        assert (off_wings < 0.35).all(), (fore, hind, off_wings)
        own_shares += [on_forewings[fore], on_hindwings[hind]]
    assert np.mean(own_shares) > 0.65, own_shares


def test_the_pictures_paint_each_parent_in_its_colour_and_grey_off_the_wings(composites, tmp_path):
    fore, hind, explanation, forewings, hindwings = composites[0]
    picture = np.asarray(explanation.picture()).astype(int)
    wings = explanation.wings.astype(int)
    first_wings = forewings if explanation.subspecies[0] == fore else hindwings
    # The likeliest subspecies' wings are pushed towards cyan (blue up); off the wings, where no
    # evidence lies (under a thousandth of either map's peak), the photograph is grey.
    assert (picture[first_wings][:, 2] - wings[first_wings][:, 2]).mean() > 20
    peaks = explanation.maps.max(axis=(1, 2))[:, None, None]
    quiet = ~(forewings | hindwings) & (explanation.maps <= 0.001 * peaks).all(axis=0)
    assert quiet.sum() > 100
    assert np.abs(picture[quiet] - picture[quiet].mean(axis=1, keepdims=True)).max() <= 1
    write_explanations({"composite": explanation}, tmp_path / "pictures", tmp_path / "sheet.png", "test")
    assert (tmp_path / "pictures" / "composite.png").is_file()
    with Image.open(tmp_path / "sheet.png") as sheet:
        assert sheet.size[0] > 300 and sheet.size[1] > 150
