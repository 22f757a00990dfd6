"""A time-series classification user's own files, as an sktime / aeon / tsai user brings them: the metrics of
imbalanced classes (balanced accuracy, macro F1), `xformer predict` on a labelled file (its accuracy, the labels
beside the predictions), a shorter series refused naming the length to use, float labels of a test file that
holds some of the classes, and series shorter than the tokenizer's patch."""
import csv
import io
import json

import numpy as np
import pytest
import yaml

from series_class_helpers import RECIPE, train_on_waves, ucr, waves
from xformer.cli import main
from xformer.config import ConfigError
from xformer.data.registry import build_data

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("seriescls_audit")
    train_on_waves(root)
    return root


def test_runs_report_balanced_accuracy_and_macro_f1(run):
    """Before: accuracy alone, which a majority class inflates (UCR sets are often imbalanced)."""
    metrics = json.loads((run / "run" / "metrics.json").read_text())
    report = json.loads((run / "run" / "test_classification.json").read_text())
    for key in ("balanced_accuracy", "macro_f1"):
        assert 0 <= metrics[f"test_{key}"] <= 1 and metrics[f"val_{key}"] >= 0
        assert report[key] == pytest.approx(metrics[f"test_{key}"])


def test_balanced_accuracy_and_macro_f1_are_sklearns():
    from sklearn.metrics import balanced_accuracy_score, f1_score

    from xformer.metrics_classification import classification_report

    y_true, y_pred = np.array([0, 0, 0, 0, 0, 0, 1, 2, 2]), np.array([0, 0, 0, 0, 0, 1, 0, 2, 0])
    report = classification_report(y_true, y_pred, 4, ["a", "b", "c", "unseen"])
    assert report["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert report["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))


def predicted(capsys, *argv):
    assert main(["predict", *map(str, argv)]) == 0
    captured = capsys.readouterr()
    return list(csv.DictReader(io.StringIO(captured.out))), captured.err


def test_predict_on_a_labelled_file_keeps_the_labels_and_scores_them(run, capsys):
    """Before: the labels of the archive's own test file were dropped unread; sktime's score(X, y) had no
    counterpart short of xformer evaluate with data overrides."""
    rows, err = predicted(capsys, run / "run", run / "TEST.tsv")
    truth = [line.split("\t")[0] for line in (run / "TEST.tsv").read_text().splitlines()]
    assert [r["label"] for r in rows] == truth
    hits = sum(r["label"] == r["class"] for r in rows)
    assert f"accuracy {hits / len(rows):.4f}" in err and "10 labelled series" in err and "balanced" in err, err
    metrics = json.loads((run / "run" / "metrics.json").read_text())
    assert f"accuracy {metrics['test_accuracy']:.4f}" in err  # the run's own score of the same file
    x, y = waves(10, 1)
    np.savez(run / "labelled.npz", X=x[:, :, None], y=y)
    rows, err = predicted(capsys, run / "run", run / "labelled.npz")
    assert [r["label"] for r in rows] == y.tolist() and "10 labelled series" in err
    (run / "new.tsv").write_text(ucr(x))  # unlabelled: no label column, no score
    rows, err = predicted(capsys, run / "run", run / "new.tsv")
    assert "label" not in rows[0] and "accuracy" not in err


def test_predict_counts_a_class_the_run_never_saw_as_wrong(run, capsys):
    x, _ = waves(4, 2)
    (run / "other.tsv").write_text(ucr(x, ["slow", "slow", "medium", "medium"]))
    rows, err = predicted(capsys, run / "run", run / "other.tsv")
    assert [r["label"] for r in rows] == ["slow", "slow", "medium", "medium"]
    assert "classes the run does not know: ['medium']" in err, err


def test_a_shorter_series_is_refused_naming_the_length_to_use(run, tmp_path, capsys):
    """Before: "series 1, 2 have missing values (or are shorter) ... give whole series", no length named."""
    np.savez(tmp_path / "short.npz", X=np.zeros((2, 16, 1)))
    assert main(["predict", str(run / "run"), str(tmp_path / "short.npz")]) == 2
    err = capsys.readouterr().err
    assert "series of 16 steps x 1 channels" in err and "give series of 32 steps and 1 channels" in err, err
    assert err.count("\n") == 1


def test_float_labels_of_a_test_file_holding_some_classes(tmp_path):
    """Labels 1.0 and 2.5: a test file holding only class 1.0 read it as "1", refused as a class not in train."""
    x, y = waves(20, 0, labels=("1.0", "2.5"))
    (tmp_path / "train.tsv").write_text(ucr(x, y))
    (tmp_path / "test.tsv").write_text(ucr(x[y == "1.0"], y[y == "1.0"]))
    bundle = build_data("series_classification", {"path": str(tmp_path / "train.tsv"), "val_fraction": 0,
                                                  "test_path": str(tmp_path / "test.tsv")})
    assert bundle.test.y.tolist() == [0] * 10


