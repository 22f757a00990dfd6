"""The frequency of a panel's series and the grid it puts their timestamps on.

A series at frequency ``freq`` lives on its own grid: its first timestamp t0 and t0 + k * freq (k = 0, 1, ...;
for an integer ``ds`` freq is the whole-number step). A timestamp of that grid without a row is a missing row:
:func:`on_grid` inserts it (y and covariates missing) so that the ``missing`` policy sees it as any missing value,
and the rows stay one step apart, which windows, cutoffs and forecast dates count on. Sub-daily steps (``h``,
``15min``) are absolute time, so hourly rows in a zone stay hourly across a daylight-saving change; ``D`` and
coarser offsets follow the calendar (a zone's local midnights).

The frequency is ``freq`` when given; else the one pandas infers from a series without gaps, or for a series with
gaps the frequency most of its rows are one step apart at (:func:`grid_freq`); :func:`infer_freq` and
:func:`check_freq` then check every series against it.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..config import ConfigError
from ..timestamps import read_as_utc


def parse_freq(freq) -> pd.DateOffset | int:
    """A pandas offset ("h", "15min", ...) or, for an integer ``ds``, the whole-number step between rows (an int,
    or a string of digits as the command line gives it)."""
    if isinstance(freq, (int, np.integer)) and not isinstance(freq, bool) or isinstance(freq, str) and freq.isdigit():
        if int(freq) < 1:
            raise ConfigError(f"freq {freq!r}: an integer step must be at least 1")
        return int(freq)
    if isinstance(freq, pd.offsets.BaseOffset):  # a fitted one (pd.DateOffset itself: deprecated in isinstance)
        return freq
    try:
        return pd.tseries.frequencies.to_offset(freq)
    except (ValueError, TypeError):
        raise ConfigError(f"freq {freq!r} is not a pandas frequency (e.g. h, 15min, D, W, MS) nor, for an integer "
                          "ds, a whole-number step (e.g. 1)") from None


def freq_label(freq: pd.DateOffset | int | None) -> str | int | None:
    """What ``parse_freq`` reads back (forecaster.json)."""
    return freq if freq is None or isinstance(freq, int) else freq.freqstr


def _regular(index: pd.Index) -> pd.DateOffset | int | None:
    """The frequency of an index without gaps: what pandas infers, or the one step between integer rows."""
    if len(index) < 3:
        return None
    if not isinstance(index, pd.DatetimeIndex):
        steps = np.unique(np.diff(index.to_numpy()))
        return int(steps[0]) if len(steps) == 1 and steps[0] > 0 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inferred = pd.infer_freq(index)
    return None if inferred is None else parse_freq(inferred)


def _with_gaps(index: pd.Index) -> pd.DateOffset | int | None:
    """The frequency of an index with missing rows: of the frequencies its gap-free stretches suggest (pandas'
    inference on a few runs of 5 rows, and the most common gap as a fixed step), the one whose grid holds every
    row, with most rows one step apart, in the fewest steps (business days rather than days)."""
    if len(index) < 3:
        return None
    gaps = np.diff(index.asi8 if isinstance(index, pd.DatetimeIndex) else index.to_numpy(dtype=np.int64))
    values, counts = np.unique(gaps, return_counts=True)
    typical = int(values[np.argmax(counts)])
    if typical <= 0:
        return None
    if not isinstance(index, pd.DatetimeIndex):
        return typical if (gaps % typical == 0).all() else None
    candidates = [found for start in np.unique(np.linspace(0, max(len(index) - 5, 0), num=8).astype(int))
                  if (found := _regular(index[start:start + 5])) is not None]  # named ones first: 'D', not '24h'
    candidates.append(pd.tseries.frequencies.to_offset(pd.Timedelta(typical, unit=index.unit)))
    best, fewest = None, None
    for freq in candidates:
        steps, _ = _grid_steps(index, freq)
        if steps is not None and _typical_step(steps) == 1 and (fewest is None or steps[-1] < fewest):
            best, fewest = freq, steps[-1]
    return best


def grid_freq(indexes: list[pd.Index], freq=None) -> pd.DateOffset | int | None:
    """The frequency to put the series (their ``indexes``) on: ``freq`` when given, else the first regular series'
    frequency, else that of the first series with gaps that has one (:func:`_with_gaps`); None when none is
    known (``infer_freq`` then asks for freq, or names the series that disagree)."""
    if freq is not None:
        return parse_freq(freq)
    for find in (_regular, _with_gaps):
        for index in indexes:
            found = find(index)
            if found is not None:
                return found
    return None


def on_grid(s: pd.Series | pd.DataFrame, freq: pd.DateOffset | int | None) -> tuple[pd.Series | pd.DataFrame,
                                                                                    pd.Index]:
    """(``s`` with a row at every timestamp of its grid, its first timestamp + k * ``freq``, the inserted rows
    missing; the inserted timestamps). ``s`` is kept as it is when its rows are not on that grid or are most
    often several steps apart (``check_freq`` names that problem), or when the grid would be vastly longer than
    the series."""
    index, none = s.index, s.index[:0]
    if freq is None or len(index) < 2 or isinstance(freq, int) == isinstance(index, pd.DatetimeIndex):
        return s, none
    steps, off = _grid_steps(index, freq)
    if off is not None or steps is None or steps[-1] == len(index) - 1 or _typical_step(steps) != 1 \
            or steps[-1] > _most_steps(len(index)):
        return s, none
    n = int(steps[-1]) + 1
    if isinstance(freq, int):
        grid = pd.Index(index[0] + freq * np.arange(n, dtype=np.int64), name=index.name)
    elif _absolute(freq, index):
        grid = pd.DatetimeIndex(index[0] + pd.to_timedelta(np.arange(n) * pd.Timedelta(freq).value, unit="ns"),
                                name=index.name)
    else:
        grid = pd.date_range(index[0], periods=n, freq=freq, name=index.name)
    grid = grid.as_unit(index.unit) if isinstance(index, pd.DatetimeIndex) else grid
    filled = s.reindex(grid)
    return filled, grid[~grid.isin(index)]


def infer_freq(panel, freq: str | int | pd.DateOffset | None = None) -> pd.DateOffset | int:
    """``freq`` when given, else the frequency pandas infers from the series of ``panel`` (every series that has
    one must agree), or for an integer ``ds`` the step between rows; a frame with no regular series is a
    one-line error asking for ``freq``."""
    if freq is not None:
        freq = parse_freq(freq)
        check_freq(panel, freq)
        return freq
    found: dict[pd.DateOffset | int, str] = {}
    for key, s in panel.series.items():
        inferred = _regular(s.index)
        if inferred is not None:
            found.setdefault(inferred, key)
    column = panel.wide_date_column or "ds"
    if not found:
        utc = [k for k, s in panel.series.items() if _local_days(s.index)]
        if utc:
            raise ConfigError(f"cannot infer a regular frequency from column '{column}': {_utc_cause(utc[0])}")
        raise ConfigError(f"cannot infer a regular frequency from column '{column}'; pass freq (e.g. freq='h' to "
                          "Forecaster, --freq h to xformer forecast)")
    if len(found) > 1:
        (a, ka), (b, kb) = list(found.items())[:2]
        raise ConfigError(f"series '{ka}' has frequency {freq_label(a)} but '{kb}' has {freq_label(b)}; forecast "
                          "them separately or pass freq")
    return next(iter(found))


def check_freq(panel, freq: pd.DateOffset | int, held: str | None = None) -> None:
    """Refuse in one line a ``freq`` the series' dates are not on: a date off its grid (not on the offset's anchor,
    e.g. Mondays for "W", which is Sundays; or off the steps from the first row), or a most common gap between rows
    other than one step (hourly rows with "D", integer steps of 5 with 1). The forecasts are dated, their calendar
    features computed and futr_df read at last + k * freq, so such a freq would silently misdate all of them; the
    message names the freq the series suggest, when that one fits. Missing rows were inserted when the series were
    read (:func:`on_grid`); a series that still lacks some (read before its freq was known) is refused too.
    ``held``: the freq cannot change (a fitted forecaster's), and this says why and what to give instead; it
    replaces the advice to pass another freq."""
    for key, s in panel.series.items():
        index = s.index
        if len(index) < 2 or isinstance(freq, int) == isinstance(index, pd.DatetimeIndex):
            continue  # one row has no spacing; steps beside dates: future_dates names that mismatch
        steps, off = _grid_steps(index, freq)
        if off is None:
            typical = _typical_step(steps)
            if typical == 1 and steps[-1] == len(index) - 1:
                continue
            if typical == 1:  # read before freq was known: the dates alone suggested no grid, or another one
                suggested = _suggested_freq(index)
                other = f"; its dates suggest freq {freq_label(suggested)!r}: pass that, or leave freq out to infer " \
                    "it" if suggested is not None and suggested != freq and held is None else ""
                raise ConfigError(f"series '{key}' lacks {int(steps[-1]) + 1 - len(index)} timestamps of freq "
                                  f"{freq_label(freq)} (the first after {index[int(np.argmax(np.diff(steps) > 1))]}); "
                                  f"add them as rows with a missing y and pass missing='ffill' or 'interpolate'{other}")
            problem = f"its rows are typically {typical} steps of {freq_label(freq)} apart"
        elif isinstance(freq, int) or _absolute(freq, index) or freq.is_on_offset(off):
            problem = f"{off} is not a whole number of {freq_label(freq)} steps after its first row {index[0]}"
        else:
            problem = f"{off} is not on the anchor of {freq_label(freq)}"
        if _local_days(index):
            raise ConfigError(f"freq {freq_label(freq)} does not fit series '{key}': {_utc_cause(key)}")
        suggested = _suggested_freq(index)
        what = f"its {'dates' if isinstance(index, pd.DatetimeIndex) else 'steps'} suggest freq {freq_label(suggested)!r}"
        if held is not None:
            fix = f"{what}; {held}" if suggested is not None else held
        else:
            fix = f"{what}: pass that, or leave freq out to infer it" if suggested is not None else \
                "pass the freq its rows are one step apart at"
        raise ConfigError(f"freq {freq_label(freq)} does not fit series '{key}': {problem}; {fix}")


def _local_days(index: pd.Index) -> bool:
    """Whether ``index`` holds dates a day or more apart read as UTC from changing offsets: local days, whose
    midnights are 23 or 25 hours apart in UTC across a daylight-saving change."""
    return read_as_utc(index) and len(index) > 1 and np.median(np.diff(index.as_unit("ns").asi8)) >= 23 * 3600e9


def _utc_cause(key: str) -> str:
    return (f"the dates of series '{key}' were written with changing UTC offsets (local times across a "
            "daylight-saving change) and are read as UTC, where its local days are not evenly spaced; "
            "write ds without offsets, or parse it in pandas to dates in their zone (pd.to_datetime(df['ds'], "
            "utc=True).dt.tz_convert(ZONE)) and pass the frame")


def _absolute(freq: pd.DateOffset, index: pd.Index) -> bool:
    """Whether ``freq`` steps are fixed lengths of time on ``index``: sub-daily steps always, days for dates
    without a zone (a zone's days are 23 or 25 hours across a daylight-saving change)."""
    day = isinstance(freq, pd.offsets.Day)
    return isinstance(freq, pd.offsets.Tick) and not day or day and getattr(index, "tz", None) is None


def _typical_step(steps: np.ndarray) -> int:
    gaps, counts = np.unique(np.diff(steps), return_counts=True)
    return int(gaps[np.argmax(counts)]) if len(gaps) else 1


def _most_steps(rows: int) -> int:
    """The longest grid the timestamps of ``rows`` rows are put on: far longer is a wrong freq, not gaps."""
    return 100 * rows + 10_000


def _grid_steps(index: pd.Index, freq: pd.DateOffset | int) -> tuple[np.ndarray | None, object]:
    """(each row's number of ``freq`` steps after the first row, None), or (None, the first row off that grid)."""
    if isinstance(freq, int) or _absolute(freq, index):
        if isinstance(index, pd.DatetimeIndex):
            ticks, size = index.as_unit("ns").asi8, pd.Timedelta(freq).value
        else:
            ticks, size = index.to_numpy(dtype=np.int64), freq
        off = (ticks - ticks[0]) % size != 0
        return ((ticks - ticks[0]) // size, None) if not off.any() else (None, index[int(np.argmax(off))])
    if not freq.is_on_offset(index[0]):
        return None, index[0]
    step = (index[0] + freq) - index[0]  # about one step: enough to bound the grid built below
    if (index[-1] - index[0]) / step > _most_steps(len(index)):  # far sparser than freq: steps counted roughly
        return np.round((index - index[0]) / step).astype(np.int64), None
    positions = pd.date_range(index[0], index[-1], freq=freq).get_indexer(index)
    return (positions, None) if (positions >= 0).all() else (None, index[int(np.argmax(positions < 0))])


def _suggested_freq(index: pd.Index) -> pd.DateOffset | int | None:
    """The frequency the rows of ``index`` are on (pandas' inference, or with gaps :func:`_with_gaps`), for an
    integer index its most common step; None when no frequency fits them, so that no message suggests a freq
    that would be refused in turn."""
    if not isinstance(index, pd.DatetimeIndex):
        values, counts = np.unique(np.diff(index.to_numpy()), return_counts=True)
        return int(values[np.argmax(counts)])
    regular = _regular(index)
    return regular if regular is not None else _with_gaps(index)


def future_dates(last: pd.Timestamp | int, freq: pd.DateOffset | int, h: int) -> pd.Index:
    """The ``h`` timestamps after ``last``: dates at ``freq``, or last + k * freq for an integer ``ds``."""
    integer = isinstance(last, (int, np.integer))
    if integer != isinstance(freq, int):
        have, want = ("integers", "dates") if integer else ("dates", "integers")
        raise ConfigError(f"ds holds {have} (e.g. {last}), but the forecaster was fitted on {want} "
                          f"(freq {freq_label(freq)}); give ds as in fit, or pass freq to match")
    if integer:
        return pd.Index(last + freq * np.arange(1, h + 1, dtype=np.int64), name="ds")
    if freq.is_on_offset(last):  # a range from a date on the offset is last + k * freq, k = 0, 1, ...
        return pd.date_range(last, periods=h + 1, freq=freq)[1:]
    # off the anchor (check_freq refuses such a freq for the data): a range would start at the next anchored
    # date and [1:] would drop it, a step lost; adding k steps keeps every one
    return pd.DatetimeIndex([last + k * freq for k in range(1, h + 1)])


__all__ = ["parse_freq", "freq_label", "grid_freq", "on_grid", "infer_freq", "check_freq", "future_dates"]
