"""The frequency of series and the grid their timestamps are put on (Forecaster panels; xformer train, series_grid.py).

A series at frequency ``freq`` lives on its own grid: its first timestamp t0 and t0 + k * freq (k = 0, 1, ...;
for an integer ``ds`` freq is the whole-number step). A timestamp of that grid without a row is a missing row:
:func:`on_grid` inserts it (y and covariates missing) so that the ``missing`` policy sees it as any missing value,
and the rows stay one step apart, which windows, cutoffs and forecast dates count on. Sub-daily steps (``h``,
``15min``) are absolute time, so hourly rows in a zone stay hourly across a daylight-saving change; ``D`` and
coarser offsets follow the calendar (a zone's local midnights).

Which missing rows are inserted (:func:`_not_inserted`), for a series of n rows whose grid holds m timestamps:

- freq given (by the user, or the one a fitted forecaster holds): every missing row, m - n of any number, when
  its rows are most often one step apart; but a grid longer than ``_most_steps(n)`` = 100 n + 10,000 is a gap
  no fill should bridge, refused in one line naming the gap (cut the series there, or split it);
- freq inferred: only when more than half of the series' consecutive differences are exactly one step and
  m - n <= 10% of n (``MOST_INSERTED``); else the dates are not read as a grid with some rows missing, and a
  freq is only taken from series that are regular (pandas' inference) or on a grid by that rule.

The frequency is ``freq`` when given; else each series' own frequency (pandas' inference for a series without
gaps, :func:`_with_gaps` by the rules of an inferred freq for one with some rows missing), which every series that
has one must share, or no row is inserted (:func:`grid_freq`) and the disagreement is refused (:func:`infer_freq`);
:func:`check_freq` then checks every series against it. Reading a freq the user gives, and refusing one of the
other kind than ds, is frequency_checks.py.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..config import ConfigError
from ..timestamps import read_as_utc
from .frequency_checks import freq_label, month_days, no_freq_fix, parse_freq, wrong_kind


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


MOST_INSERTED = 0.10  # the share of a series' rows that a freq inferred from its dates may add as missing rows


def _with_gaps(index: pd.Index, inferred: bool = True) -> pd.DateOffset | int | None:
    """The frequency of an index with missing rows: of the frequencies its gap-free stretches suggest (pandas'
    inference on a few runs of 5 rows, and the most common gap as a fixed step), the one whose grid holds every
    row and whose missing rows :func:`_not_inserted` inserts (by the rules of an ``inferred`` freq, or of a given
    one: what a message may suggest passing), in the fewest steps (business days rather than days)."""
    if len(index) < 3:
        return None
    gaps = np.diff(index.asi8 if isinstance(index, pd.DatetimeIndex) else index.to_numpy(dtype=np.int64))
    values, counts = np.unique(gaps, return_counts=True)
    typical = int(values[np.argmax(counts)])
    if typical <= 0:
        return None
    candidates: list = [typical]
    if isinstance(index, pd.DatetimeIndex):
        candidates = [found for start in np.unique(np.linspace(0, max(len(index) - 5, 0), num=8).astype(int))
                      if (found := _regular(index[start:start + 5])) is not None]  # named ones first: 'D', not '24h'
        candidates.append(pd.tseries.frequencies.to_offset(pd.Timedelta(typical, unit=index.unit)))
    best, fewest = None, None
    for freq in candidates:
        steps, _ = _grid_steps(index, freq)
        if steps is not None and _not_inserted(index, steps, inferred) is None \
                and (fewest is None or steps[-1] < fewest):
            best, fewest = freq, steps[-1]
    return best


def _not_inserted(index: pd.Index, steps: np.ndarray, inferred: bool) -> str | None:
    """Why the missing rows of a series whose rows lie ``steps`` grid steps after its first row are not inserted,
    or None when they are. For a given freq: "spacing", its rows are most often several steps apart (a wrong
    freq, not gaps). For an ``inferred`` one: "majority", at most half of its consecutive differences are one
    step (irregular dates, not a grid with some rows missing). Either: "long", a grid longer than
    :func:`_most_steps` (a gap no fill should bridge). Inferred: "share", more than ``MOST_INSERTED`` of its rows
    would be inserted (a grid the dates alone do not establish: passing freq confirms it)."""
    if not inferred and _typical_step(steps) != 1:
        return "spacing"
    if inferred and 2 * np.count_nonzero(np.diff(steps) == 1) <= len(steps) - 1:
        return "majority"
    if steps[-1] > _most_steps(len(index)):
        return "long"
    if inferred and steps[-1] + 1 - len(index) > MOST_INSERTED * len(index):
        return "share"
    return None


def grid_freq(indexes: list[pd.Index], freq=None) -> pd.DateOffset | int | None:
    """The frequency to put the series (their ``indexes``) on: ``freq`` when given, else the own frequency
    (pandas', or :func:`_with_gaps` by an inferred freq's rules) that every series having one shares; None when
    none has one or two disagree (no row is inserted then; ``infer_freq`` asks for freq, or names those two)."""
    if freq is not None:
        return parse_freq(freq)
    found = None
    for index in indexes:
        own = _regular(index)
        if own is None and found is not None and len(index) > 1 and \
                isinstance(found, int) != isinstance(index, pd.DatetimeIndex):
            steps, _ = _grid_steps(index, found)  # on the grid found, by an inferred freq's rules: its own freq
            if steps is not None and _not_inserted(index, steps, inferred=True) is None:  # (no coarser grid
                continue  # holds rows that are mostly one step apart); searched only when it is not
        own = own if own is not None else _with_gaps(index, inferred=True)
        if own is not None and found is not None and own != found:
            return None
        found = own if own is not None else found
    return found


def on_grid(s: pd.Series | pd.DataFrame, freq: pd.DateOffset | int | None, inferred: bool = False,
            key: str = "") -> tuple[pd.Series | pd.DataFrame, pd.Index]:
    """(``s`` with a row at every timestamp of its grid, its first timestamp + k * ``freq``, the inserted rows
    missing; the inserted timestamps). ``s`` is kept as it is when its rows are not on that grid or
    :func:`_not_inserted` keeps their gaps, for a freq ``inferred`` or given (``check_freq`` names the problem);
    a given freq's grid that would bridge a gap far longer than the series is refused here (series ``key``)."""
    index, none = s.index, s.index[:0]
    if freq is None or len(index) < 2 or isinstance(freq, int) == isinstance(index, pd.DatetimeIndex):
        return s, none
    steps, off = _grid_steps(index, freq)
    if off is not None or steps is None or steps[-1] == len(index) - 1:
        return s, none
    why = _not_inserted(index, steps, inferred)
    if why == "long" and not inferred:
        raise ConfigError(_long_gap(key, index, steps, freq))
    if why is not None:
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
    """``freq`` when given (checked: :func:`check_freq`), else the own frequency (as :func:`grid_freq`) of the series
    of ``panel``, which every series that has one must share, checked against the other series as an inferred
    freq (a series whose missing rows were not inserted is refused, saying why); a frame without any series on a
    grid is a one-line error asking for ``freq``."""
    if freq is not None:
        freq = parse_freq(freq)
        check_freq(panel, freq)
        return freq
    found: dict[pd.DateOffset | int, str] = {}
    unchecked = []  # the series pandas infers no freq from: their dates are checked against the one found
    for key, s in panel.series.items():
        own = _regular(s.index)
        if own is None:
            unchecked.append(key)
            own = _with_gaps(s.index, inferred=True)
        if own is not None:
            found.setdefault(own, key)
    column = panel.wide_date_column or "ds"
    if not found:
        utc = [k for k, s in panel.series.items() if _local_days(s.index)]
        if utc:
            raise ConfigError(f"cannot infer a regular frequency from column '{column}': {_utc_cause(utc[0])}")
        near = next(((k, *grid) for k, s in panel.series.items() if (grid := _near_grid(s.index))), None)
        if near is not None:
            key, grid, n, rows = near
            raise ConfigError(f"cannot infer a regular frequency from column '{column}': series '{key}' would need "
                              f"{n} inserted timestamps of freq {freq_label(grid)} ({100 * n / rows:.0f}% of its "
                              f"{rows} rows), more than the {MOST_INSERTED:.0%} a freq inferred from the dates may "
                              f"add; pass freq={freq_label(grid)!r} to confirm that grid (--freq {freq_label(grid)} "
                              "to xformer forecast), or the freq its rows are on")
        raise ConfigError(f"cannot infer a regular frequency from column '{column}'{no_freq_fix(panel, column)}")
    if len(found) > 1:
        (a, ka), (b, kb) = list(found.items())[:2]
        weeks = all(isinstance(f, pd.offsets.Week) and f.n == 1 for f in (a, b))  # W-SUN beside W-MON
        fix = "pass freq='7D' (every 7 days from each series' own first date) or forecast them separately" if weeks \
            else "forecast them separately or pass freq"
        raise ConfigError(f"series '{ka}' has frequency {freq_label(a)} but '{kb}' has {freq_label(b)}; {fix}")
    freq = next(iter(found))
    for key in unchecked:  # a regular series' own freq is the one found: its rows are on its grid
        _check_series(key, panel.series[key].index, freq, None, inferred=True)
    return freq


