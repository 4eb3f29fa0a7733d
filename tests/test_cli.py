"""`hybridwing check-table` validates a table without Snakemake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TAXA

from hybridwing.cli import main


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


def test_a_summary_that_is_not_one_is_one_line_not_a_traceback(tmp_path, capsys):
    binary, malformed = tmp_path / "binary.csv", tmp_path / "malformed.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    malformed.write_text('table,score\n"unclosed,x\n')
    for summary in (binary, malformed, tmp_path / "other.csv"):
        if summary.name == "other.csv":
            summary.write_text("a,b\n1,2\n")  # a CSV, but not a summary
        assert main(["scores", str(summary)]) == 1
        error = capsys.readouterr().err
        assert error.startswith(f"{summary}: not a score summary of hybridwing") and error.count("\n") == 1, error
        assert "Traceback" not in error


def test_scores_name_the_part_that_zeroed_a_challenge_score(tmp_path, capsys):
    """A challenge score of 0 is a harmonic mean with a 0 in it: the part is named."""
    summary = tmp_path / "summary.csv"
    summary.write_text(
        "table,chosen,score,n_images,n_hybrids,challenge_score,challenge_score_ci90,major_recall,minor_recall,"
        "mimic_recall,roc_auc\n"
        'dev,True,hybrid_score,40,12,0.0,"[0.0, 0.0]",0.61,0.0,0.42,0.88\n'
        'val,True,hybrid_score,30,6,0.51,"[0.4, 0.6]",0.5,0.6,0.45,0.9\n'
    )
    assert main(["scores", str(summary)]) == 0
    said = capsys.readouterr().out
    assert "dev: the minor recall is 0" in said and "val: the" not in said


@pytest.mark.parametrize("count", ["-3", "0", "many"])
def test_review_wants_a_count_of_one_or_more(tmp_path, capsys, monkeypatch, count):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        main(["review", "dev", "--count", count])
    assert stopped.value.code == 2 and "is not a whole number of 1 or more" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [], "nothing written"


def test_review_into_a_missing_folder_says_so_before_any_work(tmp_path, capsys):
    out = tmp_path / "no" / "such" / "batch.csv"
    assert main(["review", "dev", "--results", str(tmp_path), "--out", str(out)]) == 1
    assert capsys.readouterr().err == f"--out {out}: the folder {out.parent} does not exist\n"


def test_an_os_error_in_a_subcommand_is_one_line(tmp_path, capsys, monkeypatch):
    import hybridwing.cli as cli

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli, "check_table", disk_full)
    assert main(["check-table", str(tmp_path / "t.csv")]) == 1
    assert capsys.readouterr().err == "hybridwing check-table: [Errno 28] No space left on device\n"
