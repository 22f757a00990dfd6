"""Class predictions for new series from a trained series classifier's run folder (data ``series_classification``):
sktime's / aeon's ``predict_proba(X)`` from the command line, ``xformer predict RUN new.tsv``.

    x' = (x - mean_c) / scale_c       the run's training statistics per channel (RUN/series_scaler.json)
    p = softmax(z(x')),  top-k        as for images and texts (predict.py)

Inputs, as the run's data reads them (xformer/data/series_classification.py):

    .npz            X (N, L) or (N, L, C), or (N, C, L) when the run's data.args.layout is ncl; y, if there, is
                    not read
    .ts             sktime's / aeon's format, with or without class labels (not read)
    a text file     UCR lines, separated by tabs, commas or spaces: with a label first (L + 1 fields, the
                    archive's own files; the label is not read) or without (L fields: new, unlabelled series)

Each series must have the run's length and channels; missing values ("?", NaN, shorter rows) are filled as the
run filled them (data.args.missing=ffill), else refused in one line. Rows are named FILE:N (N from 1). A numpy
array (a notebook's) is read as an .npz's X, its rows named "series N" by their position among the rows.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .batch import INPUTS
from .config import ConfigError, load_yaml
from .errors import a_or_an, qualified_type
from .registry import first_line
from .metrics_classification import top_classes

SCALER_FILE = "series_scaler.json"


def series_classifier_info(run_dir: Path) -> dict | None:
    """{names, input_len, n_channels, mean, scale, missing, layout} of a series classifier's run folder; None for
    a run of another kind."""
    config = load_yaml(run_dir / "config.yaml")
    data = config.get("data") or {}
    if data.get("name") != "series_classification":
        return None
    files = {}
    for name in ("classes.json", SCALER_FILE):
        try:
            files[name] = json.loads((run_dir / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ConfigError(f"{run_dir / name} is missing or unreadable; the run cannot say what its series "
                              "are; train it again") from None
    stats, args = files[SCALER_FILE], data.get("args") or {}
    return {"names": [str(n) for n in files["classes.json"]["class_names"]], "input_len": int(stats["input_len"]),
            "n_channels": int(stats["n_channels"]), "mean": np.asarray(stats["mean"], dtype=np.float64),
            "scale": np.asarray(stats["scale"], dtype=np.float64), "missing": args.get("missing", "error"),
            "layout": args.get("layout")}


def read_series(path: Path, info: dict, name: str = "") -> np.ndarray:
    """(N, L, C) float64 series of one input file (see the module docstring), or of a numpy array ``path`` (named
    ``name`` in errors) read as an .npz's X, filled as the run's data was."""
    from .data.series_classification import fill_forward, x_in_layout

    length, channels = info["input_len"], info["n_channels"]
    if isinstance(path, np.ndarray):  # a notebook's series
        try:
            x, path = x_in_layout(np.asarray(path, dtype=np.float64), info["layout"], name), name
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{name}: X must hold numbers ({first_line(e)}); give a float array") from None
    else:
        x = series_file(path, info)
    if x.shape[1:] != (length, channels) and not (x.shape[1] < length and x.shape[2] == channels):
        raise ConfigError(f"{path}: series of shape {x.shape[1:]} (steps, channels); the run reads "
                          f"({length}, {channels})")
    if x.shape[1] < length:  # shorter series: their last steps are missing
        x = np.concatenate([x, np.full((len(x), length - x.shape[1], channels), np.nan)], axis=1)
    if np.isnan(x).any():
        if info["missing"] != "ffill":
            rows = np.flatnonzero(np.isnan(x).any(axis=(1, 2)))
            raise ConfigError(f"{path}: series {', '.join(str(i + 1) for i in rows[:5])} have missing values (or are "
                              "shorter), which the run, trained with data.args.missing=error, does not fill; give "
                              "whole series")
        if np.isnan(x).all(axis=1).any():
            raise ConfigError(f"{path}: a series holds no value at all in a channel; remove it")
        x = fill_forward(x)
    return x


def series_file(path, info: dict) -> np.ndarray:
    """The series of one input file as it holds them: (N, L', C), L' up to the run's length."""
    from .data.series_classification import as_number, padded, read_npz, read_ts, ucr_rows

    length, channels = info["input_len"], info["n_channels"]
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"{a_or_an(qualified_type(path))} is not a series; give .npz, .ts or UCR text files, or "
                          "numpy arrays X (N, L) or (N, L, C)")
    path = Path(path)
    if not path.is_file():
        problem = "is a folder" if path.is_dir() else "is not a file" if path.exists() else "does not exist"
        raise ConfigError(f"series file {path} {problem}; give .npz files (X) or UCR text files")
    if path.suffix == ".npz":
        return read_npz(path, info["layout"], labelled=False)[0]
    if path.suffix.lower() == ".ts":
        return read_ts(path)[0]
    if channels != 1:
        raise ConfigError(f"{path}: the run reads {channels} channels, which a UCR text file (one series a line) "
                          "cannot hold; give an .npz with X (N, L, C)")
    _, rows = ucr_rows(path)
    widest = max(map(len, rows))
    if widest not in (length, length + 1):
        raise ConfigError(f"{path}: its longest line holds {widest} fields; the run reads series of {length} "
                          f"values, a line of {length} values, or of a label and {length} values")
    labelled = widest == length + 1
    return padded([[as_number(v) for v in row[1 if labelled else 0:]] for row in rows])[:, :, None]


def series_inputs(inputs: Sequence[str | Path], info: dict) -> tuple[list[str], np.ndarray]:
    """(row names FILE:N or "series N", (N, L, C) series scaled as the run's training windows) of every input file
    and numpy array."""
    names, parts = [], []
    for k, item in enumerate(inputs):
        x = read_series(item, info, f"array {k}")
        # an array's series are named by their rows' positions, a file's FILE:N
        names += [f"series {len(names) + i}" for i in range(len(x))] if isinstance(item, np.ndarray) else \
            [f"{item}:{i}" for i in range(1, len(x) + 1)]
        parts.append(x)
    x = np.concatenate(parts)
    return names, (x - info["mean"]) / info["scale"]


@torch.no_grad()
def predict_series(model: torch.nn.Module, names: Sequence[str], x: np.ndarray, info: dict, top_k: int = 5,
                   batch_size: int = 64, device: str | torch.device = "cpu") -> list[dict]:
    """One row per series: {"file" (FILE:N), "class", "probability", "top_k"}."""
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    model = model.to(device).eval()
    rows = []
    for start in range(0, len(x), batch_size):
        batch = torch.as_tensor(x[start:start + batch_size], dtype=torch.float32, device=device)
        logits = model({INPUTS: batch})["logits"]
        rows += [{"file": name, **top} for name, top in
                 zip(names[start:start + batch_size], top_classes(logits, info["names"], top_k))]
    return rows


__all__ = ["series_classifier_info", "read_series", "series_file", "series_inputs", "predict_series"]
