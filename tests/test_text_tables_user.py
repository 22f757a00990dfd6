"""A Hugging Face user training a text classifier on their own table: Excel's ';' exports (with its 'sep=' line),
Parquet files, over-long texts, labels that differ only in case, 'nan' labels, multi-label cells, unlabelled rows,
and a labelled file given to predict. Tiny throughout."""
from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest

from xformer.config import ConfigError
from xformer.data.text_classification import read_labelled, text_classification
from xformer.predict_text import read_texts

WORDS = ["good", "bad", "film", "story", "plot", "dull", "fine", "great"]
TEXTS = [" ".join(WORDS[(i * 3 + j) % len(WORDS)] for j in range(4)) + f" {i}" for i in range(20)]
LABELS = ["pos" if i % 2 else "neg" for i in range(20)]
SMALL = {"tokenizer": "wordpiece", "vocab_size": 80, "min_frequency": 1, "max_length": 16, "val_fraction": 0.2,
         "test_fraction": 0.2}


def train_tiny(folder):
    """A one-step text classifier of folder/train.csv, in folder/run."""
    from xformer.cli import main

    (folder / "r.yaml").write_text(
        "model: {architecture: encoder, core: {d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32},\n"
        "  tokenizer: {name: bert_text}, head: {name: classification, args: {pool: cls}}}\n"
        f"data: {{name: text_classification, args: {{files: {folder / 'train.csv'}, tokenizer: wordpiece, "
        "vocab_size: 80, min_frequency: 1, max_length: 16}}\n"
        "train: {steps: 1, batch_size: 8, eval_every: 1}\n", encoding="utf-8")
    assert main(["train", str(folder / "r.yaml"), "--out", str(folder / "run"), "--quiet", "--threads", "1"]) == 0

def excel(path, rows, sep: str, hint: bool):
    """A table as Excel's "CSV UTF-8" writes it: a byte-order mark, CRLF line ends, and (asked) a 'sep=' line."""
    lines = ([f"sep={sep}"] if hint else []) + [f"text{sep}label"] + [f"{t}{sep}{y}" for t, y in rows]
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    return path


@pytest.mark.parametrize("hint", [False, True])
def test_a_semicolon_excel_export_is_refused_with_the_pandas_fix(tmp_path, hint):
    """It was 'has no column 'text' (its header: sep=;)' (or 'text;label'), not saying what the file is; the series
    reader said it, but with a fix that reads a 'sep=;' line as the header."""
    path = excel(tmp_path / "excel.csv", zip(TEXTS, LABELS), ";", hint)
    skip = ", skiprows=1" if hint else ""
    for read in (lambda: read_labelled(str(path)), lambda: read_texts([str(path)])):
        with pytest.raises(ConfigError, match=f"separated by ';'.*sep=';'{skip}\\)"):
            read()
    from xformer.data.csv_files import read_csv_file
    with pytest.raises(ConfigError, match=f"separated by ';'.*sep=';'{skip}\\)"):
        read_csv_file(path)


def test_a_sep_comma_line_declares_the_comma_separated_table_it_precedes(tmp_path):
    """Excel's 'sep=,' first line was read as the header: 'has no column 'text' (its header: sep=, )'."""
    path = excel(tmp_path / "excel.csv", zip(TEXTS, LABELS), ",", True)
    assert read_labelled(str(path)) == (TEXTS, LABELS)
    assert [row[1] for row in read_texts([str(path)])] == TEXTS
    from xformer.data.csv_files import read_csv_file
    assert list(read_csv_file(path).columns) == ["text", "label"]