def _near_grid(index: pd.Index) -> tuple | None:
    """(freq, missing rows, rows) of a series whose rows are mostly one step of a freq apart but would need
    more than ``MOST_INSERTED`` of its rows inserted to be on its grid; None for any other series."""
    suggested = _with_gaps(index, inferred=False)
    steps = None if suggested is None else _grid_steps(index, suggested)[0]
    if steps is None or _not_inserted(index, steps, inferred=True) != "share":
        return None
    return suggested, int(steps[-1]) + 1 - len(index), len(index)


def check_freq(panel, freq: pd.DateOffset | int, held: str | None = None, inferred: bool = False,
               fitted=None) -> None:
    """Refuse in one line a ``freq`` the series' dates are not on: a date off its grid (not on the offset's anchor,
    e.g. Mondays for "W", which is Sundays; or off the steps from the first row), or a most common gap between rows
    other than one step (hourly rows with "D", integer steps of 5 with 1). The forecasts are dated, their calendar
    features computed and futr_df read at last + k * freq, so such a freq would silently misdate all of them; the
    message names the freq the series suggest, when that one fits. A series that still lacks rows of its grid is
    refused too, saying why they were not inserted when it was read (:func:`on_grid`, :func:`_not_inserted`): a
    gap too long to bridge, too many rows for a freq ``inferred`` from the dates, or read before freq was known.
    ``held``: the freq cannot change (a fitted forecaster's), and this says why and what to give instead; it
    replaces the advice to pass another freq. A freq of the other kind than ``ds`` (an offset for whole-number
    steps, a step for dates) is refused first (``wrong_kind``; ``fitted``: a ds of the data of fit, if known)."""
    for key, s in panel.series.items():
        if len(s.index) and isinstance(freq, int) == isinstance(s.index, pd.DatetimeIndex):
            raise ConfigError(wrong_kind(key, s.index, freq, _suggested_freq(s.index), held is not None, fitted))
        _check_series(key, s.index, freq, held, inferred)


