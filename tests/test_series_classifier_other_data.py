"""A series classifier scored on other labelled series: `xformer evaluate RUN data.args.test_path=OTHER` for a run
trained with a test file scores every series of OTHER with the run's scaling (as `xformer predict RUN OTHER` does);
before, any other data was refused with "the data's columns None are not the run's []". A new data.args.path (read
as training data: scaled by its own rows, a tenth scored as validation) and a test file given to a run that held out
20% of its path (its split would move) are refused in one line naming predict."""
import json

import numpy as np
import pytest

from xformer.cli import main

STEPS = ["train.steps=20", "train.eval_every=20", "train.batch_size=16", "--quiet", "--threads", "1"]


def ucr(path, n, shift=0.0, seed=0):
    """A UCR .tsv: label, then 32 values; class 2 a sine, class 1 noise (``shift`` moves every value)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        t = np.arange(32)
        x = (np.sin(t / 3) if i % 2 else rng.normal(size=32) * 0.5) + shift + rng.normal(size=32) * 0.1
        rows.append("\t".join([str(i % 2 + 1), *(f"{v:.4f}" for v in x)]))
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("series_other")
    train, test = ucr(root / "A_TRAIN.tsv", 80), ucr(root / "A_TEST.tsv", 40, seed=1)
    ucr(root / "OTHER.tsv", 40, shift=1.0, seed=2)
    recipe = "tasks/fcn_classify.yaml"
    assert main(["train", recipe, f"data.args.path={train}", f"data.args.test_path={test}", *STEPS,
                 "--out", str(root / "with_test")]) == 0
    assert main(["train", recipe, f"data.args.path={train}", *STEPS, "--out", str(root / "split")]) == 0
    return root


def test_another_test_file_is_scored_with_the_runs_scaling(runs, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(runs / "with_test"), f"data.args.test_path={runs / 'OTHER.tsv'}"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    own = json.loads((runs / "with_test" / "metrics.json").read_text())
    assert metrics["val_loss"] == pytest.approx(own["val_loss"])  # the run's validation series, scaled as in training
    assert main(["predict", str(runs / "with_test"), str(runs / "OTHER.tsv")]) == 0
    said = capsys.readouterr().err
    assert f"accuracy {metrics['test_accuracy']:.4f}, balanced accuracy" in said and "on 40 labelled series" in said


@pytest.mark.parametrize("run, key, words", [
    ("with_test", "path", ("would be read as training data", "xformer predict", "or as data.args.test_path=")),
    ("split", "path", ("would be read as training data", "xformer predict")),
    ("split", "test_path", ("would move the run's split", "xformer predict")),
])
def test_other_series_that_would_be_split_or_scaled_otherwise_are_refused(runs, cli_error, run, key, words):
    line = cli_error(["evaluate", runs / run, f"data.args.{key}={runs / 'OTHER.tsv'}"], *words)
    assert f"xformer predict {runs / run} {runs / 'OTHER.tsv'}" in line
