"""The package's stages import only from earlier stages (and the shared base modules)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "hybridwing"
#: Stage rank: a module may import from its own rank or a lower one. The top-level modules shared by
#: every stage (device, atomic, logs, shards, plots) rank 0; config.py and cli.py sit on top.
#: `model` (a trained model: backbone, preprocessing, model folder, inference) sits below training
#: and every reader of a model folder.
RANK = {
    "base": 0,
    "data": 1,
    "synthetic": 2,
    "segment": 2,
    "balance": 3,
    "model": 4,
    "finetune": 5,
    "score": 6,
    "holdout": 7,
    "review": 7,
    "config": 8,
    "cli": 8,
}
REPO = PACKAGE.parents[1]
TOP_LEVEL = {"config": "config", "cli": "cli"}


def stage_of(module: str) -> str:
    """`hybridwing.segment.unet` -> segment; top-level helpers -> base."""
    parts = module.split(".")
    if len(parts) > 2:
        return parts[1]
    return TOP_LEVEL.get(parts[1], "base") if len(parts) == 2 else "base"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hybridwing"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("hybridwing."))
    return found


def test_no_stage_imports_a_later_stage():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 30, "the walk found the package"
    wrong = []
    for path in modules:
        module = ".".join(("hybridwing", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        for imported in imports_of(path):
            if imported != "hybridwing" and RANK[stage_of(imported)] > RANK[stage_of(module)]:
                wrong.append(f"{module} imports {imported}")
    assert wrong == []


def test_model_lies_below_training_and_every_reader():
    assert RANK["model"] < RANK["finetune"] < RANK["score"] < RANK["review"]
    model_modules = sorted((PACKAGE / "model").glob("*.py"))
    assert {path.stem for path in model_modules} >= {"backbone", "preprocess", "folder", "inference"}
    reaching_up = [
        f"{path.name} imports {m}"
        for path in model_modules
        for m in imports_of(path)
        if stage_of(m) in {"finetune", "score", "review"}
    ]
    assert reaching_up == []


def test_only_training_imports_finetune():
    """Scoring, review, the command line and the benchmarks that read a model read it through
    `hybridwing.model`; only the fine-tune rule's script and the training benchmarks train."""
    training = {
        REPO / "workflow/scripts/finetune.py",
        REPO / "bench/architectures.py",
        REPO / "bench/run.py",
        REPO / "bench/profile_run.py",
    }
    readers = [
        path
        for path in PACKAGE.rglob("*.py")
        if stage_of(".".join(("hybridwing", *path.relative_to(PACKAGE).parts))) != "finetune"
    ]
    readers += [
        path
        for folder in ("workflow/scripts", "bench")
        for path in (REPO / folder).glob("*.py")
        if path not in training
    ]
    assert len(readers) > 40
    wrong = [
        f"{path.relative_to(REPO)} imports {m}"
        for path in readers
        for m in imports_of(path)
        if m.startswith("hybridwing.finetune")
    ]
    assert wrong == []


def test_review_reads_a_model_folder_only_through_the_model_package():
    """review/ names no file of a model folder, by its name or by the model package's constant for
    it: it asks hybridwing.model for classes, config and score."""
    from hybridwing.model import description

    constants = ("WEIGHTS", "CLASSES", "PREPROCESS", "CONFIG", "SEGMENTER", "MASK_SETTINGS", "INFERENCE")
    file_names = [getattr(description, name) for name in constants]
    found = []
    for path in sorted((PACKAGE / "review").glob("*.py")):
        found += [f"{path.name} names {name}" for name in file_names if name in path.read_text()]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in (
                "hybridwing.model.folder",
                "hybridwing.model.description",
            ):
                found += [f"{path.name} imports {alias.name}" for alias in node.names if alias.name in constants]
    assert found == []


def test_the_walk_sees_a_backward_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("from hybridwing.score.predictor import Predictor\n")
    assert RANK[stage_of(next(iter(imports_of(module))))] > RANK[stage_of("hybridwing.finetune.steps")]


#: The steps of the light jobs: each reads tables, images and JSON files only, so its job must not
#: pay the 5-8 seconds that torch, open_clip and albumentations take to import. (The segment and
#: balance steps load the U-Net and the augmenter inside the jobs that use them, triage its
#: zero-shot judge only for a pretrained model; the workflow resolves the trunk weights' file when it
#: parses, before any job.)
LIGHT_STEPS = [
    "hybridwing.data.steps",
    "hybridwing.segment.steps",
    "hybridwing.balance.steps",
    "hybridwing.review.rounds",
    "hybridwing.score.summary",
    "hybridwing.review.label_issues",
    "hybridwing.review.triage_step",
    "hybridwing.model.description",
    "hybridwing.review.embedding_table",
    "hybridwing.pretrained",
    "hybridwing.holdout.rows",
]


@pytest.mark.parametrize("module", LIGHT_STEPS)
def test_the_light_jobs_import_no_torch(module):
    probe = f"import sys, {module}; print(sorted({{'torch', 'open_clip', 'albumentations'}} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", f"{module} imports {result.stdout.strip()}"