def test_series_shorter_than_the_patch_name_the_fix(tmp_path, capsys):
    x, y = waves(20, 0, length=5)
    (tmp_path / "tiny.tsv").write_text(ucr(x, y))
    recipe = {**RECIPE, "data": {"name": "series_classification", "args": {"path": str(tmp_path / "tiny.tsv")}}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "patch_len=8 is longer than input_len=5" in err and "patch_len of at most 5" in err, err



def series_lines(rows) -> str:
    """UCR lines of (label, values, NaN padding steps)."""
    return "".join(f"{k}\t" + "\t".join(f"{v:.3f}" for v in values) + "\tNaN" * pad + "\n" for k, values, pad in rows)


def test_a_test_file_nan_padded_beyond_the_training_length(tmp_path):
    """Variable-length series padded with NaN file by file: a test file padded past the training file's length was
    refused as another data set ("windows of shape (8, 1) but (6, 1)") though every value fitted."""
    rng = np.random.default_rng(0)
    (tmp_path / "train.tsv").write_text(series_lines([(k, rng.normal(size=6), 0) for k in [1, 2] * 10]))
    ragged = [(k, rng.normal(size=n), 8 - n) for k, n in [(1, 4), (2, 6)] * 3]
    (tmp_path / "ragged.tsv").write_text(series_lines(ragged))
    (tmp_path / "whole.tsv").write_text(series_lines([(k, rng.normal(size=6), 2) for k in [1, 2] * 3]))
    for test, missing in (("ragged.tsv", "ffill"), ("whole.tsv", "error")):
        bundle = build_data("series_classification", {"path": str(tmp_path / "train.tsv"), "missing": missing,
                                                      "test_path": str(tmp_path / test), "val_fraction": 0})
        assert bundle.test.x.shape == (6, 6, 1) and not bundle.test.x.isnan().any()
    (tmp_path / "long.tsv").write_text(series_lines([(1, rng.normal(size=7), 1), (2, rng.normal(size=8), 0)]))
    with pytest.raises(ConfigError, match=r"holds windows of shape \(8, 1\)"):  # a value past step 6: refused
        build_data("series_classification", {"path": str(tmp_path / "train.tsv"), "missing": "ffill",
                                              "test_path": str(tmp_path / "long.tsv")})


@pytest.mark.parametrize("name, content, words", [
    # Before: "9 of 9 series have missing or non-numeric values (e.g. unequal lengths); pass missing=ffill", which
    # then trained on the first value of each line as its class
    ("toy.arff", "@relation Toy\n@attribute t1 numeric\n@attribute c {a,b}\n@data\n0.1,a\n0.3,b\n",
     "an ARFF file"),
    ("last.csv", "0.1,0.2,0.3,a\n0.4,0.5,0.6,b\n0.1,0.2,0.3,a\n0.4,0.5,0.6,b\n", "line 1 holds 'a' where a value"),
    ("word.tsv", "1\t0.1\tabc\t0.3\n2\t0.1\t0.2\t0.3\n", "line 1 holds 'abc' where a value"),
    ("word.ts", "@classLabel true a b\n@data\n1,x,3:a\n1,2,3:b\n", "series 1 holds 'x' where a value"),
])
def test_non_numbers_among_the_values_are_refused_not_filled(tmp_path, name, content, words):
    (tmp_path / name).write_text(content)
    for missing in ("error", "ffill"):
        with pytest.raises(ConfigError, match=words):
            build_data("series_classification", {"path": str(tmp_path / name), "missing": missing})


def test_last_label_and_missing_marks(tmp_path):
    (tmp_path / "last.csv").write_text("0.1,0.2,a\n0.4,0.5,b\n")
    with pytest.raises(ConfigError, match="the label first"):
        build_data("series_classification", {"path": str(tmp_path / "last.csv")})
    (tmp_path / "marks.tsv").write_text("1\t0.1\t?\t0.3\n2\t0.1\tNA\t0.3\n1\tnan\t\t0.3\n")
    from xformer.data.series_classification import read_windows

    x, _ = read_windows(tmp_path / "marks.tsv", missing="ffill")  # ?, NA, an empty field, NaN: missing
    np.testing.assert_allclose(x[:, :, 0], [[0.1, 0.1, 0.3], [0.1, 0.1, 0.3], [0.3, 0.3, 0.3]])


def test_an_unknown_missing_policy_is_one_line(tmp_path):
    """Before: missing=interpolate (a forecasting data's policy) was taken silently for error."""
    (tmp_path / "a.tsv").write_text(series_lines([(k, [0.1, 0.2, 0.3], 0) for k in [1, 2] * 5]))
    with pytest.raises(ConfigError, match="data.args.missing='interpolate'.*error or ffill"):
        build_data("series_classification", {"path": str(tmp_path / "a.tsv"), "missing": "interpolate"})


def test_a_test_file_with_a_class_the_training_file_lacks(tmp_path):
    """Refused (the head has no logit for it), naming the class and the way to score such a file anyway."""
    (tmp_path / "train.tsv").write_text(series_lines([(k, [0.1, 0.2, 0.3], 0) for k in [1, 2] * 5]))
    (tmp_path / "test.tsv").write_text(series_lines([(k, [0.1, 0.2, 0.3], 0) for k in [1, 2, 3]]))
    with pytest.raises(ConfigError, match=r"labels \['3'\] that .* does not.*xformer predict RUN .*test.tsv scores"):
        build_data("series_classification", {"path": str(tmp_path / "train.tsv"),
                                              "test_path": str(tmp_path / "test.tsv")})


def test_predict_on_an_npz_nan_padded_past_the_runs_length(run, capsys):
    """tsai / aeon users pad unequal series with NaN to a file's own maximum; padding past the run's 32 steps that
    holds no value was refused as a series of 40 steps."""
    x, _ = waves(10, 1)
    np.savez(run / "padded.npz", X=np.concatenate([x, np.full((10, 8), np.nan)], axis=1)[:, :, None])
    np.savez(run / "plain.npz", X=x[:, :, None])
    rows, _ = predicted(capsys, run / "run", run / "padded.npz")
    plain, _ = predicted(capsys, run / "run", run / "plain.npz")
    assert [r["probability"] for r in rows] == [r["probability"] for r in plain]
