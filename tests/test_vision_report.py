"""A classification run's folder gets the data's report: per-class accuracy and a confusion matrix."""
import json

import pytest

from xformer.config import from_dict
from xformer.train.config import ExperimentConfig
from xformer.train.run import evaluate_run, train_run

RECIPE = {
    "model": {"architecture": "encoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
              "tokenizer": {"name": "image_patches", "args": {"patch_size": 2}},
              "head": {"name": "classification", "args": {"pool": "cls"}}},
    "data": {"name": "digits", "args": {"val_fraction": 0.1}},
    "train": {"steps": 6, "batch_size": 32, "lr": 3e-3, "eval_every": 3, "log_every": 3, "device": "cpu"},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("vit_report")
    metrics = train_run(from_dict(ExperimentConfig, RECIPE), run_dir)
    return run_dir, metrics


def test_train_run_writes_the_test_report_of_the_best_checkpoint(run):
    run_dir, metrics = run
    png = run_dir / "test_confusion_matrix.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((run_dir / "test_classification.json").read_text())
    assert report["class_names"] == [str(k) for k in range(10)]
    per_class, support = report["per_class_accuracy"], report["support"]
    assert sum(support.values()) == 360 and set(per_class) == set(support) == set(report["class_names"])
    # per-class accuracy averaged over the test images (weighted by support) is the run's test accuracy
    mean = sum(per_class[k] * support[k] for k in per_class) / sum(support.values())
    assert mean == pytest.approx(metrics["test_accuracy"], abs=1e-12)
    assert report["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-12)
    cm = report["confusion_matrix"]
    assert [sum(row) for row in cm] == [support[k] for k in report["class_names"]]


def test_evaluate_writes_nothing(run):
    run_dir, metrics = run
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}
    again = evaluate_run(run_dir)
    assert again["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before


def test_no_report_without_a_report_hook(tmp_path):
    recipe = {"model": {"architecture": "encoder-decoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2},
                        "tokenizer": {"name": "seq2seq_text"}, "head": {"name": "causal_lm"}},
              "data": {"name": "reverse_digits", "args": {"n_train": 64, "n_val": 16, "n_test": 16}},
              "train": {"steps": 2, "batch_size": 16, "eval_every": 2, "device": "cpu"}}
    train_run(from_dict(ExperimentConfig, recipe), tmp_path)
    assert not list(tmp_path.glob("*_classification.json")) and not list(tmp_path.glob("*confusion*"))
