"""Series the way forecasting users hold them: long format ``unique_id, ds, y`` (neuralforecast's
convention) or one wide table (a date column and one value column per series).

Both become one :class:`Panel`: an ordered dict of series, each a float ``pd.Series`` indexed by
its timestamps, so every later step (scaling, windows, forecasts) has one code path. ``ds`` holds dates,
or whole numbers (neuralforecast's integer time index, e.g. M4's): integer ``ds`` keeps an integer index and
the frequency is then the step between rows (``freq=1``), so forecasts continue as last + k * step. A wide table
is read by :func:`~xformer.data.series.read_series` and each value column becomes a series named
after it, in column order, spanning its first to its last value (a column's leading empty cells mean the series
starts later, its trailing ones that it ends earlier, as the same data in long format; read ``aligned`` for a
model of the columns together, every column spans the table's dates); a long frame's series are sorted by
id, numbers by value (neuralforecast's order: the order of the rows never changes the model). Series may have
different lengths and start dates. ``unique_id`` values are read as strings (and so the results' ids are text);
ids of mixed types that would merge or split as text (1 and "1", 1 and 1.0) are refused in one line.

Once the frequency is known (given, or inferred: data/frequency.py), a series' missing timestamps (its first date +
k * freq without a row, or a date missing from a wide table) become rows with a missing ``y`` and missing
covariates, so that the rows stay one step apart for windows, cutoffs and forecast dates: any number of them for
a given freq, at most 10% of its rows (and most rows one step apart) for an inferred one.

Checks, each a one-line :class:`~xformer.config.ConfigError`: a missing ``unique_id`` / ``ds`` /
``y`` column, a date that is not a date, non-numeric ``y``, two rows of one series at the same
timestamp, dates out of order are sorted (long format only). Missing ``y`` values and missing timestamps follow
the ``missing`` policy of ``read_series`` (error / ffill / interpolate), per series; a Panel keeps the gaps (NaN)
and :func:`fill_series` fills them only once the series are cut at their forecast origins, so that no history
is filled from rows after its origin (covariates likewise, covariates.window_covariates).
"""
from __future__ import annotations

import contextlib
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ConfigError
from ..data.csv_files import number_text, text_numbers
from ..data.tables import read_table, series_file
from ..data.series import (MISSING_POLICIES, fill_gaps, integer_steps, parse_dates, plain, read_raw_series,
                           sorted_ids)
from ..errors import a_or_an
from ..metrics_forecast import ids_as_text
from .columns import check_long, check_names
from ..data.frequency import check_freq, freq_label, future_dates, grid_freq, infer_freq, on_grid, parse_freq

ID, DS, Y = "unique_id", "ds", "y"
ROW = "step"  # the index name of a wide table read with date_column=None (its rows numbered 0, 1, 2, ...)
POINT = "y_hat"  # the point forecast column of a long result (the median when quantiles are trained)


def quantile_column(q: float) -> str:
    return f"{POINT}_q{q:.12g}"  # 12 digits: 0.9999999 stays apart from 1


def forecast_frame(keys: list[str], dates: list[pd.Index], points: np.ndarray, quantiles: np.ndarray | None,
                   levels: list[float] | None) -> pd.DataFrame:
    """The long forecast of series ``keys``: their ``dates`` (h each), ``points`` (S, h) and ``quantiles`` (S, h, Q)
    at ``levels`` (the median's are the points), built as one frame (a frame per series and their concat cost
    about 1 ms a series, seconds for each predict of a panel of thousands)."""
    h = points.shape[1]
    frame = pd.DataFrame({ID: np.repeat(np.array(keys, dtype=object), h), DS: dates[0].append(dates[1:]),
                          POINT: points.reshape(-1)})
    for j, q in enumerate(sorted(levels or [])):
        if q != 0.5:
            frame[quantile_column(q)] = quantiles[:, :, j].reshape(-1)
    return frame


