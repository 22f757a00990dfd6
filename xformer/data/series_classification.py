"""Classification of series windows: each example is a window (L, C) with one label.

The model is the forecaster's front end (``series_patches`` or ``series_steps``, RevIN optional)
finished by the ``classification`` head that ViTs use; with channel-independent patches the head
concatenates the C channels' pooled vectors (PatchTST's classification head) before its linear layer.

Sources, all read into X (N, L, C) float and y (N,) class indices:

- no ``path``: the Synthetic Control Chart series (Alcock & Manolopoulos 1999; UCI "Synthetic
  Control Chart Time Series", UCR "SyntheticControl"), generated from its published definition,
  :func:`synthetic_control`;
- ``path`` to a UCR-archive file (``.tsv``/``.txt``: the class label, then the values of one
  univariate series, separated by tabs, commas or spaces; e.g. ``SyntheticControl_TRAIN.tsv``, or the
  space-separated ``.txt`` of timeseriesclassification.com), with ``test_path`` for the archive's own
  test file; rows of different lengths (unequal-length series) end in missing values (``read_ucr``);
- ``path`` to a ``.ts`` file, sktime's and aeon's format of the UEA/UCR archives (``read_ts``), univariate or
  multivariate;
- ``path`` to a ``.npz`` holding ``X`` (N, L, C) or (N, L) and ``y`` (N,), for multivariate windows;
  ``layout="ncl"`` reads X as (N, C, L), aeon's, sktime's and tsai's layout.

The readers are in ``series_class_files.py``.

Without ``test_path`` a stratified 80/20 split (random_state 0) makes the test set; validation
is a stratified ``val_fraction`` of the rest. Values are standardised per channel with a
StandardScaler fitted on the training windows only. Missing values stop with one line unless
``missing="ffill"`` (carry the last value forward along time, the first one back).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ..batch import INPUTS, LABELS
from ..config import ConfigError
from ..metrics_classification import evaluate_imbalanced, save_classification_report
from ..registry import check_fractions, check_sizes
from .registry import DataBundle, register_data
from .series_class_files import UCR_FIX, drop_empty_tail, read_npz, read_ts, read_ucr

SYNTHETIC_CONTROL_CLASSES = ("normal", "cyclic", "increasing_trend", "decreasing_trend", "upward_shift",
                             "downward_shift")


def synthetic_control(n_per_class: int = 100, length: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The six control-chart patterns (X (6n, length, 1), y), t = 1..length, m = 30, s = 2, r ~ U(-3, 3) per step:

        normal            y_t = m + r_t s
        cyclic            y_t = m + r_t s + a sin(2 pi t / T),   a, T ~ U(10, 15)
        increasing trend  y_t = m + r_t s + g t,                 g ~ U(0.2, 0.5)
        decreasing trend  y_t = m + r_t s - g t
        upward shift      y_t = m + r_t s + k_t x,  x ~ U(7.5, 20), k_t = [t >= t0], t0 ~ U(length/3, 2 length/3)
        downward shift    y_t = m + r_t s - k_t x
    """
    rng = np.random.default_rng(seed)
    t = np.arange(1, length + 1, dtype=np.float64)
    rows, labels = [], []
    for label in range(6):
        for _ in range(n_per_class):
            y = 30.0 + 2.0 * rng.uniform(-3, 3, length)
            if label == 1:
                y += rng.uniform(10, 15) * np.sin(2 * np.pi * t / rng.uniform(10, 15))
            elif label in (2, 3):
                y += (1 if label == 2 else -1) * rng.uniform(0.2, 0.5) * t
            elif label in (4, 5):
                y += (1 if label == 4 else -1) * rng.uniform(7.5, 20) * (t >= rng.uniform(length / 3, 2 * length / 3))
            rows.append(y)
            labels.append(label)
    return np.stack(rows)[:, :, None], np.array(labels)


