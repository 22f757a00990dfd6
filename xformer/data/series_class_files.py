"""The files of labelled series that ``series_classification`` (and ``xformer predict`` on its runs) reads, each
into X (N, L, C) float and labels: UCR-archive text files (``read_ucr``, ``ucr_rows``), sktime's and aeon's .ts
(``read_ts``) and .npz archives (``read_npz``). A field that is neither a number nor a missing mark (``as_number``)
is refused in one line, never filled; whole-number labels are named alike in any spelling (``label_text``).
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..config import ConfigError
from ..registry import first_line
from .compressed import read_text_file

UCR_FIX = ("give a UCR-format text file (per line: the label, then the values, separated by tabs, commas or spaces) "
           "or an .npz")


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
    if len(rows) > 1 and not any(map(_numeric, rows[0][1:])) and any(map(_numeric, rows[1][1:])):
        raise ConfigError(f"{path}: the first line ({lines[0][:40]!r}) looks like a header of column names; the "
                          "UCR format has none: remove it (e.g. pandas' to_csv(path, header=False, index=False))")
    values = [as_numbers(row[1:], f"{path}: line {number}", LABEL_FIRST) for number, row in enumerate(rows, 1)]
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
        series.append([as_numbers(channel.split(","), f"{path}: series {number}") for channel in fields])
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
    if path.suffix.lower() == ".arff" or any(line.lstrip().lower().startswith("@relation") for line in lines[:50]):
        raise ConfigError(f"{path} is an ARFF file (Weka's); give the same data set's .ts file, or its UCR .txt / .tsv "
                          "(timeseriesclassification.com's zip of a data set holds them)")
    sep = "\t" if "\t" in lines[0] else "," if "," in lines[0] else None  # None: runs of spaces
    rows = []
    for line in lines:
        fields = [field.strip() for field in (line.split(sep) if sep else line.split())]
        while len(fields) > 1 and not fields[-1]:
            fields.pop()
        rows.append(fields)
    return lines, rows


def drop_empty_tail(x: np.ndarray, length: int) -> np.ndarray:
    """(N, L, C) without its steps past ``length`` that no series has a value in: NaN padding of unequal series,
    written to a file's own longest (a test file's, new series')."""
    return x[:, :max([length, *(np.flatnonzero(~np.isnan(x).all(axis=(0, 2))) + 1)])]


def padded(values: list[list[float]]) -> np.ndarray:
    """Rows of numbers as an (N, longest) array, the shorter ones ending in NaN (missing values)."""
    x = np.full((len(values), max(map(len, values))), np.nan)
    for i, row in enumerate(values):
        x[i, :len(row)] = row
    return x


MISSING_MARKS = ("?", "", "na", "n/a", "null", "none")  # and NaN, which float reads
LABEL_FIRST = " (a class label last? The UCR format puts the label first, then the values)"


def as_number(field: str) -> float:
    """A field's value: NaN for the ``MISSING_MARKS``; other text raises ValueError (not a missing value: a label
    in the wrong place, a column of names, which filling would train on silently)."""
    try:
        return float(field)
    except ValueError:
        if field.strip().lower() in MISSING_MARKS:
            return float("nan")
        raise


def as_numbers(fields: list[str], where: str, last_hint: str = "") -> list[float]:
    """The values of ``fields``; text that is neither a number nor missing is refused in one line naming
    ``where`` (``last_hint`` added when it is the last field)."""
    try:
        return [as_number(v) for v in fields]
    except ValueError:
        k = next(k for k, v in enumerate(fields) if not _numeric(v) and v.strip().lower() not in MISSING_MARKS)
        raise ConfigError(f"{where} holds {fields[k]!r} where a value belongs: numbers, or '?' / NaN where one is "
                          f"missing{last_hint if k == len(fields) - 1 else ''}") from None


def _numeric(field: str) -> bool:
    try:
        return not np.isnan(float(field))
    except ValueError:
        return False


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
    return x_in_layout(x, layout, path, y), y


def x_in_layout(x: np.ndarray, layout: str | None, path, y: np.ndarray | None = None) -> np.ndarray:
    """X as (N, L, C), from (N, L) or ``layout``'s 3-D order (see ``read_npz``; ``path`` names it in errors)."""
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
    return x


__all__ = ["UCR_FIX", "read_ucr", "read_ts", "ucr_rows", "drop_empty_tail", "padded", "MISSING_MARKS", "LABEL_FIRST",
           "as_number", "as_numbers", "label_text", "LAYOUTS", "read_npz",
           "x_in_layout"]
