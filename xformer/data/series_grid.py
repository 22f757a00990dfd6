"""The time grid of a wide table for ``xformer train`` (``csv_series``, ``ett``), by the Forecaster's rules.

Windows count rows as steps, so two rows hours apart must not be read as consecutive. The table's grid is its
first timestamp + k * freq, freq given (``data.args.freq``) or inferred from the dates as the Forecaster infers
it (frequency.py: at most 10% of the rows inserted, most rows one step apart); a timestamp of that grid without
a row becomes a row of missing values, which ``data.args.missing`` then refuses (the default) or fills, as it
does any missing value. So a run reads a gapped file as ``xformer forecast RUN --data FILE`` later does.

Dates no grid holds are refused in one line, as Darts refuses them unless told the freq (and neuralforecast
assumes a regular one): the user says which grid they are on (``data.args.freq``), or that each row is one step
(``data.args.date_column=null``). Numbered rows (``date_column: null``) are steps by definition: no grid.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import ConfigError
from .frequency import (MOST_INSERTED, _absolute, _grid_steps, _near_grid, _not_inserted, _suggested_freq,
                        _typical_step, grid_freq, on_grid)
from .frequency_checks import freq_label, kind_of, month_days, parse_freq


def put_on_grid(values: pd.DataFrame, freq, name: str, column: str | None
                ) -> tuple[pd.DataFrame, pd.Index, pd.DateOffset | int | None]:
    """(``values`` with a row of missing values at each timestamp of its grid it lacks, those timestamps, the
    freq); ``values`` itself when nothing is missing. ``freq``: ``data.args.freq`` (None: inferred); ``name``:
    the file, ``column``: its time column (None: numbered rows, kept as they are)."""
    index, none = values.index, values.index[:0]
    if column is None:
        if freq is not None:
            raise ConfigError(f"data.args.freq {freq!r} is the step of a time column, but date_column is null (each "
                              "row one step); drop data.args.freq, or name the time column in data.args.date_column")
        return values, none, None
    if freq is None:
        if len(index) < 3:  # too few to tell; too few for any window too (check_split_lengths says so)
            return values, none, None
        grid = grid_freq([index])
        if grid is None:
            raise ConfigError(_no_grid(index, name, column))
        return (*on_grid(values, grid, inferred=True), grid)
    grid = parse_freq(freq, "data.args.freq")
    _check_given(index, grid, name, column)
    return (*on_grid(values, grid), grid)


def refuse_lacking(values: pd.DataFrame, inserted: pd.Index, freq, name: str) -> None:
    """missing="error" on a table whose grid lacked the rows ``inserted``: one line naming how many, the first,
    and the fixes (with the count of the other missing values, if any)."""
    others = int(values.drop(index=inserted).isna().to_numpy().sum())
    n = len(inserted)
    also = f", and {others} missing value{'s' * (others > 1)}" if others else ""
    raise ConfigError(f"{name} lacks {n} timestamp{'s' * (n > 1)} of freq {freq_label(freq)} (the first "
                      f"{inserted[0]}){also}; windows would read the rows around them as one step apart: pass "
                      "missing='ffill' or missing='interpolate' to fill them (in a recipe or on the command line: "
                      "data.args.missing=ffill or data.args.missing=interpolate), or add those rows with their values")


def _no_grid(index: pd.Index, name: str, column: str) -> str:
    """Why no freq was inferred from ``index``, and the fix."""
    near = _near_grid(index)
    if near is not None:
        grid, n, rows = near
        steps = _grid_steps(index, grid)[0]
        first = index[int(np.argmax(np.diff(steps) > 1))] + grid
        return (f"{name} lacks {n} timestamps of freq {freq_label(grid)} (the first {first}; {100 * n / rows:.0f}% of "
                f"its {rows} rows, more than the {MOST_INSERTED:.0%} a freq inferred from the dates may add); set "
                f"data.args.freq={freq_label(grid)} to confirm that grid, with data.args.missing=ffill or "
                "data.args.missing=interpolate to fill them, or add those rows with their values")
    months = month_days(index, column)
    if months is not None:  # its fix names the Forecaster's freq=; here that is data.args.freq
        return f"no frequency fits column '{column}' of {name}: {months.replace('pass freq=', 'set data.args.freq=')}"
    what = "dates" if isinstance(index, pd.DatetimeIndex) else "steps"
    gaps = index[1:] - index[:-1]
    return (f"the {what} in column '{column}' of {name} are not evenly spaced (from {gaps.min()} to {gaps.max()} "
            "apart) and no frequency holds them with few rows missing, but windows count rows "
            "as steps: resample the rows to a regular grid, set data.args.freq to the grid they are on (its absent "
            "timestamps then become missing rows), or take each row as one step with data.args.date_column=null "
            "(and data.args.columns=[...] naming the value columns)")


def _check_given(index: pd.Index, freq, name: str, column: str) -> None:
    """Refuse a given ``freq`` the rows are not on: of the other kind, off its grid, most rows several steps
    apart, or a grid far longer than the rows (a gap no fill should bridge)."""
    label, dates = freq_label(freq), isinstance(index, pd.DatetimeIndex)
    suggested = _suggested_freq(index) if len(index) > 2 else None
    fix = (f"its {'dates' if dates else 'steps'} suggest data.args.freq={freq_label(suggested)}: set that, or leave "
           "data.args.freq out to infer it") if suggested is not None else "set the freq its rows are one step apart at"
    if isinstance(freq, int) == dates:
        kind = "a whole-number step" if isinstance(freq, int) else "a pandas frequency of dates"
        raise ConfigError(f"data.args.freq {label} is {kind}, but column '{column}' of {name} holds {kind_of(index)} "
                          f"(e.g. {index[0]}); {fix}")
    if len(index) < 2:
        return
    steps, off = _grid_steps(index, freq)
    if off is not None:
        where = f"a whole number of {label} steps after the first row {index[0]}" if isinstance(freq, int) or \
            _absolute(freq, index) or freq.is_on_offset(off) else f"on the anchor of {label}"
        raise ConfigError(f"data.args.freq {label} does not fit column '{column}' of {name}: {off} is not {where}; "
                          f"{fix}")
    why = _not_inserted(index, steps, inferred=False)
    if why == "spacing":
        raise ConfigError(f"data.args.freq {label} does not fit column '{column}' of {name}: its rows are typically "
                          f"{_typical_step(steps)} steps of {label} apart; {fix}")
    if why == "long":
        at = int(np.argmax(np.diff(steps)))
        raise ConfigError(f"{name} has a gap from {index[at]} to {index[at + 1]} ({int(steps[at + 1] - steps[at]) - 1} "
                          f"missing timestamps of freq {label}), far longer than its {len(index)} rows, too long to "
                          "fill as missing rows; cut the series at the gap (keep the rows after it)")


__all__ = ["put_on_grid", "refuse_lacking"]