def test_a_parquet_table_trains_and_predicts(tmp_path):
    """Hugging Face's datasets are Parquet files; one was 'not UTF-8 text ... iconv -t utf-8'. Its labels are read
    as a CSV writes them (1, 1.0, True), a missing label is refused as in a CSV."""
    for labels, expected in (([i % 2 for i in range(20)], ["0", "1"]), ([bool(i % 2) for i in range(20)],
                                                                          ["False", "True"])):
        pd.DataFrame({"text": TEXTS, "label": labels}).to_parquet(tmp_path / "t.parquet")
        texts, found = read_labelled(str(tmp_path / "t.parquet"))
        assert texts == TEXTS and sorted(set(found)) == expected
    data = text_classification(files=str(tmp_path / "t.parquet"), **SMALL)
    assert data.model_args["head"]["n_classes"] == 2
    assert [row[1] for row in read_texts([str(tmp_path / "t.parquet")])] == TEXTS
    frame = pd.DataFrame({"text": TEXTS, "label": [None] + LABELS[1:]})
    frame.to_parquet(tmp_path / "gap.parquet")
    with pytest.raises(ConfigError, match="no 'label' value"):
        read_labelled(str(tmp_path / "gap.parquet"))
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(ConfigError, match="cannot be read as Parquet"):
        read_labelled(str(tmp_path / "bad.parquet"))


