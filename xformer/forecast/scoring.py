"""``evaluate`` for frames as forecasting users hold them: train_df's series put on their time grid first, by the
panel reader's own code, then scored by :func:`xformer.metrics_forecast.evaluate`.

metrics_forecast.evaluate takes a series' rows of train_df as consecutive steps (numbers in, numbers out), so for
hourly rows with 5 hours absent its seasonal naive scale of period 24 would pair values 24 rows apart, 29 hours.
Here train_df is read as ``read_panel`` reads a long frame (ids as text, ds as whole-number steps or dates) at
``freq``, given (one freq for all series) or inferred as ``Forecaster.fit`` infers it (``infer_freq``), each absent
timestamp of a series' grid (its first ds + k x freq) inserted as a row with ``y`` missing. That is the frame
``xformer backtest`` scores (``Panel.to_long()`` of the data it read), so both give one MASE. The whole of
train_df is put on the grid, and evaluate then cuts each series at its first cutoff: the grid starts at the
series' first row, wherever the cut.

Unlike fit, evaluate needs no freq the series share (the grid is per series anyway): when the reader refuses the
panel as a whole (an hourly and a daily series, as in M4 or another library's cross-validation frame), each
series is read alone at its own inferred freq. A series whose dates no freq holds is refused in one line naming
it, with the fixes that work here: evaluate's ``freq=``, or ``metrics_forecast.evaluate`` (rows as steps).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .. import metrics_forecast
from ..config import ConfigError
from ..errors import a_or_an
from ..metrics_forecast import ids_as_text
from .frames import DS, ID, Y, infer_freq, read_panel
from ..data.frequency_checks import NO_PANDAS_FREQ

REFUSED = "cannot put train_df on its time grid for MASE's scale: "
UNGRIDDED = "or score its rows as consecutive steps with xformer.metrics_forecast.evaluate (which does not grid)"
NO_FREQ = "cannot infer a regular frequency from column 'ds'"
FIT_FLAGS = re.compile(r" \((?:e\.g\. freq='\w+' to Forecaster, )?--freq \S+ to xformer forecast\)")  # fit's fixes


def evaluate(df: pd.DataFrame, train_df: pd.DataFrame | None = None, season: int = 1, point: str = "y_hat",
             target: str = "y", id_column: str = "unique_id", freq=None) -> pd.DataFrame:
    """:func:`xformer.metrics_forecast.evaluate` (its columns, rows and checks) of ``df``, with ``train_df`` (long,
    with ``ds``) first put on each series' time grid by :func:`on_time_grid`, so that MASE's naive forecast pairs
    values ``season`` steps apart in time, not rows. ``freq``: the step of train_df's ds (a pandas frequency
    such as "h", or the whole-number step of an integer ds; the forecaster's ``f.freq``), one for all series;
    default: inferred as ``Forecaster.fit`` infers it, or per series for series of different freqs. A train_df
    without ``ds`` is taken as it is (its rows as consecutive steps)."""
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(f"evaluate takes df as a pandas DataFrame of forecasts and truth ({id_column}, {target}, "
                          f"{point}: what cross_validation returns), got {a_or_an(type(df).__name__)}")
    if train_df is not None and not isinstance(train_df, pd.DataFrame):
        raise ConfigError(f"train_df must be a pandas DataFrame of the training series ({id_column}, ds, {target}) "
                          f"or None, got {a_or_an(type(train_df).__name__)}")
    if train_df is not None and DS in train_df.columns:
        train_df = on_time_grid(train_df, df, freq, target, id_column)
    elif freq is not None:
        raise ConfigError("freq is the step of train_df's ds, to put its rows on their time grid; pass train_df "
                          "with a ds column, or leave freq out")
    return metrics_forecast.evaluate(df, train_df, season, point, target, id_column)


def on_time_grid(train_df: pd.DataFrame, df: pd.DataFrame, freq=None, target: str = "y",
                 id_column: str = "unique_id") -> pd.DataFrame:
    """The series of ``train_df`` that ``df`` scores, long (``id_column, ds, target``), each on its grid at
    ``freq`` (given, or inferred as fit infers it, else each series' own) with a row of ``target`` missing at
    each absent timestamp, as ``read_panel`` reads them; what the panel reader refuses (two rows at one ds, dates
    no freq holds, a row off the grid of the freq given) is refused in one line. A frame evaluate refuses anyway
    (no id or target column) is returned as it is, for its message."""
    if not {id_column, target} <= set(train_df.columns) or id_column not in df.columns:
        return train_df
    ids = ids_as_text(train_df[id_column], "train_df")
    scored = ids.isin(pd.unique(ids_as_text(df[id_column]).to_numpy())).to_numpy()
    observed = np.zeros(len(ids), dtype=bool)  # whether a series has any value: asked of the scored ones only
    observed[scored] = train_df[target][scored].notna().groupby(ids[scored].to_numpy()).transform("any").to_numpy()
    if not (scored & observed).any():
        return train_df  # nothing to put on a grid: evaluate names the series train_df lacks
    kept = scored & observed
    frame = pd.DataFrame({ID: ids[kept].to_numpy(), DS: train_df[DS][kept].array, Y: train_df[target][kept].array})
    try:
        gridded = gridded_panel(frame, freq)
    except ConfigError:
        if freq is not None:
            raise
        gridded = pd.concat([gridded_panel(series, check=len(series) >= 3)  # e.g. an hourly and a daily series:
                             for _, series in frame.groupby(ID, sort=False)], ignore_index=True)  # each on its own
    empty = pd.unique(ids[scored & ~observed])
    if len(empty):  # a series without any value has no scale wherever its rows are: one row of it (at a ds of
        # the grid's kind) keeps it in train_df, for evaluate to name it among the series whose MASE is undefined
        unobserved = pd.DataFrame({ID: empty, DS: gridded[DS].iloc[:1].repeat(len(empty)).to_numpy(),
                                   Y: float("nan")})
        gridded = pd.concat([gridded, unobserved], ignore_index=True)
    return gridded.rename(columns={ID: id_column, Y: target})


def gridded_panel(frame: pd.DataFrame, freq=None, check: bool = True) -> pd.DataFrame:
    """``frame`` (long, one series or many) read by the panel reader at ``freq`` (given, or one inferred for all
    its series), long again: its gaps as rows without ``y``. What the reader refuses is refused in one line with
    evaluate's fixes, not fit's: its ``freq=``, or metrics_forecast's evaluate for what no freq holds. ``check``
    False: the dates are read without asking for a freq (a series of 2 rows has none: its rows are kept)."""
    try:
        panel = read_panel(frame, missing="ffill", freq=freq)  # a policy that keeps the gaps, filling none
    except ConfigError as e:  # two rows at one ds, a gap too long to fill: no freq fixes these
        raise ConfigError(REFUSED + FIT_FLAGS.sub("", str(e))) from None
    if not check:
        return panel.to_long()
    try:
        infer_freq(panel, freq)  # what fit refuses: series of two freqs, dates no freq holds, rows off its grid
    except ConfigError as e:
        problem = FIT_FLAGS.sub("", str(e)) + ";"
        months = problem.startswith(NO_FREQ) and NO_PANDAS_FREQ in problem  # fit's fix moves ds, not evaluate's
        if (problem.startswith(NO_FREQ + ";") or months) and len(panel.series) == 1:  # fit's message names no series
            problem = (f"series '{panel.ids[0]}' has dates on no frequency's grid (irregular times, or steps pandas "
                       "names no frequency for, e.g. the 15th of each month); pass evaluate(..., freq=...) if a "
                       "frequency holds its dates,")
        raise ConfigError(f"{REFUSED}{problem} {UNGRIDDED}") from None
    return panel.to_long()


__all__ = ["evaluate", "on_time_grid"]
