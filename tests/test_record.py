"""The experiment record's tables are the committed rows, generated and checked."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("record", REPO / "bench/record.py")
record = importlib.util.module_from_spec(spec)
spec.loader.exec_module(record)


def test_the_committed_record_matches_its_rows():
    run = subprocess.run([sys.executable, str(REPO / "bench/record.py"), "--check"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_a_changed_row_puts_the_record_out_of_date_until_it_is_generated(tmp_path, monkeypatch):
    shutil.copytree(REPO / "bench/results", tmp_path / "results")
    shutil.copy(REPO / "docs/experiments.md", tmp_path / "experiments.md")
    monkeypatch.setattr(record, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(record, "RECORD", tmp_path / "experiments.md")
    monkeypatch.setattr(sys, "argv", ["record.py", "--check"])
    assert record.main() == 0
    rows = pd.read_csv(tmp_path / "results/dev_selection.csv")
    rows.loc[rows["shipped_score"].idxmax(), "dev"] = 0.987654
    rows.to_csv(tmp_path / "results/dev_selection.csv", index=False)
    assert record.main() == 1
    monkeypatch.setattr(sys, "argv", ["record.py"])
    assert record.main() == 0
    assert "0.988" in (tmp_path / "experiments.md").read_text()
    monkeypatch.setattr(sys, "argv", ["record.py", "--check"])
    assert record.main() == 0
