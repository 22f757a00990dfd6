"""Time columns as the series readers read them: dates or whole-number steps, with one-line errors naming the
first value that is neither. Below everything else (layer 0), so that the metrics read a ``ds`` column exactly
as the data does.

Dates written with UTC offsets that change (local time across a daylight-saving change, +01:00 then +02:00) name
no time zone, so the local clock of later dates is unknown. Rows all at one local time of day (daily, weekly,
monthly data) are read as those local dates without offsets, one row per calendar day as written; others as one UTC
timeline in the zone :data:`CHANGING_OFFSETS` (UTC, so hourly rows stay hourly), which :func:`read_as_utc`
recognises: their local hours, and so calendar features, cannot be told."""
from __future__ import annotations

import datetime
import re
import warnings

import numpy as np
import pandas as pd

from .errors import ConfigError


CHANGING_OFFSETS = datetime.timezone(datetime.timedelta(0), "UTC (read from changing offsets)")
_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})$")  # a date's UTC offset as written: +01:00, -0500
_DAY_FIRST = re.compile(r"\s*(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}\b")  # 13/07/2016: a day, then the month


def parse_dates(dates: pd.Series, name: str = "the series") -> pd.Series:
    """``pd.to_datetime(dates)``; a value that is not a date (or a date written unlike the others, e.g. day
    first), or no value, stops with one line naming the first such row (1 = the first row below the header)."""
    with warnings.catch_warnings():  # pandas warns when it falls back to per-value parsing: not the user's concern
        warnings.simplefilter("ignore")
        try:
            parsed = _to_datetime(dates)
        except (ValueError, TypeError, OverflowError):
            parsed = _to_datetime(dates, errors="coerce")  # NaT from the first value pandas refused
        bad = parsed.isna().to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            where, day = f"column '{dates.name}' of {name}: row {row + 1} holds", _day_first(dates.iloc[row])
            if day is not None:  # pandas took row 1's format, month first: every earlier date may be misread too
                raise ConfigError(f"{where} {dates.iloc[row]!r}, a date written day first ({day} is not a month), "
                                  f"while row 1's {dates.iloc[0]!r} was read month first; write the dates as ISO "
                                  f"8601 (YYYY-MM-DD), or parse them in pandas with pd.to_datetime(df["
                                  f"'{dates.name}'], dayfirst=True) and pass the frame")
            raise ConfigError(f"{where} {_date_problem(dates.iloc[row], dates.iloc[0])}; fix the value or set "
                              "date_column")
    _refuse_misread_day_first(dates, parsed)
    return parsed


def read_as_utc(index: pd.Index) -> bool:
    """Whether ``index`` holds dates written with changing UTC offsets, read as UTC (``CHANGING_OFFSETS``)."""
    tz = getattr(index, "tz", None)
    return tz is not None and tz.tzname(None) == CHANGING_OFFSETS.tzname(None)


def integer_steps(values: pd.Series, name: str = "the series") -> pd.Series | None:
    """``values`` as int64 when the column holds numbers (a time index: 0, 1, 2, ..., also when a CSV column
    with a gap was read as floats); None when it holds dates. A number that is not whole, or none at all, is
    a one-line error."""
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return None
    if not pd.api.types.is_integer_dtype(values):
        v = values.to_numpy(dtype="float64")
        bad = ~np.isfinite(v) | (np.nan_to_num(v) % 1 != 0)
        if bad.any():
            row = int(np.argmax(bad))
            raise ConfigError(f"column '{values.name}' of {name}: row {row + 1} holds {plain(values.iloc[row])!r}; "
                              "time steps must be whole numbers (or give dates)")
    return values.astype("int64")


def rows_freq(index: pd.Index) -> str | int | None:
    """The step of a regular time index, recorded with a run's scaler so that a forecaster of the run can name the
    freq it was trained at: pandas' freq string of dates, the one step of whole-number steps; None when the rows
    are not evenly spaced (gaps) or too few to tell."""
    if len(index) < 3:
        return None
    if isinstance(index, pd.DatetimeIndex):
        with warnings.catch_warnings():  # pandas 3 warns that a later pandas gives an offset: read either below
            warnings.simplefilter("ignore")
            inferred = pd.infer_freq(index)
        return getattr(inferred, "freqstr", inferred)
    steps = np.unique(np.diff(index.to_numpy()))
    return int(steps[0]) if len(steps) == 1 else None