def test_texts_longer_than_max_length_are_cut_and_said_once(tmp_path):
    """A review of 1,000 words was cut to max_length silently; now one warning says how many were cut."""
    texts = list(TEXTS)
    texts[3] = "good film " * 300
    texts[5] = "dull plot " * 200
    pd.DataFrame({"text": texts, "label": LABELS}).to_csv(tmp_path / "long.csv", index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text_classification(files=str(tmp_path / "long.csv"), **SMALL)
    said = [str(w.message) for w in caught if "max_length" in str(w.message)]
    assert len(said) == 1 and "2 of 20 texts" in said[0] and "max_length=16" in said[0], said


def test_labels_that_differ_only_in_case_or_spaces_are_said(tmp_path):
    """'Pos' beside 'pos' became a third class silently; trailing spaces were already stripped ('pos ' is 'pos')."""
    labels = [("Pos" if i % 4 == 1 else "pos ") if i % 2 else "neg" for i in range(20)]
    pd.DataFrame({"text": TEXTS, "label": labels}).to_csv(tmp_path / "case.csv", index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = text_classification(files=str(tmp_path / "case.csv"), **SMALL)
    assert data.model_args["head"]["n_classes"] == 3  # they may be meant apart: said, not merged
    said = [str(w.message) for w in caught if "case" in str(w.message)]
    assert len(said) == 1 and "'Pos'" in said[0] and "'pos'" in said[0], said


def test_nan_written_as_a_label_is_a_missing_label(tmp_path):
    """df['label'].astype(str).to_csv(...) writes a missing label as 'nan': it became a class of its own."""
    labels = ["nan" if i == 4 else y for i, y in enumerate(LABELS)]
    pd.DataFrame({"text": TEXTS, "label": labels}).to_csv(tmp_path / "nan.csv", index=False)
    with pytest.raises(ConfigError, match=r"nan.csv:6: the row has no 'label' value \(1 row without one, 'nan' "
                                          "being how pandas writes.*dropna"):
        read_labelled(str(tmp_path / "nan.csv"))


def test_rows_without_a_label_are_counted_and_the_fix_named(tmp_path):
    frame = pd.DataFrame({"text": TEXTS, "label": [None if i in (2, 9, 11) else y for i, y in enumerate(LABELS)]})
    frame.to_csv(tmp_path / "gaps.csv", index=False)
    with pytest.raises(ConfigError, match=r"gaps.csv:4: the row has no 'label' value \(3 rows without one\)"
                                          r".*dropna\(subset=\['label'\]"):
        read_labelled(str(tmp_path / "gaps.csv"))


def test_a_multi_label_column_is_refused_unless_its_classes_are_given(tmp_path):
    """'a,b' beside 'a' and 'b' (a text of two classes) became a third class silently: xformer's classifier gives
    one class per text (softmax), not Hugging Face's multi_label_classification."""
    labels = ["sports,politics" if i % 3 == 0 else ("sports" if i % 3 == 1 else "politics") for i in range(20)]
    pd.DataFrame({"text": TEXTS, "label": labels}).to_csv(tmp_path / "multi.csv", index=False)
    with pytest.raises(ConfigError, match=r"'sports,politics'.*multi-label.*data\.args\.labels"):
        text_classification(files=str(tmp_path / "multi.csv"), **SMALL)
    data = text_classification(files=str(tmp_path / "multi.csv"), labels=["politics", "sports", "sports,politics"],
                               **SMALL)
    assert data.model_args["head"]["n_classes"] == 3


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from xformer.cli import main

    folder = tmp_path_factory.mktemp("cls")
    pd.DataFrame({"text": TEXTS, "label": LABELS}).to_csv(folder / "train.csv", index=False)
    train_tiny(folder)
    return folder


def test_predict_scores_a_file_that_holds_the_label_column(run, capsys):
    """A labelled file given to predict had its labels dropped; now they are kept beside the classes and scored,
    as a series classifier's labelled files are. A file without the column is classified as before."""
    from xformer.cli import main

    pd.DataFrame({"text": TEXTS[:6], "label": LABELS[:5] + ["neutral"]}).to_csv(run / "labelled.csv", index=False)
    capsys.readouterr()
    assert main(["predict", str(run / "run"), str(run / "labelled.csv"), "--top-k", "1"]) == 0
    out, err = capsys.readouterr()
    table = pd.read_csv(pd.io.common.StringIO(out))
    assert list(table.columns[:4]) == ["file", "text", "label", "class"] and list(table["label"]) == LABELS[:5] + [
        "neutral"]
    right = sum(table["label"] == table["class"])
    assert f"accuracy {right / 6:.4f}" in err and "on 6 labelled texts" in err and "'neutral'" in err, err
    pd.DataFrame({"text": TEXTS[:3]}).to_csv(run / "plain.csv", index=False)
    assert main(["predict", str(run / "run"), str(run / "plain.csv")]) == 0
    out, err = capsys.readouterr()
    assert "label" not in out.splitlines()[0] and "accuracy" not in err


def test_predict_says_once_how_many_texts_it_cut(run, capsys):
    from xformer.cli import main

    pd.DataFrame({"text": ["good film " * 100, "dull plot " * 50, "fine"]}).to_csv(run / "long.csv", index=False)
    capsys.readouterr()
    assert main(["predict", str(run / "run"), str(run / "long.csv")]) == 0
    err = capsys.readouterr().err
    assert err.count("xformer: warning: 2 of 3 texts are longer than max_length=16") == 1, err


def test_a_held_out_file_with_a_class_the_run_lacks_names_the_ways_out(run, cli_error):
    """It said 'give rows labelled with those names', which a file of a fourth class cannot do."""
    pd.DataFrame({"text": TEXTS[:4], "label": ["pos", "neg", "neutral", "pos"]}).to_csv(run / "held.csv", index=False)
    cli_error(["evaluate", run / "run", f"data.args.files={run / 'held.csv'}", "data.args.test_fraction=1",
               "data.args.val_fraction=0"], "['neutral'] are not among", "drop", "xformer predict")


def test_rows_of_empty_cells_that_excel_leaves_are_no_rows(run, capsys):
    """',,' lines (rows Excel exports after cleared cells) were refused as rows without a label in training, and
    classified as empty texts by predict."""
    from xformer.cli import main

    path = run / "trailing.csv"
    path.write_bytes(b"text,label\r\ngood film,pos\r\ndull plot,neg\r\n,\r\n , \r\n")
    assert read_labelled(str(path)) == (["good film", "dull plot"], ["pos", "neg"])
    capsys.readouterr()
    assert main(["predict", str(run / "run"), str(path)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_hugging_faces_minus_one_test_labels_are_no_labels_to_predict(run, capsys):
    """GLUE's test splits hold label -1 (no label), and load_dataset(...)['test'].to_csv() keeps them: predict scored
    every row wrong against a class '-1' the run does not have."""
    from xformer.cli import main

    pd.DataFrame({"idx": range(3), "text": TEXTS[:3], "label": [-1, -1, -1]}).to_csv(run / "test.csv", index=False)
    capsys.readouterr()
    assert main(["predict", str(run / "run"), str(run / "test.csv")]) == 0
    out, err = capsys.readouterr()
    assert "accuracy" not in err and out.splitlines()[0].startswith("file,text,class,")


def test_a_windows_encoded_csv_names_a_conversion_that_works(tmp_path):
    """'iconv -t utf-8' converts from the locale's encoding, UTF-8 on most machines: it fails on the same byte."""
    path = tmp_path / "excel.csv"
    path.write_bytes("text,label\r\ncafé très bon,pos\r\n".encode("cp1252"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text.*iconv -f cp1252 -t utf-8.*CSV UTF-8"):
        read_labelled(str(path))


def test_whole_number_labels_match_the_runs_classes_in_either_spelling(tmp_path, capsys):
    """A column with a gap is float in pandas and is written 1.0: a run trained on it (classes '0.0', '1.0') refused
    a held-out file labelled 0 / 1 ('not among data.args.labels'), and predict scored its rows all wrong."""
    from xformer.cli import main

    frame = pd.DataFrame({"text": TEXTS, "label": [float(i % 2) for i in range(20)]})
    frame.to_csv(tmp_path / "train.csv", index=False)
    train_tiny(tmp_path)
    frame.assign(label=[i % 2 for i in range(20)]).to_csv(tmp_path / "held.csv", index=False)
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run"), f"data.args.files={tmp_path / 'held.csv'}",
                 "data.args.test_fraction=1", "data.args.val_fraction=0"]) == 0
    evaluated = capsys.readouterr().out
    assert main(["predict", str(tmp_path / "run"), str(tmp_path / "held.csv")]) == 0
    out, err = capsys.readouterr()
    table = pd.read_csv(pd.io.common.StringIO(out), dtype=str)
    right = (table["label"].astype(float) == table["class"].astype(float)).mean()
    assert f"accuracy {right:.4f}" in err and "does not know" not in err, err
    assert abs(json.loads(evaluated)["test_accuracy"] - right) < 1e-9


def test_boolean_labels_match_in_jsons_and_pandas_spelling():
    """JSON writes true / false, pandas' CSV and a Parquet file True / False: a run trained on one refused the
    other's held-out file."""
    from xformer.data.text_classification import as_class, given_labels

    assert [as_class(label, ["False", "True"]) for label in ("true", "false", "TRUE")] == ["True", "False", "True"]
    assert given_labels(["false", "true"], ["True", "False"], "t.csv", "label") == (["false", "true"],
                                                                                  ["true", "false"])
    assert as_class("Pos", ["neg", "pos"]) == "Pos"  # other labels keep their case


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_list_of_labels_in_a_cell_is_named_multi_label(suffix, tmp_path):
    """Hugging Face's multi-label data sets hold a list per row; it was refused as 'holds a JSON list, not a string
    or number' (Parquet: 'cannot be read as CSV / TSV'), without saying what such a list is."""
    rows = [{"text": TEXTS[i], "label": ["pos", "neg"] if i == 3 else [LABELS[i]]} for i in range(20)]
    path = tmp_path / f"x{suffix}"
    if suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(row) for row in rows))
    else:
        pd.DataFrame(rows).to_parquet(path)
    kind = "JSON Lines" if suffix == ".jsonl" else "Parquet"
    with pytest.raises(ConfigError, match=f"cannot be read as {kind} .*several values in one cell, as multi-label "
                                          "classes are held") as e:
        read_labelled(str(path))
    assert "\n" not in str(e.value)