def _check_series(key: str, index: pd.Index, freq: pd.DateOffset | int, held: str | None, inferred: bool) -> None:
    """:func:`check_freq` for one series, ``key`` at dates ``index``."""
    if len(index) < 2 or isinstance(freq, int) == isinstance(index, pd.DatetimeIndex):
        return  # one row has no spacing; steps beside dates: check_freq refuses them (wrong_kind)
    steps, off = _grid_steps(index, freq)
    if off is None:
        typical = _typical_step(steps)
        if typical == 1 and steps[-1] == len(index) - 1:
            return
        if typical == 1:
            _refuse_missing_rows(key, index, steps, freq, held, inferred)
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
            month_days(index) or "pass the freq its rows are one step apart at, or add its absent rows (y empty) and " \
            "pass missing='ffill'"
        if isinstance(freq, pd.offsets.Week) and isinstance(suggested, pd.offsets.Week):  # another weekday
            fix += "; for weekly series on different weekdays pass freq='7D'"
    raise ConfigError(f"freq {freq_label(freq)} does not fit series '{key}': {problem}; {fix}")


def _refuse_missing_rows(key: str, index: pd.Index, steps: np.ndarray, freq, held: str | None,
                         inferred: bool) -> None:
    """The refusal of a series on the grid of ``freq`` that lacks some of its rows, saying why they were not
    inserted when it was read."""
    why = _not_inserted(index, steps, inferred)
    if why == "long":
        raise ConfigError(_long_gap(key, index, steps, freq))
    n, label = int(steps[-1]) + 1 - len(index), freq_label(freq)
    lacks = f"series '{key}' lacks {n} timestamp{'s' * (n > 1)} of freq {label} (the first after " \
        f"{index[int(np.argmax(np.diff(steps) > 1))]}"
    if inferred and why in ("majority", "share"):
        how = f"{100 * n / len(index):.0f}% of its {len(index)} rows, more than the {MOST_INSERTED:.0%}" \
            if why == "share" else f"only {np.count_nonzero(np.diff(steps) == 1)} of its {len(steps) - 1} gaps " \
            "one step, where most must be"
        raise ConfigError(f"{lacks}; {how}), too many to insert as missing rows at a freq inferred from the dates; "
                          f"pass freq={label!r} to confirm that grid (its missing rows then follow missing=), or "
                          "add the rows")
    suggested = _suggested_freq(index)  # read before freq was known: the dates alone suggested another grid
    other = f"; its dates suggest freq {freq_label(suggested)!r}: pass that, or leave freq out to infer it" \
        if suggested is not None and suggested != freq and held is None else ""
    raise ConfigError(f"{lacks}); add them as rows with a missing y and pass missing='ffill' or 'interpolate'{other}")


