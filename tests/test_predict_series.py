"""`xformer predict` on a series classifier's run: new series (UCR lines with or without labels, an .npz, (N, C, L)
with the run's layout) classified with the run's scaling; the probabilities are those the run's own evaluation
gives the same series (its test split, through the model and the saved scaler), and bad inputs are one line."""
import csv
import io
import json

import numpy as np
import pytest
import torch

from series_class_helpers import train_on_waves, ucr
from xformer.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("series_predict")
    x_test, y_test = train_on_waves(root)
    return root, x_test, y_test


def predicted(capsys, *argv):
    assert main(["predict", *map(str, argv)]) == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_predictions_are_the_runs_own_on_its_test_series(run, capsys):
    from xformer.train.run import load_run

    root, x_test, y_test = run
    rows = predicted(capsys, root / "run", root / "TEST.tsv")
    assert [r["file"] for r in rows] == [f"{root / 'TEST.tsv'}:{i}" for i in range(1, 11)]
    _, model, data = load_run(root / "run")
    with torch.no_grad():  # the run's test split: the same series, scaled by the data pipeline
        probs = model({"inputs": data.test.x})["logits"].softmax(-1)
    names = json.loads((root / "run" / "classes.json").read_text())["class_names"]
    for row, p in zip(rows, probs):
        assert row["class"] == names[int(p.argmax())] and float(row["probability"]) == pytest.approx(float(p.max()),
                                                                                                     abs=1e-5)
    assert sum(r["class"] == label for r, label in zip(rows, y_test)) >= 8  # it learned slow from fast

    (root / "new.tsv").write_text(ucr(x_test))  # unlabelled: the values alone
    assert [r["class"] for r in predicted(capsys, root / "run", root / "new.tsv")] == [r["class"] for r in rows]
    np.savez(root / "new.npz", X=x_test[:, :, None])
    assert [r["probability"] for r in predicted(capsys, root / "run", root / "new.npz")] == \
        [r["probability"] for r in rows]


@pytest.mark.parametrize("content, words", [
    ("1\t2\t3\n", "its longest line holds 3 fields; the run reads series of 32 values"),
    ("slow\t" + "\t".join(["1.0"] * 31 + ["?"]) + "\n", "series 1 have missing values"),
])
def test_bad_series_inputs_are_one_line(run, tmp_path, capsys, content, words):
    root, _, _ = run
    (tmp_path / "bad.tsv").write_text(content)
    assert main(["predict", str(root / "run"), str(tmp_path / "bad.tsv")]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1, err
