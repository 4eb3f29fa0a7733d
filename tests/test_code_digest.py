"""A rule's ``code`` param: the digest of the library code its script runs, so that a change in
src/hybridwing reruns the rules whose code it is, and no other."""

from __future__ import annotations

import shutil

import pytest
from conftest import REPO

from hybridwing.digest import library_digest
from hybridwing.imports import PACKAGE_ROOT

SCRIPTS = sorted((REPO / "workflow/scripts").glob("*.py"))


@pytest.fixture()
def package(tmp_path):
    """A copy of the hybridwing package to change."""
    copy = tmp_path / "hybridwing"
    shutil.copytree(PACKAGE_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def digests(package) -> dict[str, str]:
    return {script.name: library_digest(script, package) for script in SCRIPTS}


def changed_by(package, relative: str) -> set[str]:
    """The scripts whose digest changes when `relative` (a file of the package) changes."""
    before = digests(package)
    path = package / relative
    path.write_text(path.read_text() + "\n")
    after = digests(package)
    return {name for name in before if before[name] != after[name]}


def test_the_same_code_has_the_same_digest_wherever_it_lies(package):
    assert len(SCRIPTS) > 20
    assert digests(package) == digests(PACKAGE_ROOT)


def test_a_module_reaches_the_scripts_that_import_it_and_no_other(package):
    changed = changed_by(package, "segment/unet.py")
    assert {"train_unet.py", "segment.py", "score.py", "embed.py"} <= changed, "imported directly and through others"
    assert not {"split.py", "fetch.py", "rounds.py", "score_summary.py", "label_issues.py", "synthesize.py"} & changed


def test_an_import_inside_a_function_counts(package):
    """triage imports its zero-shot judge only for a pretrained model, inside the step."""
    changed = changed_by(package, "review/zero_shot.py")
    assert "triage.py" in changed and "rounds.py" not in changed


def test_the_model_configs_count(package):
    changed = changed_by(package, "model/model_configs/hybridwing-vit-tiny.json")
    assert {"finetune.py", "score.py", "embed.py"} <= changed and "split.py" not in changed


def test_a_package_module_includes_itself(package):
    before = library_digest(package / "finetune/train.py", package)
    assert library_digest(package / "finetune/cache.py", package) != before
    (package / "finetune/train.py").write_text((package / "finetune/train.py").read_text() + "\n")
    assert library_digest(package / "finetune/train.py", package) != before
