"""Classification of series windows: each example is a window (L, C) with one label.

The model is the forecaster's front end (``series_patches`` or ``series_steps``, RevIN optional)
finished by the ``classification`` head that ViTs use; with channel-independent patches the head
concatenates the C channels' pooled vectors (PatchTST's classification head) before its linear layer.

Sources, all read into X (N, L, C) float and y (N,) class indices:

- no ``path``: the Synthetic Control Chart series (Alcock & Manolopoulos 1999; UCI "Synthetic
  Control Chart Time Series", UCR "SyntheticControl"), generated from its published definition,
  :func:`synthetic_control`;
- ``path`` to a UCR-archive file (``.tsv``/``.txt``: the class label, then the values of one
  univariate series, tab- or comma-separated; e.g. ``SyntheticControl_TRAIN.tsv``), with
  ``test_path`` for the archive's own test file;
- ``path`` to a ``.npz`` holding ``X`` (N, L, C) or (N, L) and ``y`` (N,), for multivariate windows.

Without ``test_path`` a stratified 80/20 split (random_state 0) makes the test set; validation
is a stratified ``val_fraction`` of the rest. Values are standardised per channel with a
StandardScaler fitted on the training windows only. Missing values stop with one line unless
``missing="ffill"`` (carry the last value forward along time, the first one back).
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ..batch import INPUTS, LABELS
from ..config import ConfigError
from ..metrics_classification import evaluate_classifier, save_classification_report
from ..registry import check_fractions, check_sizes, first_line
from .registry import DataBundle, register_data
from .series import read_csv_file

UCR_FIX = "give a UCR-format text file (per line: the label, then the values, tab- or comma-separated) or an .npz"
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


def read_windows(path: str | Path, missing: str = "error") -> tuple[np.ndarray, np.ndarray]:
    """(X (N, L, C) float64, y (N,) raw labels) from a UCR-format text file or an ``.npz`` (X, y)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"series classification file not found: {path}")
    if path.suffix == ".npz":
        x, y = _read_npz(path)
    else:
        table = read_csv_file(path, UCR_FIX, sep=None, header=None, engine="python")  # tabs (UCR 2018) or commas
        y = table.iloc[:, 0].to_numpy()
        x = table.iloc[:, 1:].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)[:, :, None]
    if x.shape[1] == 0:
        raise ConfigError(f"{path} holds labels but no series values; {UCR_FIX}")
    bad = np.isnan(x)
    if bad.any():
        if missing != "ffill":
            raise ConfigError(f"{path}: {int(bad.any(axis=(1, 2)).sum())} of {len(x)} series have missing or "
                              "non-numeric values (e.g. unequal lengths); pass data.args.missing=ffill to fill them")
        n, length, channels = x.shape
        by_time = pd.DataFrame(x.transpose(1, 0, 2).reshape(length, n * channels))  # one column per series
        x = by_time.ffill().bfill().to_numpy().reshape(length, n, channels).transpose(1, 0, 2)
    return x, y


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(X (N, L, C), y) from an ``.npz`` archive; anything else is refused in one line."""
    try:
        archive = np.load(path)  # allow_pickle=False: a pickle is refused, never run
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise ConfigError(f"{path} is not a readable .npz archive ({first_line(e)}); save one with "
                          "numpy.savez(path, X=X, y=y)") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # a single .npy array renamed .npz
        raise ConfigError(f"{path} holds one array, not an .npz archive; save one with numpy.savez(path, X=X, y=y)")
    with archive as f:
        if "X" not in f or "y" not in f:
            raise ConfigError(f"{path} must hold arrays X (N, L, C) and y (N,); it has {sorted(f.files)}")
        try:
            x, y = np.asarray(f["X"], dtype=np.float64), np.asarray(f["y"])
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{path}: X must hold numbers ({first_line(e)}); save float arrays") from None
    x = x[:, :, None] if x.ndim == 2 else x
    if x.ndim != 3 or len(x) != len(y):
        raise ConfigError(f"{path}: X must be (N, L) or (N, L, C) and y (N,), got {x.shape} and {y.shape}")
    return x, y


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
                          n_per_class: int = 100, seed: int = 0, missing: str = "error") -> DataBundle:
    """Labelled windows (see the module docstring); default: 600 Synthetic Control series of length 60."""
    check_fractions("data.args", val_fraction=val_fraction)
    check_sizes("data.args", n_per_class=n_per_class)
    if test_path is not None and path is None:
        raise ConfigError("data.args.test_path needs data.args.path (the training file of the same dataset)")
    if path is None:
        x, raw = synthetic_control(n_per_class, seed=seed)
        names = list(SYNTHETIC_CONTROL_CLASSES)
        raw = np.array(names)[raw]
    else:
        x, raw = read_windows(path, missing)
        names = _sorted_labels({str(v) for v in raw})
    if test_path is not None:
        x_test, raw_test = read_windows(test_path, missing)
        if x_test.shape[1:] != x.shape[1:]:
            raise ConfigError(f"{test_path} holds windows of shape {x_test.shape[1:]} but {path} {x.shape[1:]}; "
                              "give files of one dataset")
        unseen = sorted({str(v) for v in raw_test} - set(names))
        if unseen:
            raise ConfigError(f"{test_path} has labels {unseen} that {path} does not; give files of one dataset")
    index = {name: k for k, name in enumerate(names)}
    y = np.array([index[str(v)] for v in raw])
    from sklearn.model_selection import train_test_split  # here, not at the top: sklearn costs every command ~1 s
    from sklearn.preprocessing import StandardScaler

    if test_path is None:
        train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)
        x_test, y_test, x, y = x[test_idx], y[test_idx], x[train_idx], y[train_idx]
    else:
        y_test = np.array([index[str(v)] for v in raw_test])
    x_val = y_val = None
    if val_fraction > 0:
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
        evaluate=evaluate_classifier, save=save, report=report)


__all__ = ["synthetic_control", "read_windows", "WindowItems", "series_classification", "SYNTHETIC_CONTROL_CLASSES"]
