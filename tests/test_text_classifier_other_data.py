"""A text classifier's run scored on other labelled files, as Hugging Face's run_glue scores a validation file
with the model's label2id: the run writes classes.json, other data gets the run's classes (data.args.labels),
a label the run does not know is refused in one line, and val_fraction + test_fraction = 1 scores every row
(the counts of correct rows are checked against `xformer predict` on the same file). A UTF-8 byte-order mark
(Excel's "CSV UTF-8") is not part of the first column's name."""
from __future__ import annotations

import csv
import io
import json

import pytest
import yaml

from xformer.cli import main

POS = ["a good fine great film", "great good acting and a fine plot", "fine good great music", "good great fun"]
NEG = ["a bad poor awful film", "awful bad acting and a poor plot", "poor bad awful music", "bad awful dull"]


def table(rows, bom=False) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["text", "label"])
    writer.writerows(rows)
    return ("\ufeff" if bom else "") + out.getvalue()


def one_line(capsys, argv, *words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("textcls")
    rows = [(t + f" {i}", label) for i in range(10) for texts, label in ((POS, "pos"), (NEG, "neg")) for t in texts]
    (root / "train.csv").write_text(table(rows, bom=True), encoding="utf-8")  # a byte-order mark, CRLF line ends
    recipe = {"model": {"architecture": "encoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
                        "tokenizer": {"name": "bert_text"}, "head": {"name": "classification"}},
              "data": {"name": "text_classification",
                       "args": {"files": str(root / "train.csv"), "vocab_size": 80, "min_frequency": 1,
                                "max_length": 16}},
              "train": {"steps": 30, "batch_size": 8, "lr": 3e-3, "eval_every": 30, "warmup_steps": 0}}
    (root / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", str(root / "r.yaml"), "--out", str(root / "run"), "--quiet", "--threads", "1"]) == 0
    return root


def test_the_run_records_its_classes_and_scores_every_row_of_another_file(run, capsys):
    assert json.loads((run / "run" / "classes.json").read_text()) == {"class_names": ["neg", "pos"]}
    held_out = [("good great film", "pos"), ("fine great fun", "pos"), ("awful poor film", "neg")]
    (run / "held_out.csv").write_text(table(held_out), encoding="utf-8")
    capsys.readouterr()
    assert main(["evaluate", str(run / "run"), f"data.args.files={run / 'held_out.csv'}",
                 "data.args.test_fraction=1", "data.args.val_fraction=0"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert main(["predict", str(run / "run"), str(run / "held_out.csv")]) == 0
    predicted = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    right = sum(row["class"] == label for row, (_, label) in zip(predicted, held_out))
    assert metrics["test_accuracy"] == pytest.approx(right / 3)  # every row scored, with the run's class ids
    assert "val_loss" not in metrics

    only_pos = [("good great film", "pos"), ("fine great fun", "pos")]  # lacks a class: still the run's ids
    (run / "only_pos.csv").write_text(table(only_pos), encoding="utf-8")
    assert main(["evaluate", str(run / "run"), f"data.args.files={run / 'only_pos.csv'}",
                 "data.args.test_fraction=1", "data.args.val_fraction=0"]) == 0
    capsys.readouterr()
    one_line(capsys, ["evaluate", str(run / "run"), f"data.args.files={run / 'only_pos.csv'}",
                      "data.args.test_fraction=0", "data.args.val_fraction=0"], "no validation or test split to score")


def test_another_file_is_scored_whole_unless_the_command_splits_it(run, capsys):
    """Other files given without a fraction were split as the run's training file (val 0.1, test 0.1): a tenth
    of the rows scored as test, another as val. Now every row is scored as the test split; fractions given on the
    command line still split it as they say."""
    rows = [(t + f" {i}", label) for i in range(5) for texts, label in ((POS, "pos"), (NEG, "neg")) for t in texts]
    (run / "held_40.csv").write_text(table(rows), encoding="utf-8")
    scored = {}
    for name, fractions in (("default", []), ("whole", ["data.args.test_fraction=1", "data.args.val_fraction=0"]),
                            ("halves", ["data.args.val_fraction=0.5", "data.args.test_fraction=0.5"])):
        capsys.readouterr()
        assert main(["evaluate", str(run / "run"), f"data.args.files={run / 'held_40.csv'}", *fractions]) == 0
        scored[name] = json.loads(capsys.readouterr().out)
    assert scored["default"] == scored["whole"] and set(scored["whole"]) == {"test_loss", "test_accuracy",
                                                                            "test_macro_f1"}
    assert {"val_accuracy", "test_accuracy"} <= set(scored["halves"])
    assert main(["predict", str(run / "run"), str(run / "held_40.csv")]) == 0
    predicted = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    right = sum(row["class"] == label for row, (_, label) in zip(predicted, rows))
    assert scored["default"]["test_accuracy"] == pytest.approx(right / len(rows))  # all 40 rows


def test_other_label_names_are_refused_not_mapped_onto_the_runs(run, capsys):
    renamed = [(t, "a_pos") for t in POS] + [(t, "z_neg") for t in NEG]  # as many classes, sorted the other way
    (run / "renamed.csv").write_text(table(renamed), encoding="utf-8")
    one_line(capsys, ["evaluate", str(run / "run"), f"data.args.files={run / 'renamed.csv'}"],
             "values ['a_pos', 'z_neg'] are not among data.args.labels ['neg', 'pos']")


def test_a_training_part_is_still_needed_to_train(run, capsys):
    one_line(capsys, ["train", str(run / "r.yaml"), "data.args.val_fraction=0.5", "data.args.test_fraction=0.5",
                      "data.args.tokenizer=" + str(run / "run" / "tokenizer"), "--out", str(run / "x")],
             "has no training split")
    one_line(capsys, ["train", str(run / "r.yaml"), "data.args.test_fraction=1", "data.args.val_fraction=0",
                      "--out", str(run / "x")], "no text to learn a wordpiece vocabulary from")
    # 80 rows, 64 for training: a batch of 128 never fills, and the line says how large one may be
    one_line(capsys, ["train", str(run / "r.yaml"), "train.batch_size=128", "--out", str(run / "x")],
             "has 64 examples, fewer than one batch of train.batch_size=128; set train.batch_size to at most 64")
    assert not (run / "x").exists()


def test_a_model_smaller_than_the_data_is_refused_before_training(run, capsys):
    """Fewer positions than the data's texts, or fewer ids than its vocabulary: one line naming the key, not an
    index error mid-training (and a run evaluated on longer texts is refused as well)."""
    one_line(capsys, ["train", str(run / "r.yaml"), "model.tokenizer.args.max_positions=8", "--out", str(run / "x")],
             "model.tokenizer.args.max_positions is 8, but the data's sequences are up to 16 tokens long")
    one_line(capsys, ["train", str(run / "r.yaml"), "model.tokenizer.args.vocab_size=10", "--out", str(run / "x")],
             "model.tokenizer.args.vocab_size is 10, but the data's vocabulary has")
    one_line(capsys, ["evaluate", str(run / "run"), "data.args.max_length=64"],
             "the data gives tokenizer.max_positions=64, but the model of")
    assert not (run / "x").exists()


def test_json_lines_train_and_predict_as_csv_does(run, tmp_path, capsys):
    """Hugging Face's json files (JSON Lines, or one array; a label may be a number) read as tables: the same
    rows give the same data as the CSV."""
    from xformer.data.text_classification import read_labelled

    rows = [("a good film", "pos"), ('a bad, "awful" film', "neg"), ("fine", "pos")]
    (tmp_path / "t.csv").write_text(table(rows), encoding="utf-8")
    (tmp_path / "t.jsonl").write_text("".join(json.dumps({"text": t, "label": y, "id": i}) + "\n"
                                              for i, (t, y) in enumerate(rows)), encoding="utf-8")
    (tmp_path / "t.json").write_text(json.dumps([{"text": t, "label": y} for t, y in rows]), encoding="utf-8")
    expected = read_labelled(str(tmp_path / "t.csv"))
    assert read_labelled(str(tmp_path / "t.jsonl")) == expected == read_labelled(str(tmp_path / "t.json"))
    (tmp_path / "n.jsonl").write_text("".join(json.dumps({"text": t, "label": int(y == "pos")}) + "\n"
                                              for t, y in rows))
    assert read_labelled(str(tmp_path / "n.jsonl"))[1] == ["1", "0", "1"]

    assert main(["predict", str(run / "run"), str(tmp_path / "t.jsonl")]) == 0
    by_json = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert main(["predict", str(run / "run"), str(tmp_path / "t.csv")]) == 0
    by_csv = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["text"], r["class"]) for r in by_json] == [(r["text"], r["class"]) for r in by_csv]
    assert [r["text"] for r in by_json] == [t for t, _ in rows]  # the text column, not the whole JSON line

    (tmp_path / "bad.jsonl").write_text('{"text": "a", "label": "pos"}\n{"text": "b", label: pos}\n')
    one_line(capsys, ["predict", str(run / "run"), str(tmp_path / "bad.jsonl")], "line 2 is not JSON")
    for content, words in (('{"text": "a", "label": "pos"}\n{"text": "b"}\n', "bad.jsonl:2: the row has no 'label'"),
                           ('{"text": "a", "label": "pos"}\n{"label": "neg"}\n', "bad.jsonl:2: the row has no 'text'"),
                           ('{"text": "a", "label": ["pos"]}\n', "'label' holds a JSON list")):
        (tmp_path / "bad.jsonl").write_text(content)
        with pytest.raises(Exception, match=words):  # before: KeyError tracebacks, lists taken as classes
            read_labelled(str(tmp_path / "bad.jsonl"))


def test_scores_misread_as_classes_and_empty_splits_are_refused(tmp_path, capsys):
    from xformer.data.registry import build_data

    scores = [(f"sentence {i}", f"{i % 50 / 10:.2f}") for i in range(100)]  # STS-B-like scores 0.00 .. 4.90
    (tmp_path / "sts.csv").write_text(table(scores), encoding="utf-8")
    with pytest.raises(Exception, match=r"are numbers such as \['0.10', '0.20', '0.30'\].*50 distinct values"):
        build_data("text_classification", {"files": str(tmp_path / "sts.csv")})
    whole = [(f"sentence {i}", f"{i % 2}.0") for i in range(20)]  # integers written as floats are classes
    (tmp_path / "whole.csv").write_text(table(whole), encoding="utf-8")
    assert build_data("text_classification", {"files": str(tmp_path / "whole.csv"), "vocab_size": 40,
                                              "min_frequency": 1}).model_args["head"]["n_classes"] == 2
    few = [(f"sentence {i}", f"class{i % 10}") for i in range(40)]  # 10 labels of 4 rows: 4 x 0.1 rounds to 0
    (tmp_path / "few.csv").write_text(table(few), encoding="utf-8")
    with pytest.raises(Exception, match=r"val_fraction=0.1 puts no row in the val split.*10 labels.*at most 4"):
        build_data("text_classification", {"files": str(tmp_path / "few.csv")})


def test_a_resorted_table_is_not_taken_for_the_runs_data(run, capsys):
    """The same rows in another order (sorted in a spreadsheet) put other rows in each split: data_split.json's
    SHA-256 of each split's items tells it from the run's data, for evaluate and --resume."""
    original = (run / "train.csv").read_text(encoding="utf-8")
    header, *rows = original.strip("\ufeff").splitlines()
    try:
        (run / "train.csv").write_text("\n".join([header, *sorted(rows)]) + "\n", encoding="utf-8")
        one_line(capsys, ["evaluate", str(run / "run")], "train holds other content, as many examples")
    finally:
        (run / "train.csv").write_text(original, encoding="utf-8")
    assert main(["evaluate", str(run / "run")]) == 0
    capsys.readouterr()


def test_mlm_on_one_text_per_line(tmp_path):
    """A corpus of one text per line, no blank lines, was one document: the validation split came out empty and
    early stopping on val_loss did nothing, silently. Now refused, and line_by_line makes each line a document."""
    from xformer.data.registry import build_data

    lines = [f"review {i}: the film was {'good' if i % 2 else 'bad'} and the music was fine." for i in range(60)]
    (tmp_path / "lines.txt").write_text("\n".join(lines) + "\n")
    args = {"files": str(tmp_path / "lines.txt"), "vocab_size": 60, "min_frequency": 1, "max_length": 64}
    with pytest.raises(Exception, match=r"val_fraction=0.1 puts no document in the val split.*line_by_line=true"):
        build_data("text_mlm", args)
    data = build_data("text_mlm", {**args, "line_by_line": True})
    assert len(data.val) == 6 and len(data.train) == 54  # each line a document, split 54 / 6
