"""Static (per-series) covariates, neuralforecast's ``static_df``: one row per series, ``unique_id`` and
the numeric columns named in ``stat_exog`` (e.g. a store's size, a sensor's location encoded as numbers).

They are standardised column by column with the mean and scale of the training series' rows (StandardScaler:
s_scaled = (s - mean) / scale, scale 1 for a constant column), one statistic for all series since a static
value has no history of its own to scale it by. The tokenizer ``series_patches_covariates`` turns each
series' vector into one extra token (xformer/tokenizers/series_covariates.py).

Checks, each a one-line :class:`~xformer.config.ConfigError`: no ``unique_id`` column, a ``stat_exog``
column absent, two rows of one series, a non-numeric, missing or infinite value, a series of the data without
a row.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

from ..config import ConfigError
from ..data.csv_files import number_text, text_numbers
from .frames import ID, load_frame


def read_static(static_df, columns: list[str] | None, name: str = "static_df") -> pd.DataFrame | None:
    """The ``columns`` of ``static_df`` (a frame or CSV path), indexed by ``unique_id`` as strings; None if
    neither is given. ``name``: the table's name in the messages ("--static FILE" for the commands')."""
    if static_df is None:
        return None
    if not columns:
        raise ConfigError("static_df holds static covariates, but the forecaster has none; name its columns in "
                          "stat_exog (e.g. Forecaster(..., stat_exog=['size']))")
    frame = load_frame(static_df)
    if ID not in frame.columns:
        raise ConfigError(f"{name} has no column 'unique_id' (it has {[str(c) for c in frame.columns]}); it needs "
                          "unique_id and the stat_exog columns, one row per series")
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise ConfigError(f"{name} has no static column {', '.join(repr(c) for c in absent)} (it has "
                          f"{[str(c) for c in frame.columns]}); give every column of stat_exog")
    if frame[ID].isna().any():  # else read as the series 'nan', and its series told it has no row
        raise ConfigError(f"{name}: column 'unique_id' has no value at row {int(np.argmax(frame[ID].isna())) + 1}; "
                          "give every row its series' id")
    ids = frame[ID].astype(str)
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        key = ids.iloc[int(np.argmax(dup))]
        raise ConfigError(f"{name} has {int((ids == key).sum())} rows for series '{key}'; keep one row per "
                          "unique_id")
    values = {}
    for column in columns:
        raw = frame[column]
        numbers, text = text_numbers(frame[[column]])  # True / False: 1 / 0
        numeric, bad = numbers[column], text[:, 0]  # blank text: no value
        if bad.any():
            row = int(np.argmax(bad))
            fix = number_text(raw.iloc[row], column) or (  # a decimal comma, thousands separators; else a category
                f"; encode it as numbers, e.g. pandas.get_dummies(static_df, columns=['{column}'], dtype=float), and "
                "name the new columns in stat_exog")
            raise ConfigError(f"static column '{column}' holds non-numeric value {raw.iloc[row]!r} (series "
                              f"'{ids.iloc[row]}'){fix}")
        if numeric.isna().any():
            row = int(np.argmax(numeric.isna().to_numpy()))
            raise ConfigError(f"static column '{column}' has no value for series '{ids.iloc[row]}'; give every "
                              "series a value")
        values[column] = numeric.astype("float64").to_numpy()
        infinite = np.isinf(values[column])
        if infinite.any():  # standardised, it would make the series' forecast NaN
            row = int(np.argmax(infinite))
            raise ConfigError(f"static column '{column}' holds the infinite value {raw.iloc[row]} (series "
                              f"'{ids.iloc[row]}'); static values must be finite numbers")
    return pd.DataFrame(values, index=pd.Index(ids.to_numpy(), name=ID))


def static_for_command(path: str | None, columns: list[str] | None) -> pd.DataFrame | None:
    """``xformer forecast`` / ``backtest``'s ``--static FILE``, checked by ``read_static`` in the commands' words
    (``--static FILE has no column ...``), as the long frame (unique_id and ``columns``) that predict reads."""
    return None if path is None else read_static(path, columns, f"--static {path}").rename_axis(ID).reset_index()


def check_static(table: pd.DataFrame | None, ids: list[str], columns: list[str] | None) -> None:
    """Every series of ``ids`` has a row of ``table`` (when the forecaster has static covariates)."""
    if not columns:
        return
    if table is None:
        raise ConfigError(f"stat_exog {columns} needs static_df (unique_id and those columns, one row per series): "
                          "fit(df, static_df=...)")
    lacking = [k for k in ids if k not in table.index]
    if lacking:
        number = _whole(lacking[0])
        written = next((k for k in table.index if number is not None and _whole(k) == number), None)
        cause = (f": static_df writes its id '{written}' (ids are matched as text: write static_df's unique_id as "
                 f"the data's, '{lacking[0]}')") if written is not None else \
            "; give every series of the data its static values"
        raise ConfigError(f"series '{lacking[0]}' has no row in static_df ({len(lacking)} of the {len(ids)} series "
                          f"lack one){cause}")


def _whole(text) -> int | None:
    """The whole number an id is written as ('1', '1.0', '001'), else None."""
    try:
        number = float(text)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


def static_stats(table: pd.DataFrame, ids: list[str]) -> tuple[list[float], list[float]]:
    """StandardScaler's mean and scale of each static column over the rows of the training series ``ids``."""
    scaler = StandardScaler().fit(table.loc[ids].to_numpy())
    return scaler.mean_.tolist(), scaler.scale_.tolist()


def static_vector(table: pd.DataFrame, key: str, stats) -> np.ndarray:
    """(S,): the standardised static covariates of series ``key``."""
    return (table.loc[key].to_numpy(dtype=np.float64) - np.asarray(stats[0])) / np.asarray(stats[1])


__all__ = ["read_static", "static_for_command", "check_static", "static_stats", "static_vector"]