@dataclass
class Panel:
    """Series by id (ordered), and whether they came as a wide table (its date column's name)."""

    series: dict[str, pd.Series]
    wide_date_column: str | None = None
    covariates: dict[str, pd.DataFrame] | None = None  # per series, indexed by ds; may reach past its y


    @property
    def ids(self) -> list[str]:
        return list(self.series)

    def truncated(self, rows: dict[str, int]) -> "Panel":
        """Each series cut to its first ``rows[id]`` values (ids not named are kept whole)."""
        return Panel({k: s.iloc[:rows.get(k, len(s))] for k, s in self.series.items()}, self.wide_date_column,
                     self.covariates)

    def to_long(self) -> pd.DataFrame:
        return pd.DataFrame({ID: np.concatenate([[k] * len(s) for k, s in self.series.items()]).astype(object),
                             DS: np.concatenate([s.index.to_numpy() for s in self.series.values()]),
                             Y: np.concatenate([s.to_numpy() for s in self.series.values()])})


def load_frame(source: pd.DataFrame | str | Path) -> pd.DataFrame:
    """A pandas frame from a frame, a CSV or Parquet path, or a table with ``to_pandas()`` (polars, pyarrow), as
    neuralforecast takes them. A CSV's ``unique_id`` is read as text, as written (ids 001 and 1 stay apart and
    match the ids of a frame holding them as strings); a Parquet file's keeps its stored type. A frame indexed by
    ``unique_id`` (and ``ds``), as older neuralforecast took it and ``set_index`` / ``groupby`` leave it, has them
    read as columns, and so has an index named ``ds`` of a frame with a ``unique_id`` column; an index named ``ds``
    alone stays a wide table's dates."""
    if isinstance(source, pd.DataFrame):
        levels = [n for n in source.index.names if n in (ID, DS) and n not in source.columns]
        frame = source.reset_index(levels) if ID in levels or levels and ID in source.columns else source
        check_names(frame)  # a name twice, unique_id / ds / y spelt otherwise
        return frame
    if hasattr(source, "to_pandas"):
        return load_frame(source.to_pandas())
    if not isinstance(source, (str, Path)):
        fix = {pd.Series: "; pass series.to_frame(), a wide table of one column named after it (its index the "
                          "dates)", dict: "; pass pd.DataFrame(data)", list: "; pass pd.DataFrame(data)"}
        raise ConfigError(f"series data must be a pandas DataFrame, a table with to_pandas() (polars, pyarrow) or "
                          f"the path of a CSV or Parquet file, not {a_or_an(type(source).__name__)}"
                          f"{next((v for k, v in fix.items() if isinstance(source, k)), '')}")
    return load_frame(read_table(series_file(source)))


def is_long(frame: pd.DataFrame, date_column: str = "date") -> bool:
    """Long format: a ``unique_id`` column, or ``ds`` and ``y`` columns and no wide date column."""
    columns = set(frame.columns)
    return ID in columns or ({DS, Y} <= columns and date_column not in columns)


