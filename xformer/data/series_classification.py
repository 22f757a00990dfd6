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
from ..metrics_classification import evaluate_imbalanced, save_classification_report
from ..registry import check_fractions, check_sizes, first_line
from .registry import DataBundle, register_data
from .compressed import read_text_file

UCR_FIX = ("give a UCR-format text file (per line: the label, then the values, separated by tabs, commas or spaces) "
           "or an .npz")
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
    ``layout``). ``length`` (a test file's, the training length): the steps past it that no series has a value
    in are dropped, NaN padding of variable-length series written file by file."""
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
        x = x[:, :max([length, *(np.flatnonzero(~np.isnan(x).all(axis=(0, 2))) + 1)])]
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


def read_ucr(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(X (N, L, 1), labels) of a UCR text file: per line a label, then the values, separated by tabs (the 2018
    archive's .tsv), commas, or spaces (timeseriesclassification.com's .txt: "  1.0000000e+00  -0.64 ..."). Rows
    of different lengths are padded with NaN at the end (unequal-length series, for ``missing``); "?" and
    "NaN" are missing values. Labels are class names by ``label_text`` ("1.0000000e+00" is "1")."""
    lines, rows = ucr_rows(path)
    labels = [row[0] for row in rows]
    if not all(labels):
        number = next(i for i, label in enumerate(labels) if not label) + 1
        raise ConfigError(f"{path}: line {number} has no label before its values; {UCR_FIX}")
    values = [[as_number(v) for v in row[1:]] for row in rows]
    if len(values) > 1 and all(np.isnan(v) for v in values[0]) and not all(np.isnan(v) for v in values[1]):
        raise ConfigError(f"{path}: the first line ({lines[0][:40]!r}) looks like a header of column names; the "
                          "UCR format has none: remove it (e.g. pandas' to_csv(path, header=False, index=False))")
    return padded(values)[:, :, None], np.array([label_text(v) for v in labels], dtype=object)


def read_ts(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(X (N, L, C), labels or None) of a .ts file, sktime's and aeon's format (the UEA archive's): "@" header
    lines ("#" comments) up to "@data", then one series a line, its channels separated by ":", each channel's
    values by ",", "?" missing, and the class label last when the header says "@classLabel true". Channels
    and series of unequal length end in missing values (NaN), for ``missing``."""
    try:
        text = read_text_file(path)
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not a UTF-8 text file ({e.reason}); give a .ts file (sktime's format)") from None
    header, body, in_data = {}, [], False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if in_data:
            body.append(line)
        elif line.lower() == "@data":
            in_data = True
        elif line.startswith("@"):
            key, _, value = line[1:].partition(" ")
            header[key.lower()] = value.strip()
    if not body:
        raise ConfigError(f"{path}: no series after an @data line; give a .ts file (sktime's format)")
    if header.get("timestamps", "false").lower() == "true":
        raise ConfigError(f"{path}: @timeStamps true (values given with their times) is not read; save the series "
                          "with @timeStamps false")
    labelled = header.get("classlabel", "false").split()[:1] == ["true"]
    series, labels = [], []
    for number, line in enumerate(body, 1):
        fields = line.split(":")
        if labelled:
            if len(fields) < 2 or not fields[-1].strip():
                raise ConfigError(f"{path}: series {number} has no class label after its last ':'")
            labels.append(fields[-1].strip())
            fields = fields[:-1]
        series.append([[as_number(v) for v in channel.split(",")] for channel in fields])
    channels = {len(s) for s in series}
    if len(channels) > 1:
        raise ConfigError(f"{path}: the series hold {sorted(channels)} channels; every line needs the same number")
    length = max(len(c) for s in series for c in s)
    x = np.full((len(series), length, channels.pop()), np.nan)
    for i, s in enumerate(series):
        for c, values in enumerate(s):
            x[i, :len(values), c] = values
    return x, (np.array([label_text(v) for v in labels], dtype=object) if labelled else None)


def ucr_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """(the non-empty lines, each split into its fields) of a UCR-style text file: the separator of the first line
    (tab, comma, else runs of spaces); a tab or comma before the first field leaves it empty, trailing ones add
    nothing."""
    try:
        text = read_text_file(path)
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not a UTF-8 text file ({e.reason}); {UCR_FIX}") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ConfigError(f"{path} is empty; {UCR_FIX}")
    if "\0" in text:
        raise ConfigError(f"{path} is not a text file (it holds NUL bytes); {UCR_FIX}")
    sep = "\t" if "\t" in lines[0] else "," if "," in lines[0] else None  # None: runs of spaces
    rows = []
    for line in lines:
        fields = [field.strip() for field in (line.split(sep) if sep else line.split())]
        while len(fields) > 1 and not fields[-1]:
            fields.pop()
        rows.append(fields)
    return lines, rows


def padded(values: list[list[float]]) -> np.ndarray:
    """Rows of numbers as an (N, longest) array, the shorter ones ending in NaN (missing values)."""
    x = np.full((len(values), max(map(len, values))), np.nan)
    for i, row in enumerate(values):
        x[i, :len(row)] = row
    return x


def as_number(field: str) -> float:
    try:
        return float(field)
    except ValueError:
        return float("nan")  # "?", "NaN", an empty field: missing


def label_text(label) -> str:
    """A text file's label as its class name: a whole number in any spelling as that number's plain text
    ("1.0000000e+00", "1.0" and "1" are class "1"), each label on its own, so a test file holding only some
    classes names them as the training file does; any other label as given. (An .npz's y keeps str(y): the class
    names of runs trained on one.)"""
    text = str(label).strip()
    try:
        return str(int(text))
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if np.isfinite(number) and number.is_integer() else text


LAYOUTS = ("nlc", "ncl")  # X (N, L, C): xformer's; (N, C, L): aeon's, sktime's numpy3D and tsai's


def read_npz(path: Path, layout: str | None = None, labelled: bool | None = True
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """(X (N, L, C), y) from an ``.npz`` archive whose X is (N, L), or (N, L, C) (``layout`` "nlc") or (N, C, L)
    ("ncl"). Left out, the layout is "nlc", and an X with more channels than steps, which is what (N, C, L)
    data read as (N, L, C) looks like, is refused in one line asking for it. Anything else is refused too.
    ``labelled`` False (new series to classify): y is neither needed nor read, and None is returned for it; None:
    y is read if there."""
    if layout not in (None, *LAYOUTS):
        raise ConfigError(f"data.args.layout={layout!r}: give nlc (X is (N, L, C), xformer's) or ncl (N, C, L: "
                          "aeon's, sktime's numpy3D and tsai's)")
    try:
        archive = np.load(path)  # allow_pickle=False: a pickle is refused, never run
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise ConfigError(f"{path} is not a readable .npz archive ({first_line(e)}); save one with "
                          "numpy.savez(path, X=X, y=y)") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # a single .npy array renamed .npz
        raise ConfigError(f"{path} holds one array, not an .npz archive; save one with numpy.savez(path, X=X, y=y)")
    with archive as f:
        if "X" not in f or labelled and "y" not in f:
            raise ConfigError(f"{path} must hold arrays X (N, L, C){' and y (N,)' if labelled else ''}; it has "
                              f"{sorted(f.files)}")
        try:
            y = np.asarray(f["y"]) if labelled or labelled is None and "y" in f else None
        except ValueError as e:  # an object array (pandas' to_numpy() of strings) is stored pickled
            raise ConfigError(f"{path}: y is an object array ({first_line(e)}); save it as numbers or strings: "
                              "numpy.savez(path, X=X, y=y.astype(str))") from None
        try:
            x = np.asarray(f["X"], dtype=np.float64)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{path}: X must hold numbers ({first_line(e)}); save float arrays") from None
    if x.ndim == 3 and layout == "ncl":
        x = x.transpose(0, 2, 1)
    elif x.ndim == 3 and layout is None and x.shape[2] > x.shape[1]:
        raise ConfigError(f"{path}: X is {x.shape}, read as (N, L, C) {x.shape[2]} channels of {x.shape[1]} steps; "
                          "aeon, sktime and tsai store (N, C, L): give data.args.layout=ncl for that, or "
                          "data.args.layout=nlc if it really has more channels than steps")
    x = x[:, :, None] if x.ndim == 2 else x
    if x.ndim != 3 or y is not None and len(x) != len(y):
        raise ConfigError(f"{path}: X must be (N, L) or (N, L, C) and y (N,), got {x.shape} and "
                          f"{None if y is None else y.shape}")
    return x, y


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
                          n_per_class: int = 100, seed: int = 0, missing: str = "error",
                          layout: str | None = None) -> DataBundle:
    """Labelled windows (see the module docstring); default: 600 Synthetic Control series of length 60.
    layout: of an .npz's X, "nlc" (N, L, C) or "ncl" (N, C, L); see ``read_npz``."""
    check_fractions("data.args", val_fraction=val_fraction)
    check_sizes("data.args", n_per_class=n_per_class)
    if test_path is not None and path is None:
        raise ConfigError("data.args.test_path needs data.args.path (the training file of the same dataset)")
    if path is None:
        x, raw = synthetic_control(n_per_class, seed=seed)
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
            raise ConfigError(f"{test_path} has labels {unseen} that {path} does not; give files of one dataset")
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


__all__ = ["synthetic_control", "read_windows", "read_npz", "read_ts", "read_ucr", "ucr_rows", "padded", "as_number",
           "label_text", "fill_forward", "WindowItems", "series_classification", "SYNTHETIC_CONTROL_CLASSES"]
