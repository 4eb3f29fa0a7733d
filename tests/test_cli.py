"""`hybridwing check-table` validates a table without Snakemake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import TAXA


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("hybridwing")), *args], capture_output=True, text=True, timeout=120
    )


def test_check_table_summarises_a_good_table(heliconius):
    result = run("check-table", str(heliconius / "dev.csv"), "--taxa", str(TAXA))
    assert result.returncode == 0, result.stderr
    assert "reference table, 1156 images, 331 hybrids" in result.stdout
    assert "malleti" in result.stdout


def test_check_table_names_the_problem(tmp_path, train_rows):
    rows = train_rows.head(4).copy()
    rows.loc[2, "subspecies"] = "42"
    path = tmp_path / "bad.csv"
    rows.to_csv(path, index=False)
    result = run("check-table", str(path), "--taxa", str(TAXA))
    assert result.returncode == 1
    assert "line 4, column 'subspecies': not a known subspecies code" in result.stderr