def _long_gap(key: str, index: pd.Index, steps: np.ndarray, freq) -> str:
    """The refusal of a series whose grid would be longer than :func:`_most_steps`: its longest gap, and the fix."""
    at = int(np.argmax(np.diff(steps)))
    return (f"series '{key}' has a gap from {index[at]} to {index[at + 1]} ({int(steps[at + 1] - steps[at]) - 1} "
            f"missing timestamps of freq {freq_label(freq)}) far longer than its {len(index)} rows, too long to fill "
            "as missing rows; cut the series at the gap (keep the rows after it), or split it there into two "
            "unique_ids")


def grid_rows(index: pd.Index, freq: pd.DateOffset | int) -> int:
    """The rows of a series at dates ``index`` once on its grid at ``freq`` (first to last row), its own rows when
    they are off that grid or of the other kind."""
    if len(index) < 2 or isinstance(freq, int) == isinstance(index, pd.DatetimeIndex):
        return len(index)
    steps, _ = _grid_steps(index, freq)
    return len(index) if steps is None else max(int(steps[-1]) + 1, len(index))


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
    positions = _calendar_positions(index, freq, step)
    return (positions, None) if (positions >= 0).all() else (None, index[int(np.argmax(positions < 0))])


_CALENDARS: dict = {}  # (freq, zone, unit) -> the calendar grid an earlier series was put on


def _calendar_positions(index: pd.DatetimeIndex, freq: pd.DateOffset, step: pd.Timedelta) -> np.ndarray:
    """Each row's position on ``date_range(index[0], index[-1], freq)`` (its first row on the offset), -1 off it.

    A calendar range is generated date by date (t_{k+1} = t_k + freq, a Python call each), which made reading
    thousands of monthly series slow; so the grid built for an earlier series is kept and reused when it holds
    this one's first date and reaches its last: from a date of that grid on, the dates that follow are the
    ones a range started there generates. A new grid reaches as far as the kept one when that stays within
    ``_most_steps`` of this series, so that series sharing a calendar share one grid."""
    key, ticks = (freq, index.tz), index.as_unit("ns").asi8
    grid = _CALENDARS.get(key)
    first = -1 if grid is None or ticks[-1] > grid[-1] else _positions(grid, ticks[:1])[0]
    if first < 0:
        end = index[-1]
        if grid is not None and grid[-1] > ticks[-1] and \
                (pd.Timestamp(grid[-1], tz=index.tz) - index[0]) / step <= _most_steps(len(index)):
            end = pd.Timestamp(grid[-1], tz=index.tz)
        grid = _CALENDARS[key] = pd.date_range(index[0], end, freq=freq).as_unit("ns").asi8
        first = 0
    positions = _positions(grid, ticks)
    return np.where(positions >= 0, positions - first, -1)


def _positions(grid: np.ndarray, ticks: np.ndarray) -> np.ndarray:
    """Where each of ``ticks`` is in the sorted ``grid``, -1 where it is not."""
    at = np.searchsorted(grid, ticks)
    found = grid[np.minimum(at, len(grid) - 1)] == ticks
    return np.where(found, at, -1)


def _suggested_freq(index: pd.Index) -> pd.DateOffset | int | None:
    """The frequency the rows of ``index`` are on (pandas' inference, or with gaps :func:`_with_gaps`), for an
    integer index its most common step; None when none fits them (no message suggests a freq refused in turn)."""
    if not isinstance(index, pd.DatetimeIndex):
        values, counts = np.unique(np.diff(index.to_numpy()), return_counts=True)
        return int(values[np.argmax(counts)])
    regular = _regular(index)
    return regular if regular is not None else _with_gaps(index, inferred=False)


def future_dates(last: pd.Timestamp | int, freq: pd.DateOffset | int, h: int) -> pd.Index:
    """The ``h`` timestamps after ``last``: dates at ``freq``, or last + k * freq for an integer ``ds``."""
    integer = isinstance(last, (int, np.integer))
    if integer != isinstance(freq, int):  # check_freq refuses such data first, knowing what was fitted
        have, want = ("integers", "dates") if integer else ("dates", "integers")
        raise ConfigError(f"ds holds {have} (e.g. {last}), but freq {freq_label(freq)} is for {want}; give ds and "
                          "freq of one kind")
    if integer:
        return pd.Index(last + freq * np.arange(1, h + 1, dtype=np.int64), name="ds")
    if freq.is_on_offset(last):  # a range from a date on the offset is last + k * freq, k = 0, 1, ...
        return pd.date_range(last, periods=h + 1, freq=freq)[1:]
    # off the anchor (check_freq refuses such a freq for the data): a range would start at the next anchored
    # date and [1:] would drop it, a step lost; adding k steps keeps every one
    return pd.DatetimeIndex([last + k * freq for k in range(1, h + 1)])


__all__ = ["parse_freq", "freq_label", "grid_freq", "on_grid", "infer_freq", "check_freq", "grid_rows",
           "future_dates"]