def read_windows(path: str | Path, missing: str = "error", layout: str | None = None, length: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(X (N, L, C) float64, y (N,) raw labels) from a UCR-format text file, a .ts file or an ``.npz`` (X, y;
    ``layout``). ``length`` (a test file's: the training length): ``drop_empty_tail``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"series classification file not found: {path}")
    if path.suffix == ".npz":
        x, y = read_npz(path, layout)
    elif path.suffix.lower() == ".ts":
        x, y = read_ts(path)
        if y is None:
            raise ConfigError(f"{path} holds no class labels (@classLabel false); a classifier trains on labelled "
                              "series (xformer predict reads unlabelled ones)")
    else:
        x, y = read_ucr(path)
    if x.shape[1] == 0:
        raise ConfigError(f"{path} holds labels but no series values; {UCR_FIX}")
    if length is not None:
        x = drop_empty_tail(x, length)
    bad = np.isnan(x)
    if bad.any():
        if missing != "ffill":
            raise ConfigError(f"{path}: {int(bad.any(axis=(1, 2)).sum())} of {len(x)} series have missing or "
                              "non-numeric values (e.g. unequal lengths); pass data.args.missing=ffill to fill them")
        empty = np.flatnonzero(bad.all(axis=1).any(axis=1))
        if len(empty):  # nothing to carry forward or back
            raise ConfigError(f"{path}: series {', '.join(str(i + 1) for i in empty[:5])} (line numbers) hold no "
                              "value at all in a channel, which missing=ffill cannot fill; remove them")
        x = fill_forward(x)
    return x, y


def fill_forward(x: np.ndarray) -> np.ndarray:
    """(N, L, C) with each series' missing values carried forward along time (the first ones back)."""
    n, length, channels = x.shape
    by_time = pd.DataFrame(x.transpose(1, 0, 2).reshape(length, n * channels))  # one column per series
    return by_time.ffill().bfill().to_numpy().reshape(length, n, channels).transpose(1, 0, 2)


def check_stratifiable(y: np.ndarray, names: list[str], fraction: float, split: str) -> None:
    """sklearn's stratified split needs two examples of every class and a held-out part of at least one example
    a class: refused in one line naming the classes (UCR sets such as Fungi have one training series a class)."""
    counts = np.bincount(y, minlength=len(names))
    rare = [names[k] for k in np.flatnonzero(counts < 2)]
    held = int(np.ceil(fraction * len(y)))
    if rare or held < len(names) or len(y) - held < len(names):
        what = (f"the classes {rare[:5]} have one series each" if rare else
                f"{len(y)} series leave too few for {len(names)} classes on both sides")
        raise ConfigError(f"a stratified {split} split needs every class on both sides, and {what}; "
                          + ("give data.args.val_fraction=0 (no validation split)" if "validation" in split else
                             "give the data set's own test file as data.args.test_path") + ", or more series")


def _sorted_labels(labels: set[str]) -> list[str]:
    """Numeric labels in numeric order (UCR's "-1", "1", "2", "10"), others alphabetically."""
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


class WindowItems(Dataset):
    """Item i: {"inputs": (L, C) float32, "labels": long}."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x = torch.as_tensor(x, dtype=torch.float32)
        self.y = torch.as_tensor(y, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict:
        return {INPUTS: self.x[i], LABELS: self.y[i]}

    def digest(self) -> str:
        """SHA-256 of the windows and labels: what a run records to tell its own data from other data of the
        same size (train/data_identity.py)."""
        return hashlib.sha256(self.x.numpy().tobytes() + self.y.numpy().tobytes()).hexdigest()


@register_data("series_classification")
def series_classification(path: str | None = None, test_path: str | None = None, val_fraction: float = 0.1,
                          n_per_class: int | None = None, seed: int = 0, missing: str = "error",
                          layout: str | None = None) -> DataBundle:
    """Labelled windows (see the module docstring); default: 600 Synthetic Control series of length 60
    (``n_per_class``, default 100, sizes that generated set only: refused with a ``path``).
    layout: of an .npz's X, "nlc" (N, L, C) or "ncl" (N, C, L); see ``read_npz``."""
    if n_per_class is not None and path is not None:
        raise ConfigError(f"data.args.n_per_class={n_per_class} sizes the generated Synthetic Control set, but "
                          f"data.args.path={path} gives the series; leave n_per_class out")
    check_fractions("data.args", val_fraction=val_fraction)
    check_sizes("data.args", n_per_class=n_per_class)
    if missing not in ("error", "ffill"):
        raise ConfigError(f"data.args.missing={missing!r}: choose error or ffill (error refuses missing values)")
    if test_path is not None and path is None:
        raise ConfigError("data.args.test_path needs data.args.path (the training file of the same dataset)")
    if path is None:
        x, raw = synthetic_control(100 if n_per_class is None else n_per_class, seed=seed)
        names = list(SYNTHETIC_CONTROL_CLASSES)
        raw = np.array(names)[raw]
    else:
        x, raw = read_windows(path, missing, layout)
        names = _sorted_labels({str(v) for v in raw})
        if len(names) < 2:
            raise ConfigError(f"{path}: every series has the label {names[0]!r}; a classifier needs at least two "
                              f"classes ({UCR_FIX})")
    if test_path is not None:
        x_test, raw_test = read_windows(test_path, missing, layout, x.shape[1])
        if missing == "ffill" and x_test.shape[1] < x.shape[1] and x_test.shape[2] == x.shape[2]:
            # unequal lengths whose longest test series is shorter: carried forward to the training length too
            x_test = np.concatenate([x_test, np.repeat(x_test[:, -1:], x.shape[1] - x_test.shape[1], axis=1)], axis=1)
        if x_test.shape[1:] != x.shape[1:]:
            raise ConfigError(f"{test_path} holds windows of shape {x_test.shape[1:]} but {path} {x.shape[1:]}; "
                              "give files of one dataset")
        unseen = sorted({str(v) for v in raw_test} - set(names))
        if unseen:
            raise ConfigError(f"{test_path} has labels {unseen[:5]} that {path} does not, which the classifier cannot "
                              f"predict; give files of one dataset (after training, xformer predict RUN {test_path} "
                              "scores the file, counting those series wrong)")
    index = {name: k for k, name in enumerate(names)}
    y = np.array([index[str(v)] for v in raw])
    from sklearn.model_selection import train_test_split  # here, not at the top: sklearn costs every command ~1 s
    from sklearn.preprocessing import StandardScaler

    if test_path is None:
        check_stratifiable(y, names, 0.2, "test (the 20% of data.args.path held out without data.args.test_path)")
        train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)
        x_test, y_test, x, y = x[test_idx], y[test_idx], x[train_idx], y[train_idx]
    else:
        y_test = np.array([index[str(v)] for v in raw_test])
    x_val = y_val = None
    if val_fraction > 0:
        check_stratifiable(y, names, val_fraction, f"validation (data.args.val_fraction={val_fraction})")
        keep, held = train_test_split(np.arange(len(y)), test_size=val_fraction, stratify=y, random_state=0)
        x, y, x_val, y_val = x[keep], y[keep], x[held], y[held]
    n, length, channels = x.shape
    scaler = StandardScaler().fit(x.reshape(-1, channels))

    def scaled(v: np.ndarray) -> np.ndarray:
        return scaler.transform(v.reshape(-1, channels)).reshape(v.shape)

    def save(run_dir: Path) -> None:
        Path(run_dir, "classes.json").write_text(json.dumps({"class_names": names}), encoding="utf-8")
        Path(run_dir, "series_scaler.json").write_text(json.dumps(
            {"input_len": length, "n_channels": channels, "mean": scaler.mean_.tolist(),
             "scale": scaler.scale_.tolist()}, indent=1), encoding="utf-8")

    def report(model, batches, run_dir: Path, split: str = "test") -> dict:
        return save_classification_report(run_dir, model, batches, len(names), names, split)

    return DataBundle(
        train=WindowItems(scaled(x), y), val=WindowItems(scaled(x_val), y_val) if x_val is not None else None,
        test=WindowItems(scaled(x_test), y_test),
        model_args={"tokenizer": {"n_channels": channels, "input_len": length}, "head": {"n_classes": len(names)}},
        evaluate=evaluate_imbalanced, save=save, report=report)


__all__ = ["synthetic_control", "read_windows", "fill_forward", "WindowItems", "series_classification",
           "SYNTHETIC_CONTROL_CLASSES"]