def read_panel(source: pd.DataFrame | str | Path, date_column: str = "date", columns: list[str] | None = None,
               missing: str = "error", exog: list[str] | None = None, freq=None, aligned: bool = False,
               least: int = 0) -> Panel:
    """A :class:`Panel` from a long frame, a wide frame, or a CSV or Parquet path holding either; ``exog``: the
    covariate columns of a long frame to keep (``Panel.covariates``). Each series is put on the grid of
    ``freq`` (given, or a fitted forecaster's; default: inferred, ``grid_freq``), its missing timestamps inserted
    as rows without values by the rules of a given or an inferred freq (data/frequency.py); gaps are checked against
    ``missing`` and kept as NaN: :func:`fill_series` fills them after the series are cut at their origins.
    ``aligned``: a wide table's columns are read as one table, each spanning all of its dates (a model that reads
    them together), its empty cells, leading and trailing ones too, following ``missing``; else each column spans
    its own first to last value. ``least``: series of fewer rows are too short to use, so their few rows (which
    may look like another frequency) do not count in an inferred grid, unless every series is that short."""
    frame = load_frame(source)
    if missing not in MISSING_POLICIES:
        raise ConfigError(f"unknown missing='{missing}'; choose one of {', '.join(MISSING_POLICIES)}")
    if exog and not is_long(frame, date_column):
        raise ConfigError(f"covariates {exog} need the long format: columns unique_id, ds, y and the covariates")
    if not is_long(frame, date_column):
        if date_column in frame.columns:
            refuse_periods(frame[date_column], date_column)
        else:
            refuse_periods(frame.index, "index")
        if {DS, Y} & set(frame.columns) and date_column is not None and date_column not in frame.columns \
                and not isinstance(frame.index, pd.DatetimeIndex):
            have = sorted(str(c) for c in frame.columns)
            wide = f"a wide table with its dates in 'ds' needs date_column='ds' (Forecaster(date_column='ds')); " \
                if Y not in frame.columns else ""  # e.g. df.pivot(index="ds", columns="unique_id").reset_index()
            raise ConfigError(f"{wide}a long-format frame needs columns unique_id, ds and y; it has {have}")
        wide = read_raw_series(frame, date_column, columns, "interpolate")  # its gaps are checked per series below
        series = {str(c): wide[c].rename(Y).rename_axis(DS) for c in wide.columns}
        series = series if aligned else {k: _span(s) for k, s in series.items()}
    else:
        series = _read_long(frame, missing, exog or [])
        for key, s in series.items() if exog else ():  # columns Y, *exog: taken by position, not looked up by name
            refuse_appended_rows(key, s.iloc[:, 0], s.iloc[:, 1:])  # before the policy's advice to fill them
    grid = grid_freq([s.index for s in series.values() if len(s) >= least] or
                     [s.index for s in series.values()], freq)
    for key in series:
        s, inserted = on_grid(series[key], grid, inferred=freq is None, key=key)
        series[key] = s
        gaps = s.isna().to_numpy().reshape(len(s), -1).any(axis=0)
        for c in np.flatnonzero(gaps):  # only a column with gaps can be refused
            check_missing(s if not exog else s.iloc[:, c], key, missing, Y if not exog else s.columns[c], inserted,
                          grid)
    if not is_long(frame, date_column):
        return Panel(series, date_column or ROW)
    if not exog:
        return Panel(series)
    return Panel({k: s.iloc[:, 0] for k, s in series.items()},
                 covariates={k: s.iloc[:, 1:] for k, s in series.items()})


def refuse_periods(values: pd.Series | pd.Index, column: str) -> None:
    """pandas Periods (``.dt.to_period("M")``) are spans of time, not the dates a series is read at: refused in one
    line naming the conversion to dates (their starts)."""
    typed = isinstance(values.dtype, pd.PeriodDtype)  # else objects, of which the first 1000 are looked at
    if not typed and values.dtype != object:
        return
    first = next((v for v in values[:1000] if isinstance(v, pd.Period)), None)
    if first is None:
        return
    where = "the index" if column == "index" else f"column '{column}'"
    fix = ("df.index = df.index.to_timestamp()" if typed else "df.index = pd.PeriodIndex(df.index).to_timestamp()") \
        if column == "index" else (f"df['{column}'] = df['{column}'].dt.to_timestamp()" if typed else
                                   f"df['{column}'] = pd.PeriodIndex(df['{column}']).to_timestamp()")
    raise ConfigError(f"{where} holds pandas Periods (e.g. {first!r}), not dates; convert them to dates first: {fix}")


def _span(s: pd.Series) -> pd.Series:
    """A wide table's column from its first value to its last: the series starts and ends there."""
    return s.loc[s.first_valid_index():s.last_valid_index()]


