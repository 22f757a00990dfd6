"""Time series from CSV or Parquet files or DataFrames: time splits, train-only scaling, sliding windows, metrics.

The conventions are those of Informer / Autoformer / PatchTST / DLinear, so our numbers compare with theirs
(see ``docs/series.md``):

- ``split="ett"``: 12 / 4 / 4 months of 30 days. Hourly ETT (24 rows a day): train rows [0, 8640), validation
  [8640 - L, 11520), test [11520 - L, 14400); 15-minute ETT (96 rows a day) is the same times 4. Later rows unused.
- ``split="ratio"`` (their ``Dataset_Custom``): the first 70% train, the last 20% test, the rest validation;
  validation and test start L rows early.
- A ``StandardScaler`` fitted on the training rows only is applied to every row (or, ``scaler``, the
  statistics of a trained run, for scoring it on other data); each split's gaps are filled from the
  rows up to its end only.
- Windows of L inputs and H targets, stride 1; every window is used (no drop_last).
- Metrics: MSE and MAE averaged over all windows, channels and horizon steps.

Missing values follow ``missing``: "error" (default) stops with one line naming the column and how many values
are missing; "ffill" carries the last observation forward (and the first one back over a leading gap);
"interpolate" fills linearly in time (and carries the ends outwards). Nothing is filled silently. ``csv_series``
and ``ett`` put the rows on their time grid first (series_grid.py): an absent timestamp is a row of missing values.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ..batch import INPUTS, TARGETS
from ..config import ConfigError
from ..registry import check_sizes
from ..timestamps import integer_steps, parse_dates, plain  # noqa: F401 (re-exported: the readers' time parsing)
from ..timestamps import rows_freq
from .csv_files import number_text, read_csv_file, text_numbers  # noqa: F401 (read_csv_file re-exported)
from .tables import read_table, series_file
from .registry import DataBundle, register_data
from .series_args import split_ratios
from .series_grid import put_on_grid, refuse_lacking
from .series_report import forecast_errors, save_forecast_report

MISSING_POLICIES = ("error", "ffill", "interpolate")


def read_series(source: str | Path | pd.DataFrame, date_column: str | None = "date", columns: list[str] | None = None,
                missing: str = "error") -> pd.DataFrame:
    """A float DataFrame indexed by the parsed ``date_column``, with the value ``columns`` (default: all others).

    ``source``: a CSV or Parquet path (:func:`~xformer.data.tables.read_table`) or a DataFrame with a
    ``date_column`` column or a DatetimeIndex. A ``date_column`` of whole numbers (a time index: 0, 1, 2, ... or
    any increasing integers) stays an integer index;
    ``date_column=None`` numbers the rows 0, 1, 2, ... for a file without one (a DataFrame keeps its integer
    index). A long-format frame (``unique_id, ds, y``) of aligned series is read as that wide table
    (:func:`long_to_wide`). Gaps are filled over the whole table (:func:`fill_gaps`), which is right for data
    that is all history (training); a forecast from an origin inside the table reads it with
    :func:`read_raw_series` and fills each history after cutting it, so no filled value comes from later rows."""
    return fill_gaps(read_raw_series(source, date_column, columns, missing), missing)


def read_raw_series(source: str | Path | pd.DataFrame, date_column: str | None = "date",
                    columns: list[str] | None = None, missing: str = "error", grid: bool = False,
                    freq=None) -> pd.DataFrame:
    """:func:`read_series` without the fill: every check, and ``missing="error"`` refuses gaps, but the gaps of
    the other policies stay NaN for :func:`fill_gaps` to fill once the table is cut at a forecast origin.
    ``grid``: the rows put on their time grid first (``freq``, else inferred: series_grid.py), absent timestamps
    becoming rows of missing values, as the train path reads a table (the Forecaster grids it itself)."""
    if missing not in MISSING_POLICIES:
        raise ConfigError(f"unknown missing='{missing}'; choose one of {', '.join(MISSING_POLICIES)}")
    if isinstance(source, pd.DataFrame):
        frame, name = source, "the series"
    else:
        path = series_file(source)
        frame, name = read_table(path), str(path)  # a CSV's ids as written: 001 stays 001, NA stays NA
    if frame.empty and len(frame.columns):  # a CSV of only its header
        raise ConfigError(f"{name} has no rows, only the columns {list(frame.columns)}; give it the series' values, "
                          "one row per time step")
    if date_column is not None and date_column not in frame.columns and {"unique_id", "ds", "y"} <= set(frame.columns):
        frame, date_column = long_to_wide(frame, name), "ds"
    if date_column is not None and date_column not in frame.columns and (
            isinstance(frame.index, pd.DatetimeIndex) or frame.index.name == date_column):
        frame = frame.rename_axis(date_column).reset_index()  # indexed by its dates (e.g. read_series' own output)
    if date_column is not None and date_column not in frame.columns:
        raise ConfigError(f"no date column '{date_column}' in the series; columns are {list(frame.columns)}; "
                          "set date_column to the column of dates (or of integer time steps), or to null to "
                          "number the rows 0, 1, 2, ...")
    repeated = frame.columns[frame.columns.duplicated()]
    if len(repeated):  # a frame built with a name twice: which of the two is the series?
        raise ConfigError(f"{name} has two columns named {repeated[0]!r}; give each column its own name")
    columns = [columns] if isinstance(columns, str) else columns  # one column written without brackets in a recipe
    if not columns and len(frame.columns) > 1 and str(frame.columns[0]) == "Unnamed: 0" \
            and pd.api.types.is_integer_dtype(frame.iloc[:, 0]):
        frame = frame.iloc[:, 1:]  # the unnamed index DataFrame.to_csv(path) writes first: row numbers, not a series
    columns = list(columns) if columns else [c for c in frame.columns if c != date_column]
    unknown = [c for c in columns if c not in frame.columns]
    if unknown:
        raise ConfigError(f"unknown column(s) {unknown}; the series has {list(frame.columns)}")
    if len(set(columns)) < len(columns):  # pandas would read the column twice, and fail on it
        raise ConfigError(f"columns={columns} names a column more than once; name each column once")
    values, text = text_numbers(frame[columns])  # blank text: a missing value
    if text.any():  # before the missing policy: no fill can turn text into a number
        row, col = (int(i[0]) for i in np.nonzero(text))
        value = plain(frame[columns].iat[row, col])
        raise ConfigError(f"column '{columns[col]}' of {name} holds non-numeric value {value!r} at row {row + 1}; "
                          f"values must be numbers: fix the value, or choose the value columns with columns=[...]"
                          f"{number_text(value, columns[col])}")
    empty = [c for c in columns if values[c].isna().all()]
    if empty:
        raise ConfigError(f"column '{empty[0]}' of {name} holds no value at all; drop it (or choose the value "
                          "columns with columns=[...])")
    infinite = np.isinf(values.to_numpy())
    if infinite.any():
        row, col = (int(i[0]) for i in np.nonzero(infinite))
        raise ConfigError(f"column '{columns[col]}' of {name} holds {values.iat[row, col]} at row {row + 1}; values "
                          "must be finite numbers (write a missing value as an empty cell)")
    if date_column is None:  # the rows' own integer index: 0, 1, 2, ... from a CSV; a slice keeps its numbers
        integer = pd.api.types.is_integer_dtype(frame.index)
        values.index = pd.Index(frame.index.to_numpy() if integer else np.arange(len(frame)), name=None)
    elif (steps := integer_steps(frame[date_column], name)) is not None:
        values.index = pd.Index(steps.to_numpy(), name=date_column)  # a time index, not dates
    else:
        values.index = pd.DatetimeIndex(parse_dates(frame[date_column], name), name=date_column)
    if not values.index.is_monotonic_increasing:
        raise ConfigError(f"the dates in column '{date_column}' are not in increasing order; sort the rows first")
    if not values.index.is_unique:  # two rows for one time: which is the series' value?
        twice = values.index[values.index.duplicated()][0]
        rows = [int(i) + 1 for i in np.flatnonzero(values.index == twice)]
        raise ConfigError(f"{name} has {len(rows)} rows at {twice} (rows {', '.join(map(str, rows))} of column "
                          f"'{date_column}'); keep one row per date")
    values, inserted, step = put_on_grid(values, freq, name, date_column) if grid else (values, (), None)
    counts = values.isna().sum()
    if counts.any() and missing == "error" and len(inserted):
        refuse_lacking(values, inserted, step, name)
    if counts.any() and missing == "error":
        where = ", ".join(f"'{c}' ({n} of {len(values)} rows)" for c, n in counts[counts > 0].items())
        raise ConfigError(f"missing values in column {where}; pass missing='ffill' or missing='interpolate' to fill "
                          "them (in a recipe or on the command line: data.args.missing=interpolate)")
    return values


def fill_gaps(values: pd.DataFrame | pd.Series, missing: str) -> pd.DataFrame | pd.Series:
    """The gaps of ``values`` filled by the ``missing`` policy: "ffill" carries the last observation forward,
    "interpolate" fills linearly in time between the observations around a gap and carries the last one
    forward over a trailing gap; both carry the first observation back over a leading gap. So a filled value
    depends on no row after the last one: a history cut at its forecast origin and then filled reads nothing
    past the origin. "error" leaves ``values`` as they are (its readers refuse gaps)."""
    if missing == "error" or not values.isna().to_numpy().any():
        return values
    by = "time" if isinstance(values.index, pd.DatetimeIndex) else "index"  # linear in time either way
    values = values.ffill() if missing == "ffill" else values.interpolate(method=by).ffill()
    return values.bfill()


def sorted_ids(ids: pd.Series) -> list[str]:
    """The distinct ids of a ``unique_id`` column, as text, sorted as neuralforecast sorts them: numbers by value
    (2 before 10), anything else as text. A frame's series then come in one order whatever the order of its
    rows (after a merge, a ``sample()``), and so does a seeded model trained on them."""
    texts = ids.astype(str)
    if pd.api.types.is_numeric_dtype(ids) and not pd.api.types.is_bool_dtype(ids):
        firsts = pd.Series(ids.to_numpy(), index=texts.to_numpy()).groupby(level=0).first()
        return list(firsts.sort_values(kind="stable").index)
    return sorted(set(texts))


def long_to_wide(frame: pd.DataFrame, name: str = "the series") -> pd.DataFrame:
    """A long frame (``unique_id, ds, y``: neuralforecast's format) as a wide table with a ``ds`` column and one
    column per series, sorted by id (:func:`sorted_ids`), for a model of all series together (the channels). That
    model reads every series at the same time steps, so they must cover the same ``ds``; other columns are
    ignored."""
    ids = frame["unique_id"].astype(str)
    dup = frame.assign(unique_id=ids).duplicated(["unique_id", "ds"])
    if dup.any():
        row = int(np.argmax(dup.to_numpy()))
        raise ConfigError(f"{name}: series '{ids.iloc[row]}' has two rows at {frame['ds'].iloc[row]}; keep one row "
                          "per (unique_id, ds)")
    rows, first = ids.groupby(ids, sort=False).size(), ids.iloc[0]  # no duplicates: a series covers the first's
    inside = frame["ds"].isin(frame["ds"][(ids == first).to_numpy()]).groupby(ids, sort=False).all()  # ds when it
    differ = rows.index[(rows.to_numpy() != rows[first]) | ~inside.to_numpy()]  # has as many rows, all at its ds
    if len(differ):
        raise ConfigError(f"{name} is in long format and its series cover different time steps ('{first}': "
                          f"{rows[first]} rows, '{differ[0]}': {rows[differ[0]]}); a model of all "
                          "series together needs them aligned: use the Forecaster (one model over series of any "
                          "lengths, docs/series.md) or give series that share their ds")
    wide = frame.assign(unique_id=ids).pivot(index="ds", columns="unique_id", values="y")
    wide = wide[sorted_ids(frame["unique_id"])].rename_axis(None, axis=1)
    return wide.reset_index()


def split_borders(n_rows: int, input_len: int, split: str = "ratio", rows_per_day: int = 24,
                  train_ratio: float = 0.7, test_ratio: float = 0.2) -> list[tuple[int, int]]:
    """[(start, end)] row ranges of train, validation and test, each test/val range starting L rows early."""
    if split == "ett":
        month = 30 * rows_per_day
        ends = [12 * month, 16 * month, 20 * month]
        if n_rows < ends[-1]:
            raise ConfigError(f"split='ett' needs {ends[-1]} rows (20 months of {rows_per_day} rows a day), "
                              f"the series has {n_rows}; use split='ratio' (data.name=csv_series data.args.split=ratio)")
    elif split == "ratio":
        n_train, n_test = int(n_rows * train_ratio), int(n_rows * test_ratio)
        ends = [n_train, n_rows - n_test, n_rows]
    else:
        raise ConfigError(f"unknown split '{split}'; choose ett or ratio")
    return [(0, ends[0]), (ends[0] - input_len, ends[1]), (ends[1] - input_len, ends[2])]


SPLITS = ("train", "validation", "test")


def check_split_lengths(borders: list[tuple[int, int]], n_rows: int, input_len: int, horizon: int) -> None:
    """Every split must hold one window of input_len + horizon rows (validation and test count the
    input_len rows they read before their start); train is checked first, so that the others never
    start before row 0."""
    for split, (start, end) in zip(SPLITS, borders):
        if end - start < input_len + horizon:
            raise ConfigError(f"the {split} split gets {max(end - start, 0)} of the series' {n_rows} rows, "
                              f"too short for input_len={input_len} + horizon={horizon}; give a longer series "
                              "or a shorter input_len / horizon")


class WindowDataset(Dataset):
    """Item i: inputs = values[i : i+L], targets = values[i+L : i+L+H]; len = T - L - H + 1.

    ``carried`` = (last_observed, forward_filled), both (T, C), for a table whose gaps were interpolated:
    the row of each value's last observation at or before it (rows before the table's start are negative)
    and the table filled forward only. Interpolating a gap uses the observation after it, which for a gap
    that reaches a window's origin lies in the window's future: such a trailing gap of the inputs takes the
    forward-filled values instead, as filling the history cut at the origin gives (``fill_gaps``); inside
    the inputs, between two observations before the origin, nothing changes."""

    def __init__(self, values: np.ndarray, input_len: int, horizon: int,
                 carried: tuple[np.ndarray, np.ndarray] | None = None):
        self.values = torch.as_tensor(np.asarray(values, dtype=np.float32))
        self.input_len, self.horizon = input_len, horizon
        self.carried = None if carried is None else (torch.as_tensor(carried[0], dtype=torch.long),
                                                     torch.as_tensor(np.asarray(carried[1], dtype=np.float32)))
        if len(values) - input_len - horizon + 1 <= 0:
            raise ConfigError(f"a split of {len(values)} rows is too short for input_len={input_len} + "
                              f"horizon={horizon}")

    def __len__(self) -> int:
        return max(0, len(self.values) - self.input_len - self.horizon + 1)

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(i)
        cut = i + self.input_len
        return {INPUTS: carried_rows(self.values, self.carried, i, cut), TARGETS: self.values[cut:cut + self.horizon]}


def carried_rows(values: torch.Tensor, carried: tuple[torch.Tensor, torch.Tensor] | None, lo: int, hi: int
                 ) -> torch.Tensor:
    """``values[lo:hi]``, its trailing gap (the rows after each column's last observation at or before row
    hi - 1) taken from the forward-filled ``carried[1]`` instead: what filling the rows cut at hi - 1 gives, so
    rows read up to hi - 1 (a window's origin) never hold a value interpolated from later rows (``WindowDataset``;
    the Forecaster's windows of targets and covariates too)."""
    if carried is None:
        return values[lo:hi]
    last_observed, forward = carried[0][hi - 1], carried[1][lo:hi]
    trailing = (torch.arange(lo, hi)[:, None] > last_observed) & ~forward.isnan()
    return torch.where(trailing, forward, values[lo:hi])


def last_observed_rows(frame: pd.DataFrame) -> np.ndarray:
    """(T, C): the row of each value's last observation at or before it, -1 before a column's first."""
    rows = np.where(frame.notna().to_numpy(), np.arange(len(frame))[:, None], -1)
    return np.maximum.accumulate(rows, axis=0)


def standard_scaler(train: np.ndarray, columns: list[str], given: dict | None = None):
    """The StandardScaler fitted on the training rows ``train``, or, with ``given`` ({mean: [...], scale: [...]},
    one value per column, and optionally the ``columns`` they belong to, checked: a run's series_scaler.json),
    one holding those statistics: other data for a trained model is then standardised as the run's training
    data was, so its errors see a level shift."""
    from sklearn.preprocessing import StandardScaler  # here, not at the top: sklearn costs every command ~1 s
    if given is None:
        empty = [c for c, none in zip(columns, np.isnan(train).all(axis=0)) if none]
        if empty:
            raise ConfigError(f"column '{empty[0]}' holds no value in the training rows; give a series with values "
                              "there, or move the split (train_ratio)")
        return StandardScaler().fit(train)
    named = given.get("columns") if isinstance(given, dict) else None
    if named is not None and list(named) != list(columns):
        raise ConfigError(f"the data's columns {list(columns)} are not the run's {list(named)} (data.args.scaler "
                          "holds its statistics); give data labelled as the run's")
    try:
        mean, scale = (np.asarray(given[k], dtype=np.float64).reshape(-1) for k in ("mean", "scale"))
    except (KeyError, TypeError, ValueError):
        mean = scale = np.zeros(0)
    if not (len(mean) == len(scale) == len(columns)) or not np.isfinite([*mean, *scale]).all() or (scale <= 0).any():
        raise ConfigError(f"data.args.scaler must be {{mean: [...], scale: [...]}}, {len(columns)} finite numbers "
                          f"each (one per column {columns}), scales above 0; got {given!r}")
    scaler = StandardScaler()
    scaler.mean_, scaler.scale_, scaler.var_ = mean, scale, scale ** 2
    scaler.n_features_in_, scaler.n_samples_seen_ = len(mean), 1
    return scaler


def series_bundle(frame: pd.DataFrame, input_len: int, horizon: int, split: str = "ratio",
                  rows_per_day: int | None = None, scale: bool = True, train_ratio: float = 0.7,
                  test_ratio: float = 0.2, missing: str = "error", scaler: dict | None = None) -> DataBundle:
    """Split, scale and window a frame from :func:`read_raw_series` into a DataBundle. Each split's gaps are
    filled by the ``missing`` policy (``fill_gaps``) from the rows up to that split's end only, and with
    "interpolate" no window's inputs read past its origin (``WindowDataset``). ``train_ratio`` and
    ``test_ratio`` place the borders of split="ratio" (:func:`split_borders`); split="ett" ignores them.
    ``scaler``: the statistics to standardise with instead of the training rows' (:func:`standard_scaler`)."""
    gaps = missing == "interpolate" and bool(frame.isna().to_numpy().any())
    last_observed, forward = (last_observed_rows(frame), frame.ffill()) if gaps else (None, None)
    if rows_per_day is None and not isinstance(frame.index, pd.DatetimeIndex):
        if split == "ett":
            raise ConfigError("split 'ett' counts months of 30 days, and integer time steps have no days; set "
                              "data.args.rows_per_day (24 for hourly rows) or use split 'ratio'")
        rows_per_day = 1  # unused by split="ratio"
    if rows_per_day is None:
        step = (frame.index[1:] - frame.index[:-1]).median() if len(frame) > 1 else pd.Timedelta(hours=1)
        rows_per_day = max(1, round(pd.Timedelta(days=1) / step))
    borders = split_borders(len(frame), input_len, split, rows_per_day, train_ratio, test_ratio)
    check_split_lengths(borders, len(frame), input_len, horizon)
    # each split's rows filled from the rows up to that split's end only: the training rows (and so the scaler
    # and the last training targets) never read a validation value, the validation rows never a test value
    splits = [fill_gaps(frame.iloc[:b], missing).to_numpy()[a:b] for a, b in borders]
    scaler = standard_scaler(splits[0], list(frame.columns), scaler) if scale else None
    if scaler is not None:
        splits = [scaler.transform(v) for v in splits]
    if gaps:
        forward = scaler.transform(forward.to_numpy()) if scaler is not None else forward.to_numpy()  # NaN stays
    train, val, test = (WindowDataset(v, input_len, horizon,
                                      None if not gaps else (last_observed[a:b] - a, forward[a:b]))
                        for v, (a, b) in zip(splits, borders))

    def evaluate(model, batches) -> dict[str, float]:
        errors = forecast_errors(model, batches, scaler)
        return {k: v for k, v in errors.items() if not isinstance(v, list)}

    def save(run_dir: Path) -> None:
        end = frame.index[borders[1][1] - 1]  # the validation split's last row: the weights were chosen up to it
        stats = {"columns": list(frame.columns), "date_column": frame.index.name, "input_len": input_len,
                 "horizon": horizon, "mean": None if scaler is None else scaler.mean_.tolist(),
                 "scale": None if scaler is None else scaler.scale_.tolist(),
                 "validation_end": int(end) if isinstance(end, (int, np.integer)) else pd.Timestamp(end).isoformat(),
                 "freq": rows_freq(frame.index)}
        (Path(run_dir) / "series_scaler.json").write_text(json.dumps(stats, indent=1), encoding="utf-8")

    def report(model, batches, run_dir: Path, split: str = "test") -> dict:
        return save_forecast_report(run_dir, forecast_errors(model, batches, scaler), split)

    c = frame.shape[1]
    model_args = {"tokenizer": {"n_channels": c, "input_len": input_len}, "head": {"horizon": horizon}}
    bundle = DataBundle(train, val, test, model_args=model_args, evaluate=evaluate, save=save, report=report)
    bundle.scaler = scaler  # for inverse transforms and the per-step errors (forecast_errors(..., bundle.scaler))
    return bundle


def synthetic_frame(n_rows: int = 4000, n_channels: int = 3, freq: str = "h", seed: int = 0) -> pd.DataFrame:
    """The embedded default: hourly channels with daily and weekly seasonality, a trend and noise.

    x_c(t) = a_c sin(2 pi t / 24 + phi_c) + b_c sin(2 pi t / 168) + s_c t / n + 0.3 eps_t,  eps ~ N(0, 1)
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_rows)
    cols = {}
    for c in range(n_channels):
        a, b, s, phi = rng.uniform(0.5, 2.0), rng.uniform(0.2, 1.0), rng.uniform(-2, 2), rng.uniform(0, 2 * np.pi)
        cols[f"x{c}"] = (a * np.sin(2 * np.pi * t / 24 + phi) + b * np.sin(2 * np.pi * t / 168) + s * t / n_rows
                         + 0.3 * rng.standard_normal(n_rows))
    return pd.DataFrame({"date": pd.date_range("2020-01-01", periods=n_rows, freq=freq), **cols})


@register_data("csv_series")
def csv_series(path: str | None = None, date_column: str | None = "date", columns: list[str] | None = None,
               input_len: int = 336, horizon: int = 96, split: str = "ratio", rows_per_day: int | None = None,
               missing: str = "error", scale: bool = True, train_ratio: float | None = None,
               test_ratio: float | None = None, scaler: dict | None = None, freq: str | int | None = None) -> DataBundle:
    """A CSV series (or, with no path, the generated :func:`synthetic_frame`), split by ratio by default:
    the first ``train_ratio`` of the rows train, the last ``test_ratio`` test, the rest validation. ``scaler``
    ({mean, scale}): standardise with these statistics (a run's) instead of the training rows' (refused with
    scale=False, as the ratios with split="ett" and rows_per_day with "ratio": unread). ``freq``: the grid of
    the rows (default: inferred), whose absent timestamps are missing rows (``read_raw_series``)."""
    check_sizes("data.args", input_len=input_len, horizon=horizon, rows_per_day=rows_per_day)
    if scaler is not None and not scale:
        raise ConfigError("data.args.scaler is given but scale=False never standardises; leave scaler out")
    train_ratio, test_ratio = split_ratios(split, train_ratio, test_ratio, rows_per_day)
    frame = read_raw_series(path if path is not None else synthetic_frame(), date_column, columns, missing, True, freq)
    return series_bundle(frame, input_len, horizon, split, rows_per_day, scale, train_ratio, test_ratio, missing,
                         scaler)


@register_data("ett")
def ett(path: str = "../shared/data/ETTh1.csv", columns: list[str] | None = None, input_len: int = 336,
        horizon: int = 96, rows_per_day: int | None = None, missing: str = "error",
        scaler: dict | None = None, freq: str | None = None) -> DataBundle:
    """ETTh1/ETTh2 (hourly) or ETTm1/ETTm2 (15-minute) with the 12/4/4-month split of the literature; ``scaler``
    and ``freq`` as in :func:`csv_series`."""
    check_sizes("data.args", input_len=input_len, horizon=horizon, rows_per_day=rows_per_day)
    return series_bundle(read_raw_series(path, "date", columns, missing, True, freq), input_len, horizon, "ett",
                         rows_per_day, missing=missing, scaler=scaler)


__all__ = ["read_series", "read_raw_series", "fill_gaps", "read_csv_file", "parse_dates", "integer_steps", "plain",
           "long_to_wide", "split_borders", "check_split_lengths", "WindowDataset", "carried_rows",
           "last_observed_rows", "forecast_errors", "save_forecast_report", "series_bundle", "synthetic_frame"]
