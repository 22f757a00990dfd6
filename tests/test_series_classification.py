"""Series-window classification: the data sources, the head's channel regrouping, and learning."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.config import ConfigError
from xformer.data.registry import build_data
from xformer.data.series_classification import SYNTHETIC_CONTROL_CLASSES, read_windows, synthetic_control

TASKS = Path(__file__).resolve().parents[1] / "tasks"


def test_synthetic_control_follows_its_definition():
    x, y = synthetic_control(n_per_class=50, seed=3)
    assert x.shape == (300, 60, 1) and np.bincount(y).tolist() == [50] * 6
    again, _ = synthetic_control(n_per_class=50, seed=3)
    np.testing.assert_array_equal(x, again)
    t = np.arange(60)
    slope = np.array([np.polyfit(t, s[:, 0], 1)[0] for s in x])
    assert (slope[y == 2] > 0.1).all() and (slope[y == 3] < -0.1).all()  # g ~ U(0.2, 0.5), noise std ~3.5
    normal = x[y == 0, :, 0]
    assert normal.min() >= 24 and normal.max() <= 36  # m + r s, r in [-3, 3], s = 2
    jump = x[y == 4, 40:, 0].mean(1) - x[y == 4, :20, 0].mean(1)  # t0 in [20, 40]: the shift is up, >= 7.5
    assert (jump > 3).all() and (x[y == 5, 40:, 0].mean(1) < x[y == 5, :20, 0].mean(1)).all()


def test_ucr_and_npz_files(tmp_path):
    ucr = tmp_path / "Toy_TRAIN.tsv"
    ucr.write_text("1\t0.1\t0.2\t0.3\n-1\t1.0\t2.0\t3.0\n2\t5\t6\t7\n1\t0\t0\t1\n")
    x, y = read_windows(ucr)
    assert x.shape == (4, 3, 1) and y.tolist() == ["1", "-1", "2", "1"]
    bundle = build_data("series_classification", {"path": str(ucr), "test_path": str(ucr), "val_fraction": 0})
    assert bundle.model_args == {"tokenizer": {"n_channels": 1, "input_len": 3}, "head": {"n_classes": 3}}
    assert bundle.test[1]["labels"] == 0  # labels in numeric order: -1 -> 0, 1 -> 1, 2 -> 2
    ragged = tmp_path / "ragged.tsv"
    ragged.write_text("1,0.5,0.7,0.9\n2,0.1,0.2\n")
    with pytest.raises(ConfigError, match="1 of 2 series have missing.*missing=ffill"):
        read_windows(ragged)
    x, _ = read_windows(ragged, missing="ffill")
    np.testing.assert_allclose(x[1, :, 0], [0.1, 0.2, 0.2])
    npz = tmp_path / "windows.npz"
    np.savez(npz, X=np.random.default_rng(0).normal(size=(40, 16, 3)), y=np.repeat(["a", "b"], 20))
    bundle = build_data("series_classification", {"path": str(npz)})
    assert bundle.model_args["tokenizer"] == {"n_channels": 3, "input_len": 16}
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 40 and len(bundle.test) == 8
    assert abs(float(bundle.train.x.mean())) < 1e-6  # standardised with the training windows' statistics
    np.savez(tmp_path / "bad.npz", inputs=np.zeros((2, 3)))
    with pytest.raises(ConfigError, match="must hold arrays X"):
        read_windows(tmp_path / "bad.npz")


def _model(tokenizer: str, pool: str = "mean", n_channels: int = 3):
    args = {"n_channels": n_channels, "input_len": 32}
    if tokenizer == "series_patches":
        args.update(patch_len=8, stride=8)
    return build_model(ModelConfig("encoder", CoreConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32),
                                   PartConfig(tokenizer, args), PartConfig("classification",
                                                                           {"n_classes": 4, "pool": pool})))


@pytest.mark.parametrize("pool", ["mean", "attention"])
def test_channel_independent_tokens_are_regrouped_per_example(pool):
    torch.manual_seed(0)
    model = _model("series_patches", pool).eval()
    assert model.head.fc.in_features == 3 * 16  # the three channels' pooled vectors, concatenated
    x = torch.randn(5, 32, 3)
    logits = model({"inputs": x})["logits"]
    assert logits.shape == (5, 4)
    other = x.clone()
    other[1:] = torch.randn(4, 32, 3)  # changing the other examples leaves example 0 alone
    torch.testing.assert_close(model({"inputs": other})["logits"][0], logits[0])
    swapped = x[:, :, [1, 0, 2]]  # the order of the channels matters (concatenation, not a mean)
    assert not torch.allclose(model({"inputs": swapped})["logits"], logits)
    assert _model("series_steps").head.fc.in_features == 16  # one sequence per example: nothing to regroup
    with pytest.raises(ConfigError, match="pool=mean"):
        _model("series_patches", "cls")({"inputs": x})


def test_recipe_learns_synthetic_control(tmp_path):
    from xformer.train.config import load_experiment
    from xformer.train.run import train_run

    config = load_experiment(TASKS / "patchtst_classify.yaml", ["train.steps=150", "train.eval_every=50"])
    metrics = train_run(config, tmp_path / "run")
    assert metrics["test_accuracy"] >= 0.9  # 120 test series, 6 classes (chance 1/6)
    report = json.loads((tmp_path / "run" / "test_classification.json").read_text())
    assert report["class_names"] == list(SYNTHETIC_CONTROL_CLASSES)
    assert report["accuracy"] == pytest.approx(metrics["test_accuracy"])