def plain(value):
    """A numpy scalar as the Python value it holds, so that a message shows 3.5, not np.float64(3.5)."""
    return value.item() if isinstance(value, np.generic) else value


def _to_datetime(dates: pd.Series, **options) -> pd.Series:
    """``pd.to_datetime``; dates whose UTC offsets differ (local time written across a daylight-saving change,
    e.g. +01:00 then +02:00) become their local dates when all are at one local time of day, else one UTC
    timeline (in the zone ``CHANGING_OFFSETS``), on which hourly rows stay hourly."""
    try:
        parsed = pd.to_datetime(dates, **options)
        if parsed.dtype != object or "utc" in options:  # pandas 2 gives objects for mixed offsets, pandas 3 raises
            return parsed
    except (ValueError, TypeError) as e:
        if "utc=True" not in str(e) or "utc" in options:  # pandas' own advice for mixed offsets
            raise
    utc = pd.to_datetime(dates, utc=True, **options)
    offsets = dates.astype(str).str.strip().str.extract(_OFFSET)
    known = offsets.notna().all(axis=1) | utc.isna()
    if known.all():
        minutes = (offsets[1].astype(float) * 60 + offsets[2].astype(float)) * offsets[0].map({"+": 1, "-": -1})
        local = utc.dt.tz_localize(None) + pd.to_timedelta(minutes.fillna(0), unit="min")
        if (local - local.dt.normalize()).dropna().nunique() <= 1:  # one time of day: calendar days as written
            return local
    return utc.dt.tz_convert(CHANGING_OFFSETS)


def _day_first(value) -> int | None:
    """The day of a date written day first (its first number, > 12, so not a month), else None."""
    match = _DAY_FIRST.match(value) if isinstance(value, str) else None
    return int(match[1]) if match and 12 < int(match[1]) <= 31 and int(match[2]) <= 12 else None


def _refuse_misread_day_first(dates: pd.Series, parsed: pd.Series) -> None:
    """Text dates whose first two numbers are all at most 12 (01.02.2020) are read month first by pandas without
    complaint; when that reading falls on no regular grid but the day-first one does (monthly data written day
    first, every day 01), the dates were misread: one line naming the fix, not a grid of hundreds of made-up days."""
    first = dates.iloc[0] if len(dates) else None
    if not isinstance(first, str) or not _DAY_FIRST.match(first) or parsed.dtype == object:
        return
    text = pd.Series(dates.dropna().unique())
    if len(text) < 3 or not text.map(lambda v: isinstance(v, str) and bool(_DAY_FIRST.match(v))).all():
        return
    if rows_freq(pd.DatetimeIndex(parsed.dropna().unique()).sort_values()) is not None:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        day_first = _to_datetime(text, dayfirst=True, errors="coerce")
    freq = None if day_first.isna().any() else rows_freq(pd.DatetimeIndex(day_first.unique()).sort_values())
    if freq is not None:
        raise ConfigError(f"column '{dates.name}': its dates read month first, as pandas reads them (row 1's "
                          f"{first!r} as {parsed.iloc[0].date()}), are on no regular grid, but read day first they "
                          f"are (freq {freq}); write the dates as ISO 8601 (YYYY-MM-DD), or parse them in pandas with "
                          f"pd.to_datetime(df['{dates.name}'], dayfirst=True) and pass the frame")


def _date_problem(value, first) -> str:
    if pd.isna(value):
        return "no date"
    if pd.isna(pd.to_datetime(value, errors="coerce")):
        return f"{value!r}, which is not a date"
    return f"{value!r}, a date written unlike row 1's {first!r}"


__all__ = ["parse_dates", "integer_steps", "plain", "rows_freq", "read_as_utc", "CHANGING_OFFSETS"]