def read_covariates(frame: pd.DataFrame, columns: list[str], missing: str, what: str) -> dict[str, pd.DataFrame]:
    """The covariate ``columns`` of a long frame without ``y`` (e.g. future values), per series."""
    frame = load_frame(frame)
    absent = [c for c in (ID, DS, *columns) if c not in frame.columns]
    if absent:  # checked here: the y added below is no column the user must give, nor one it has
        raise ConfigError(f"{what} has no column {', '.join(repr(c) for c in absent)}; it needs unique_id, ds and "
                          f"the covariate columns {columns} (it has {[str(c) for c in frame.columns]})")
    series = _read_long(frame.assign(y=0.0), missing, columns, what)  # columns y, *columns
    for key, s in series.items():
        for c in np.flatnonzero(s.isna().to_numpy().any(axis=0)):  # only a column with gaps can be refused
            check_missing(s.iloc[:, c], key, missing, s.columns[c])
    return {k: s.iloc[:, 1:] for k, s in series.items()}


def ds_kind(index: pd.Index) -> str:
    """What a series' ``ds`` holds, as the messages name it: steps, dates without a time zone, or zoned dates."""
    if not isinstance(index, pd.DatetimeIndex):
        return "whole-number steps"
    return "dates without a time zone" if index.tz is None else f"dates in time zone {index.tz}"


def align_ds(index: pd.Index, data: pd.Index, what: str) -> pd.Index:
    """``index`` (e.g. futr_df's dates of one series) in the time zone of ``data`` (the series' own ds). Steps
    beside dates, or dates with a zone beside dates without one, cannot be ordered on one timeline: a one-line
    error naming both (which local time a date without a zone means is unknown)."""
    kind, want = ds_kind(index), ds_kind(data)
    if kind == want or not len(index) or not len(data):
        return index
    if isinstance(index, pd.DatetimeIndex) and isinstance(data, pd.DatetimeIndex) and None not in (index.tz, data.tz):
        return index.tz_convert(data.tz)  # the same instants in the data's zone
    raise ConfigError(f"{what}'s ds holds {kind} (e.g. {index[0]}) but the data's ds holds {want} (e.g. "
                      f"{data[-1]}); write {what}'s ds as the data's ({want})")


