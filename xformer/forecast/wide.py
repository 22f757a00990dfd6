"""A forecast of a wide table given back as one: the long result (``unique_id, ds, y_hat``, quantile columns) of
``predict`` pivoted to dates x series, dated with the forecaster's freq."""
from __future__ import annotations

import pandas as pd

from .frames import DS, ID, POINT, quantile_column


def to_wide(result: pd.DataFrame, date_column: str, quantiles: list[float] | None,
            freq: pd.DateOffset | int | None = None) -> pd.DataFrame:
    """A long result as the wide table of a wide input: dates x series (the median, with quantiles), then
    ``{name}_q{q}`` columns for the other levels: the median is not repeated, as in a long result."""
    point = result.pivot(index=DS, columns=ID, values=POINT)
    keys = list(dict.fromkeys(result[ID]))
    wide = point[keys].rename_axis(date_column).rename_axis(None, axis=1)
    wide.index = pd.Index(wide.index, name=date_column) if isinstance(freq, int) else _dated(wide.index, freq)
    for q in sorted(set(quantiles or []) - {0.5}):
        values = result.pivot(index=DS, columns=ID, values=quantile_column(q))
        for key in keys:
            wide[f"{key}_q{q:.12g}"] = values[key].to_numpy()
    return wide


def _dated(dates: pd.Index, freq) -> pd.DatetimeIndex:
    """The forecast dates, stamped with ``freq`` when they are regular; series that end apart leave holes."""
    try:
        return pd.DatetimeIndex(dates, freq=freq, name=dates.name)
    except ValueError:
        return pd.DatetimeIndex(dates, name=dates.name)


__all__ = ["to_wide"]
