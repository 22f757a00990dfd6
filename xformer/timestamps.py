"""Time columns as the series readers read them: dates (one timeline across UTC-offset changes) or whole-number
steps, with one-line errors naming the first value that is neither. Below everything else (layer 0), so that the
metrics read a ``ds`` column exactly as the data does."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .errors import ConfigError


def parse_dates(dates: pd.Series, name: str = "the series") -> pd.Series:
    """``pd.to_datetime(dates)``; a value that is not a date (or a date written unlike the others), or no
    value, stops with one line naming the first such row (1 = the first row below the header)."""
    with warnings.catch_warnings():  # pandas warns when it falls back to per-value parsing: not the user's concern
        warnings.simplefilter("ignore")
        try:
            parsed = _to_datetime(dates)
        except (ValueError, TypeError, OverflowError):
            parsed = _to_datetime(dates, errors="coerce")  # NaT from the first value pandas refused
        bad = parsed.isna().to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise ConfigError(f"column '{dates.name}' of {name}: row {row + 1} holds "
                              f"{_date_problem(dates.iloc[row], dates.iloc[0])}; fix the value or set date_column")
    return parsed


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


def plain(value):
    """A numpy scalar as the Python value it holds, so that a message shows 3.5, not np.float64(3.5)."""
    return value.item() if isinstance(value, np.generic) else value


def _to_datetime(dates: pd.Series, **options) -> pd.Series:
    """``pd.to_datetime``; dates whose UTC offsets differ (local time written across a daylight-saving change,
    e.g. +01:00 then +02:00) become one UTC timeline, on which hourly rows stay hourly."""
    try:
        return pd.to_datetime(dates, **options)
    except (ValueError, TypeError) as e:
        if "utc=True" in str(e) and "utc" not in options:  # pandas' own advice for mixed offsets
            return pd.to_datetime(dates, utc=True, **options)
        raise


def _date_problem(value, first) -> str:
    if pd.isna(value):
        return "no date"
    if pd.isna(pd.to_datetime(value, errors="coerce")):
        return f"{value!r}, which is not a date"
    return f"{value!r}, a date written unlike row 1's {first!r}"


__all__ = ["parse_dates", "integer_steps", "plain"]