def _read_long(frame: pd.DataFrame, missing: str, exog: list[str] = (), what: str = "the long-format frame"
               ) -> dict[str, pd.Series | pd.DataFrame]:
    if missing not in MISSING_POLICIES:
        raise ConfigError(f"unknown missing='{missing}'; choose one of {', '.join(MISSING_POLICIES)}")
    check_long(frame, what)
    absent = [c for c in exog if c not in frame.columns]
    if absent:
        raise ConfigError(f"{what} has no covariate column {', '.join(repr(c) for c in absent)} (it has "
                          f"{[str(c) for c in frame.columns]}); give every covariate the model was set up with")
    if len(frame) == 0:
        raise ConfigError(f"{what} has no rows")
    ids = frame[ID]
    if ids.isna().any():
        row = int(np.argmax(ids.isna().to_numpy()))
        raise ConfigError(f"column 'unique_id' has no value at row {row + 1}; give every row its series' id")
    ids = ids_as_text(ids, what)  # 1 and "1" are two series of the frame: refused, not merged as one text
    refuse_periods(frame[DS], DS)
    ds = frame[DS].reset_index(drop=True)
    steps = integer_steps(ds, what)
    integer_ds = steps is not None
    try:
        ds = steps if integer_ds else pd.Series(pd.DatetimeIndex(parse_dates(ds, what)))
    except ConfigError as e:  # parse_dates' fix names the date_column of a wide table, which a long frame has not
        if ds.map(lambda v: isinstance(v, str) and v.strip().lstrip("-").isdigit()).all():  # read_csv(dtype=str)
            raise ConfigError(f"ds holds whole numbers written as text ({ds.iloc[0]!r}, ...); give them as numbers, "
                              "the steps of an integer time index: df['ds'] = df['ds'].astype(int)") from None
        raise ConfigError(str(e).replace("or set date_column", "(ds holds a date, or a whole-number step, in every "
                                         "row)")) from None
    values = {}
    for column in [Y, *exog]:
        number, text = text_numbers(frame[[column]])
        values[column] = number[column].to_numpy()
        bad = text[:, 0] | np.isinf(values[column])
        if bad.any():
            row = int(np.argmax(bad))
            value = plain(frame[column].iloc[row])
            kind = "an infinite" if np.isinf(values[column][row]) else "a non-numeric"
            written = number_text(value, column)  # a decimal comma, thousands separators: how to read them
            fix = f"{column} must be finite numbers{written}"
            if column != Y and kind == "a non-numeric" and not written:  # a category (text): one 0/1 column per value
                fix = (f"encode it as numbers, e.g. pandas.get_dummies(df, columns=['{column}'], dtype=float), and "
                       f"name the new columns in hist_exog or futr_exog in place of '{column}'")
            raise ConfigError(f"{'covariate ' * (column != Y)}column '{column}' holds {kind} value {value!r} (row "
                              f"{row + 1}, series '{ids.iloc[row]}'); {fix}")
    table = pd.DataFrame({ID: ids.to_numpy(), DS: ds.to_numpy(), **values})
    dup = table.duplicated([ID, DS], keep=False).to_numpy()
    if dup.any():
        row = int(np.argmax(dup))
        n = int(((table[ID] == table[ID].iloc[row]) & (table[DS] == table[DS].iloc[row])).sum())
        raise ConfigError(f"series '{table[ID].iloc[row]}' has {n} rows at {table[DS].iloc[row]}; keep one row per "
                          "(unique_id, ds)")
    # one sort by (series in id order, ds), then each series is a slice of the sorted arrays
    keys = sorted_ids(frame[ID])
    codes = pd.Index(keys).get_indexer(table[ID])
    dates = (pd.Index if integer_ds else pd.DatetimeIndex)(table[DS].to_numpy(), name=DS)
    order = np.lexsort((dates.asi8 if not integer_ds else dates.to_numpy(), codes))
    dates, columns = dates[order], [Y, *exog]
    block = np.stack([values[c] for c in columns])[:, order]  # (columns, rows)
    sizes = np.bincount(codes, minlength=len(keys))
    ends = np.cumsum(sizes)
    series = {}
    for key, start, end in zip(keys, ends - sizes, ends):
        if not exog:
            series[str(key)] = pd.Series(block[0, start:end], index=dates[start:end], name=Y)
        else:
            # a block per column (copy=False), as a groupby's frames had: sums over them (covariate_stats) run
            # in the same order, to the same bits
            series[str(key)] = pd.DataFrame({c: block[i, start:end] for i, c in enumerate(columns)},
                                            index=dates[start:end], copy=False)
    return series


def check_missing(s: pd.Series, key: str, missing: str, column: str = Y, inserted: pd.Index | None = None,
                  freq=None) -> pd.Series:
    """``s`` (one series, or one column of it) checked against the ``missing`` policy of ``read_series``: gaps
    are refused with "error", a series without any value always; the gaps stay for :func:`fill_series`.
    ``inserted``: the timestamps ``on_grid`` added (missing rows), named first: a gap the user may not know of."""
    n = int(s.isna().sum())
    where = "" if column == Y else f" (column '{column}')"
    if n and s.notna().sum() == 0:
        raise ConfigError(f"series '{key}'{where} holds no value at all; drop it")
    if n and missing == "error" and inserted is not None and len(inserted):
        values = f", and {n - len(inserted)} missing values" if n > len(inserted) else ""
        raise ConfigError(f"series '{key}' lacks {len(inserted)} timestamp{'s' * (len(inserted) > 1)} of freq "
                          f"{freq_label(freq)} (the first {inserted[0]}){values}; pass missing='ffill' or "
                          "missing='interpolate' to fill them (xformer forecast/backtest: --missing), or add those rows "
                          "with their values")
    if n and missing == "error":
        raise ConfigError(f"missing values in series '{key}'{where} ({n} of {len(s)} rows); pass missing='ffill' or "
                          "missing='interpolate' to fill them (xformer forecast/backtest: --missing)")
    return s


