"""Both challenge table formats load, and every kind of bad table is named by file, line and column."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from hybridwing.data.steps import metadata_step
from hybridwing.data.tables import TableError, Taxa, normalise_table, read_metadata


def normalise(frame: pd.DataFrame, taxa, source="train"):
    return normalise_table(frame.reset_index(drop=True), source, f"{source}.csv", taxa)


def test_real_training_table(train_rows, taxa):
    table = normalise(train_rows, taxa)
    assert len(table) == 2080
    assert table["image_id"].is_unique
    assert table["is_hybrid"].sum() == 91
    hybrids = table[table["is_hybrid"]]
    assert set(hybrids["parent_1"]) | set(hybrids["parent_2"]) == {"lativitta", "notabilis"}
    assert (hybrids["subspecies"] == "").all()
    assert table.loc[~table["is_hybrid"], "subspecies"].value_counts()["lativitta"] == 856
    assert set(table["species"]) == {"erato"}


def test_real_reference_table(dev_rows, taxa):
    table = normalise(dev_rows, taxa, "dev")
    assert len(table) == 1156
    counts = table.groupby(["ssp_indicator", "is_hybrid"]).size()
    assert counts[("minor", True)] == 17 and counts[("mimic", True)] == 124
    assert set(table.loc[table["ssp_indicator"] == "mimic", "species"]) == {"melpomene"}
    crossed = table[table["is_hybrid"]].iloc[0]
    assert crossed["parent_1"] and crossed["parent_2"] and crossed["subspecies"] == ""


def test_missing_column_is_named(train_rows, taxa):
    with pytest.raises(TableError, match=r"(?s)train\.csv.*missing column 'filename'"):
        normalise(train_rows.head(5).drop(columns="filename"), taxa)


def test_unknown_code_names_line_and_column(train_rows, taxa):
    rows = train_rows.head(10).copy()
    rows.loc[6, "subspecies"] = "99.0"
    with pytest.raises(TableError) as caught:
        normalise(rows, taxa)
    assert "line 8, column 'subspecies': not a known subspecies code" in str(caught.value)
    assert "'99.0'" in str(caught.value)


def test_duplicate_id_names_both_lines(train_rows, taxa):
    rows = train_rows.head(10).copy()
    rows.loc[9, "filename"] = rows.loc[4, "filename"]
    with pytest.raises(TableError) as caught:
        normalise(rows, taxa)
    message = str(caught.value)
    assert "line 6, column 'filename': duplicate value" in message
    assert "line 11, column 'filename': duplicate value" in message


def test_empty_label_of_a_non_hybrid(train_rows, taxa):
    rows = train_rows[train_rows["hybrid_stat"] == "non-hybrid"].head(4).copy()
    rows.iloc[2, rows.columns.get_loc("subspecies")] = ""
    with pytest.raises(TableError, match=r"line 4, column 'subspecies': empty label"):
        normalise(rows, taxa)


def test_hybrid_without_parents(train_rows, taxa):
    rows = train_rows[train_rows["hybrid_stat"] == "hybrid"].head(3).copy()
    rows.iloc[1, rows.columns.get_loc("parent_subspecies_2")] = ""
    with pytest.raises(TableError, match=r"line 3, column 'parent_subspecies_1/2'"):
        normalise(rows, taxa)


def test_reference_table_problems(dev_rows, taxa):
    rows = dev_rows.head(6).copy()
    rows.loc[1, "subspecies_ref"] = "cyrbia x unknownia"
    rows.loc[2, "ssp_indicator"] = "major-ish"
    with pytest.raises(TableError) as caught:
        normalise(rows, taxa, "dev")
    message = str(caught.value)
    assert "line 3, column 'subspecies_ref': unknown subspecies name" in message
    assert "line 4, column 'ssp_indicator'" in message


def test_hybrid_stat_must_agree_with_the_name(dev_rows, taxa):
    rows = dev_rows[dev_rows["hybrid_stat"] == "0"].head(3).copy()
    rows.iloc[0, rows.columns.get_loc("hybrid_stat")] = "1"
    with pytest.raises(TableError, match=r"line 2, column 'hybrid_stat': 1 disagrees"):
        normalise(rows, taxa, "dev")


def test_taxa_table_rejects_repeated_codes(tmp_path):
    path = tmp_path / "taxa.csv"
    path.write_text("code,subspecies,species\n1,a,x\n1.0,b,x\n")
    with pytest.raises(TableError, match=r"line 3, column 'code'"):
        Taxa.read(path)


def test_merge_rejects_an_id_in_two_tables(train_rows, dev_rows, taxa, tmp_path):
    train = normalise(train_rows.head(3), taxa)
    dev = normalise(dev_rows.head(3), taxa, "dev")
    dev.loc[0, "image_id"] = train.loc[1, "image_id"]
    for name, table in {"train": train, "dev": dev}.items():
        table.to_csv(tmp_path / f"{name}.csv", index=False)
    out = tmp_path / "metadata.csv"
    with pytest.raises(TableError, match=f"{train.loc[1, 'image_id']}' appears in tables train, dev"):
        metadata_step([str(tmp_path / "train.csv"), str(tmp_path / "dev.csv")], str(out))
    dev.loc[0, "image_id"] = "unique"
    dev.to_csv(tmp_path / "dev.csv", index=False)
    metadata_step([str(tmp_path / "train.csv"), str(tmp_path / "dev.csv")], str(out))
    merged = read_metadata(out)
    assert len(merged) == 6 and merged["is_hybrid"].dtype == bool


@pytest.mark.parametrize("code", ["1e1", "-0", "8.5", "0x8", " "])
def test_codes_must_be_whole_numbers(train_rows, taxa, code):
    rows = train_rows[train_rows["hybrid_stat"] == "non-hybrid"].head(3).copy()
    rows.iloc[1, rows.columns.get_loc("subspecies")] = code
    with pytest.raises(TableError, match=r"line 3, column 'subspecies'"):
        normalise(rows, taxa)


def test_whole_number_codes_in_either_spelling(train_rows, taxa):
    rows = train_rows[train_rows["hybrid_stat"] == "non-hybrid"].head(2).copy()
    rows.iloc[0, rows.columns.get_loc("subspecies")] = "8"
    rows.iloc[1, rows.columns.get_loc("subspecies")] = "08.00"
    assert list(normalise(rows, taxa)["subspecies"]) == ["lativitta", "lativitta"]


def test_a_hybrid_row_must_not_name_a_subspecies(train_rows, taxa):
    rows = train_rows[train_rows["hybrid_stat"] == "hybrid"].head(3).copy()
    rows.iloc[2, rows.columns.get_loc("subspecies")] = "8.0"
    with pytest.raises(TableError, match=r"line 4, column 'subspecies': a hybrid row must leave subspecies empty"):
        normalise(rows, taxa)


def test_a_hybrid_needs_two_different_parents(train_rows, dev_rows, taxa):
    rows = train_rows[train_rows["hybrid_stat"] == "hybrid"].head(2).copy()
    rows.iloc[0, rows.columns.get_loc("parent_subspecies_2")] = rows.iloc[0]["parent_subspecies_1"]
    with pytest.raises(
        TableError, match=r"line 2, column 'parent_subspecies_1/2': a hybrid needs two different parents"
    ):
        normalise(rows, taxa)
    reference = dev_rows[dev_rows["hybrid_stat"] == "1"].head(2).copy()
    reference.iloc[1, reference.columns.get_loc("subspecies_ref")] = "cyrbia x cyrbia"
    with pytest.raises(TableError, match=r"line 3, column 'subspecies_ref': a hybrid needs two different parents"):
        normalise(reference, taxa, "dev")


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("latin-1", r"line 4, character \d+: byte 0xe9 is not UTF-8"), ("utf-16", r"line 1: the table is UTF-16 text")],
)
def test_a_table_that_is_not_utf8_names_the_line(heliconius, tmp_path, capsys, encoding, expected):
    from hybridwing.cli import main

    lines = (heliconius / "train.csv").read_text().splitlines()[:6]
    lines[3] = lines[3].replace(lines[3].split(",")[0], lines[3].split(",")[0] + "\u00e9", 1)
    table = tmp_path / "accented.csv"
    table.write_bytes("\n".join(lines).encode(encoding))
    assert main(["check-table", str(table)]) == 1
    error = capsys.readouterr().err
    assert str(table) in error and re.search(expected, error), error


def test_a_table_with_a_header_and_no_rows_is_refused(heliconius, tmp_path, capsys):
    from hybridwing.cli import main

    table = tmp_path / "header_only.csv"
    table.write_text((heliconius / "train.csv").read_text().splitlines()[0] + "\n")
    assert main(["check-table", str(table)]) == 1
    assert f"{table}: 1 problem(s)\n  the table has a header but no rows" in capsys.readouterr().err


def check(table_path, capsys, *extra) -> tuple[int, str]:
    from hybridwing.cli import main

    status = main(["check-table", str(table_path), *extra])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_contradictory_labels_are_named_with_their_lines(train_rows, tmp_path, capsys):
    """One photograph (md5) under two file names with different subspecies, and one
    specimen (CAMID) with two subspecies, fail check-table (and so the fetch) naming both lines."""
    rows = train_rows[train_rows["hybrid_stat"] == "non-hybrid"].head(6).reset_index(drop=True)
    rows.loc[1, "subspecies"] = "1.0" if rows.loc[0, "subspecies"] != "1.0" else "2.0"
    rows.loc[1, "md5"] = rows.loc[0, "md5"]
    rows.loc[3, "subspecies"] = "1.0" if rows.loc[2, "subspecies"] != "1.0" else "2.0"
    rows.loc[3, "CAMID"] = rows.loc[2, "CAMID"]
    path = tmp_path / "contradictory.csv"
    rows.to_csv(path, index=False)
    status, text = check(path, capsys)
    assert status == 1
    assert re.search(r"one photograph \(md5\) '[0-9a-f]{32}' has different labels: line 2 '\w+', line 3 '\w+'", text), (
        text
    )
    assert re.search(r"one specimen \(CAMID\) '[^']+' has different labels: line 4 '\w+', line 5 '\w+'", text), text
    rows.loc[1, "subspecies"], rows.loc[3, "subspecies"] = rows.loc[0, "subspecies"], rows.loc[2, "subspecies"]
    rows.to_csv(path, index=False)
    assert check(path, capsys)[0] == 0, "the same label twice is no contradiction"


@pytest.mark.parametrize("name", ["hybrid", "Hybrid", "lativitta x notabilis"])
def test_a_taxa_row_may_not_use_the_hybrid_names(train_rows, tmp_path, capsys, name):
    """A subspecies called 'hybrid' (or 'a x b') would silently join the hybrid class."""
    taxa = tmp_path / "taxa.csv"
    taxa.write_text(f"code,subspecies,species\n8,lativitta,erato\n99,{name},erato\n")
    table = tmp_path / "t.csv"
    train_rows[train_rows["subspecies"] == "8.0"].head(3).to_csv(table, index=False)
    status, text = check(table, capsys, "--taxa", str(taxa))
    assert status == 1 and f"line 3, column 'subspecies': {name!r} is reserved for hybrids" in text, text


def test_a_trailing_comma_on_every_row_is_read_and_lines_stay_true(train_rows, tmp_path, capsys):
    """Trailing commas used to turn the first column into the index (a traceback in
    line_of); a quoted line break inside a cell used to shift every later line by one."""
    rows = train_rows[train_rows["hybrid_stat"] == "non-hybrid"].head(5).reset_index(drop=True)
    text = rows.to_csv(index=False)
    lines = text.splitlines()
    trailing = tmp_path / "trailing.csv"
    trailing.write_text("\n".join([lines[0]] + [line + "," for line in lines[1:]]) + "\n")
    status, out = check(trailing, capsys)
    assert status == 0 and "5 images" in out, out
    lines[2] += ",surplus"
    trailing.write_text("\n".join(lines) + "\n")
    status, out = check(trailing, capsys)
    assert status == 1 and "line 3: 1 cell(s) beyond the header's 10 columns ('surplus')" in out, out

    rows.loc[0, "zenodo_link"] = "first line\nsecond line"
    rows.loc[3, "subspecies"] = "99"
    quoted = tmp_path / "quoted.csv"
    rows.to_csv(quoted, index=False)
    assert quoted.read_text().splitlines()[5].startswith(rows.loc[3, "CAMID"]), "row 4 starts on line 6 of the file"
    status, out = check(quoted, capsys)
    assert status == 1 and "line 6, column 'subspecies'" in out, out


def test_a_second_column_of_the_same_name_is_refused_not_ignored(heliconius, tmp_path, capsys):
    lines = (heliconius / "dev.csv").read_text().splitlines()[:5]
    table = tmp_path / "two_subspecies.csv"
    table.write_text("\n".join([lines[0] + ",subspecies_ref", *(line + ",malleti" for line in lines[1:])]) + "\n")
    status, out = check(table, capsys)
    assert status == 1 and "line 1: column 'subspecies_ref' appears 2 times; keep one" in out, out
