"""A tiny series classifier trained on UCR files the test writes: two classes of sine waves, slow and fast (more
classes, other lengths on request), shared by the predict and series-classification audit tests."""
import numpy as np
import yaml

from xformer.cli import main

RECIPE = {"model": {"architecture": "encoder", "core": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
                    "tokenizer": {"name": "series_patches", "args": {"patch_len": 8, "stride": 8}},
                    "head": {"name": "classification", "args": {"pool": "mean"}}},
          "train": {"steps": 30, "batch_size": 8, "lr": 3e-3, "eval_every": 30, "warmup_steps": 0}}


def waves(n, seed, labels=("slow", "fast"), length=32):
    """(X (n, length), y): class k is a sine of speed 0.3 + k at a random phase."""
    rng = np.random.default_rng(seed)
    y = np.array(list(labels) * (n // len(labels)))
    speed = {label: 0.3 + k for k, label in enumerate(labels)}
    x = 5 + 3 * np.sin(np.arange(length)[None] * np.array([speed[v] for v in y])[:, None] + rng.uniform(0, 6, (n, 1)))
    return x, y


def ucr(x, labels=None) -> str:
    """UCR text lines: the label (if given), then the values, tab-separated."""
    return "".join("\t".join(([str(labels[i])] if labels is not None else []) + [f"{v:.6f}" for v in row]) + "\n"
                   for i, row in enumerate(x))


def train_on_waves(root):
    """root/run, trained on root/TRAIN.tsv (40 waves, seed 0) with root/TEST.tsv (10 waves, seed 1) as its test
    split; returns the test series and labels."""
    x, y = waves(40, 0)
    (root / "TRAIN.tsv").write_text(ucr(x, y))
    x_test, y_test = waves(10, 1)
    (root / "TEST.tsv").write_text(ucr(x_test, y_test))
    recipe = {**RECIPE, "data": {"name": "series_classification",
                                 "args": {"path": str(root / "TRAIN.tsv"), "test_path": str(root / "TEST.tsv")}}}
    (root / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", str(root / "r.yaml"), "--out", str(root / "run"), "--quiet", "--threads", "1"]) == 0
    return x_test, y_test
