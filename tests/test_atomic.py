"""Outputs others trust appear whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hybridwing.atomic import atomic_file, atomic_folder
from hybridwing.segment import unet


def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    with atomic_file(target) as temporary:
        temporary.write_text("new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_a_folder_is_replaced_only_once_complete(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "a").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(target) as partial:
        (partial / "a").write_text("half")
        raise RuntimeError("killed")
    assert (target / "a").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["model"]
    with atomic_folder(target) as partial:
        (partial / "b").write_text("new")
    assert [p.name for p in target.iterdir()] == ["b"] and [p.name for p in tmp_path.iterdir()] == ["model"]


def test_the_unet_checkpoint_survives_a_failed_save(tmp_path, monkeypatch):
    settings = unet.UnetSettings(image_size=64, decoder_channels=(16, 16, 8, 8))
    path = tmp_path / "model.pt"
    unet.save_checkpoint(unet.build_unet(settings), settings, path)
    before = path.read_bytes()

    def dies_half_way(payload, target):
        Path(target).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(OSError):
        unet.save_checkpoint(unet.build_unet(settings), settings, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    monkeypatch.undo()
    assert unet.load_checkpoint(path)[1] == settings
