"""Class predictions for new series from a trained series classifier's run folder (data ``series_classification``):
sktime's / aeon's ``predict_proba(X)`` from the command line, ``xformer predict RUN new.tsv``.

    x' = (x - mean_c) / scale_c       the run's training statistics per channel (RUN/series_scaler.json)
    p = softmax(z(x')),  top-k        as for images and texts (predict.py)

Inputs, as the run's data reads them (xformer/data/series_classification.py):

    .npz            X (N, L) or (N, L, C), or (N, C, L) when the run's data.args.layout is ncl; y if there
    .ts             sktime's / aeon's format, with or without class labels
    a text file     UCR lines, separated by tabs, commas or spaces: with a label first (L + 1 fields, the
                    archive's own files) or without (L fields: new, unlabelled series)

Each series must have the run's length and channels (NaN padding past it, holding no value, is dropped); missing
values ("?", NaN, shorter rows) are filled as the run filled them (data.args.missing=ffill), else refused in one
line. Rows are named FILE:N (N from 1). The labels of labelled files are kept (rows' "label") and scored (sktime's
``score(X, y)``, ``label_score``): a label of a class the run does not know counts as a wrong prediction. A numpy
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
from .metrics_classification import imbalance_metrics, top_classes

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
    try:
        return {"names": [str(n) for n in files["classes.json"]["class_names"]], "input_len": int(stats["input_len"]),
                "n_channels": int(stats["n_channels"]), "mean": np.asarray(stats["mean"], dtype=np.float64),
                "scale": np.asarray(stats["scale"], dtype=np.float64), "missing": args.get("missing", "error"),
                "layout": args.get("layout")}
    except (KeyError, TypeError, ValueError) as e:  # a hand edit: a key left out, or a value of another type
        problem = f"no {e}" if isinstance(e, KeyError) else str(e)
        raise ConfigError(f"{run_dir / SCALER_FILE} and classes.json are not as xformer train wrote them ({problem}); "
                          "the run cannot say what its series are; restore them from a copy of the run") from None


def read_series(path, info: dict, name: str = "") -> tuple[np.ndarray, list[str] | None]:
    """((N, L, C) float64 series of one input file (see the module docstring), or of a numpy array ``path`` (named
    ``name`` in errors) read as an .npz's X, filled as the run's data was; their labels named as the run names its
    classes, or None for an unlabelled file or an array)."""
    from .data.series_class_files import drop_empty_tail, label_text, x_in_layout
    from .data.series_classification import fill_forward

    length, channels = info["input_len"], info["n_channels"]
    if isinstance(path, np.ndarray):  # a notebook's series
        try:
            x, labels, path = x_in_layout(np.asarray(path, dtype=np.float64), info["layout"], name), None, name
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{name}: X must hold numbers ({first_line(e)}); give a float array") from None
    else:
        path = checked_file(path)
        x, labels = series_file(path, info)
    x = drop_empty_tail(x, length)  # NaN padding past the run's length, to a file's own longest series
    if x.shape[1:] != (length, channels) and not (x.shape[1] < length and x.shape[2] == channels
                                                   and info["missing"] == "ffill"):
        raise ConfigError(f"{path}: series of {x.shape[1]} steps x {x.shape[2]} channels; the run was trained on "
                          f"{length} x {channels}: give series of {length} steps and {channels} channels")
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
    if labels is None:
        return x, None
    known = {label_text(name): name for name in info["names"]}  # a run of before label_text: "1.0" for "1"
    return x, [known.get(label_text(v), label_text(v)) for v in labels]


def checked_file(path) -> Path:
    """``path`` as a Path, once it names a file (not another object, a folder or nothing)."""
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"{a_or_an(qualified_type(path))} is not a series; give .npz, .ts or UCR text files, or "
                          "numpy arrays X (N, L) or (N, L, C)")
    path = Path(path)
    if not path.is_file():
        problem = "is a folder" if path.is_dir() else "is not a file" if path.exists() else "does not exist"
        raise ConfigError(f"series file {path} {problem}; give .npz files (X) or UCR text files")
    return path


def series_file(path: Path, info: dict) -> tuple[np.ndarray, list | None]:
    """(the series of one input file as it holds them, (N, L', C); their labels as written, or None)."""
    from .data.series_class_files import LABEL_FIRST, as_numbers, padded, read_npz, read_ts, ucr_rows

    length, channels = info["input_len"], info["n_channels"]
    if path.suffix == ".npz":
        return read_npz(path, info["layout"], labelled=None)
    if path.suffix.lower() == ".ts":
        return read_ts(path)
    if channels != 1:
        raise ConfigError(f"{path}: the run reads {channels} channels, which a UCR text file (one series a line) "
                          "cannot hold; give an .npz with X (N, L, C)")
    _, rows = ucr_rows(path)
    widest = max(map(len, rows))
    if widest not in (length, length + 1):
        raise ConfigError(f"{path}: its longest line holds {widest} fields; the run reads series of {length} "
                          f"values, a line of {length} values, or of a label and {length} values")
    labelled = widest == length + 1
    x = padded([as_numbers(row[1 if labelled else 0:], f"{path}: line {number}", LABEL_FIRST)
                for number, row in enumerate(rows, 1)])[:, :, None]
    return x, [row[0] for row in rows] if labelled else None


def series_inputs(inputs: Sequence[str | Path], info: dict) -> tuple[list[str], np.ndarray, list[str | None]]:
    """(row names FILE:N, (N, L, C) series scaled as the run's training windows, their labels: None for the rows of
    an unlabelled file) of every input file."""
    names, parts, labels = [], [], []
    for k, item in enumerate(inputs):
        x, given = read_series(item, info, f"array {k}")
        # an array's series are named by their rows' positions, a file's FILE:N
        names += [f"series {len(names) + i}" for i in range(len(x))] if isinstance(item, np.ndarray) else \
            [f"{item}:{i}" for i in range(1, len(x) + 1)]
        parts.append(x)
        labels += given if given is not None else [None] * len(x)
    x = np.concatenate(parts)
    return names, (x - info["mean"]) / info["scale"], labels


@torch.no_grad()
def predict_series(model: torch.nn.Module, names: Sequence[str], x: np.ndarray, info: dict, top_k: int = 5,
                   batch_size: int = 64, device: str | torch.device = "cpu",
                   labels: Sequence[str | None] | None = None) -> list[dict]:
    """One row per series: {"file" (FILE:N), "class", "probability", "top_k"}, and "label" where ``labels`` has
    one."""
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    model = model.to(device).eval()
    rows = []
    for start in range(0, len(x), batch_size):
        batch = torch.as_tensor(x[start:start + batch_size], dtype=torch.float32, device=device)
        logits = model({INPUTS: batch})["logits"]
        rows += [{"file": name, **top} for name, top in
                 zip(names[start:start + batch_size], top_classes(logits, info["names"], top_k))]
    for row, label in zip(rows, labels or []):
        if label is not None:
            row["label"] = label
    return rows


def label_score(rows: Sequence[dict], names: Sequence[str], what: str = "series") -> str:
    """One line scoring the rows that hold a label (accuracy, balanced accuracy, macro F1 over them); ``names``:
    the run's classes; ``what`` the rows are (series, texts)."""
    scored = [row for row in rows if "label" in row]
    truth, guess = [row["label"] for row in scored], [row["class"] for row in scored]
    scores = imbalance_metrics(np.array(truth, dtype=object), np.array(guess, dtype=object))
    unknown = sorted(set(truth) - set(names))
    return (f"accuracy {np.mean([t == g for t, g in zip(truth, guess)]):.4f}, balanced accuracy "
            f"{scores['balanced_accuracy']:.4f}, macro F1 {scores['macro_f1']:.4f} on {len(scored)} labelled {what}"
            + (f" (classes the run does not know: {unknown[:5]}, counted wrong)" if unknown else ""))


__all__ = ["series_classifier_info", "read_series", "checked_file", "series_file", "series_inputs", "predict_series",
           "label_score"]