def fill_series(panel: Panel, missing: str) -> Panel:
    """The series of ``panel`` with their gaps filled by the ``missing`` policy (``fill_gaps``), each from its
    own rows: cut at the forecast origins first, so that every history is filled from the rows up to its
    origin only. A history without any value (its origin inside a leading gap) is a one-line error."""
    series = {k: fill_gaps(s, missing) for k, s in panel.series.items()}
    empty = [k for k, s in series.items() if len(s) and s.isna().all()]
    if empty:
        raise ConfigError(f"series '{empty[0]}' holds no value up to its forecast origin "
                          f"{panel.series[empty[0]].index[-1]}; forecast from a later origin or leave it out")
    return Panel(series, panel.wide_date_column, panel.covariates)


def check_observed_end(panel: Panel) -> None:
    """Refuse in one line a series of a long frame whose last rows have no ``y`` but hold a covariate value:
    future-known covariate rows appended to df with an empty ``y``. Its forecast would start after those rows,
    after values the policy made up, and be dated as if they had been observed. Other trailing gaps (rows
    without a covariate value) are gaps that reach the forecast origin, filled by ``missing`` as the user asked;
    a wide table's column ends at its last value (``read_panel``). Run on the data as given, before any cut
    (``read_panel`` checks a frame it reads already, before the ``missing`` policy's own advice)."""
    for key, s in panel.series.items():
        covariates = (panel.covariates or {}).get(key)
        if covariates is not None:
            refuse_appended_rows(key, s, covariates)


def refuse_appended_rows(key: str, y: pd.Series, covariates: pd.DataFrame) -> None:
    """``check_observed_end`` for one series: its ``y`` and its ``covariates``."""
    observed = y.notna().to_numpy()[::-1]
    n = int(np.argmax(observed)) if observed.any() else 0
    if not n:
        return
    rows = y.index[-n:]
    if covariates.reindex(rows).notna().to_numpy().any():
        raise ConfigError(f"series '{key}' has no y in its last {n} rows (from {rows[0]}) but covariate values; "
                          "the forecast starts after the last observed value: drop those rows (future-known "
                          "covariates go in futr_df / --futr)")


_OURS = (str(Path(__file__).parents[1]), contextlib.__file__)


def report_short(ids: list[str], need: int, what: str) -> None:
    """Warn naming the series too short for ``what`` (they are left out of it)."""
    if ids:
        shown = ", ".join(f"'{k}'" for k in ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
        frame, level = sys._getframe(1), 2  # point the warning at the user's line, outside this package (and
        while frame is not None and frame.f_code.co_filename.startswith(_OURS):  # the decorators around it)
            frame, level = frame.f_back, level + 1
        warnings.warn(f"{len(ids)} series shorter than {need} rows left out of {what}: {shown}", stacklevel=level)


def printing_short_series(run, *args) -> None:
    """``run(*args)`` for a command: its warnings (``report_short``'s, naming series left out, and any other)
    become plain ``xformer: warning:`` lines on stderr, each message once, also when ``run`` fails.

    They are printed after the recording has stopped: a warning shown while ``catch_warnings(record=True)``
    is active would be recorded again, appended to the very list being printed."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run(*args)
    finally:
        for message in dict.fromkeys(" ".join(str(w.message).split()) for w in caught):
            print(f"xformer: warning: {message}", file=sys.stderr)


__all__ = ["ID", "DS", "Y", "POINT", "quantile_column", "forecast_frame",
           "Panel", "read_panel", "is_long", "load_frame", "infer_freq",
           "report_short", "printing_short_series", "future_dates", "check_missing", "fill_series", "read_covariates",
           "parse_freq", "freq_label", "ds_kind", "align_ds", "check_freq", "check_observed_end"]
