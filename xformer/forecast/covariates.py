"""Exogenous covariates: past-observed columns, future-known columns and calendar features from ``ds``.

- ``hist_exog`` (past-observed): columns of the frame known only up to the forecast origin; a window
  reads them over its L input steps, never after the origin.
- ``futr_exog`` (future-known, e.g. planned values): read over the L input steps and the H forecast
  steps, never beyond the horizon; at prediction time their H future values come in ``futr_df``.
- ``calendar``: future-known features computed from the dates, each scaled into [-0.5, 0.5] as
  GluonTS's time features: hour/23 - 0.5, weekday/6 - 0.5, day (of month, 1-31) (d-1)/30 - 0.5,
  dayofyear (d-1)/365 - 0.5, month (m-1)/11 - 0.5. They are read on the dates' own clock (local time for
  dates in a zone); dates written with changing UTC offsets and read as UTC (xformer/timestamps.py) have no
  known local clock, so calendar features of them are refused in one line.

Each covariate column of each series is standardised with the mean and scale of that series'
training part (calendar features are not). The tokenizer ``series_patches_covariates``
(xformer/tokenizers/series_covariates.py) turns them
into tokens beside the target's: the target window is RevIN-normalised and cut into PatchTST
patches as ``series_patches`` does; the past covariates (L, P) and the future ones (L+H, F) are cut
into patches of the same length and stride, each patch of all k columns (patch_len * k values)
projected linearly to d, plus learned positions. The core sees one longer sequence of tokens
(N + N_past + N_future) and is not changed; the forecast head flattens all of them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ..batch import FUTURE_COVARIATES as FUTURE
from ..batch import INPUTS, TARGETS
from ..batch import PAST_COVARIATES as PAST
from ..batch import STATIC_COVARIATES as STATIC
from ..config import ConfigError
from ..data.series import WindowDataset, carried_rows, fill_gaps, last_observed_rows
from ..timestamps import read_as_utc


CALENDAR = {"hour": lambda d: d.hour / 23.0 - 0.5, "weekday": lambda d: d.day_of_week / 6.0 - 0.5,
            "day": lambda d: (d.day - 1) / 30.0 - 0.5, "dayofyear": lambda d: (d.day_of_year - 1) / 365.0 - 0.5,
            "month": lambda d: (d.month - 1) / 11.0 - 0.5}


def calendar_features(dates: pd.DatetimeIndex, names: list[str]) -> np.ndarray:
    """(len(dates), len(names)) calendar features of ``dates`` (see the module docstring)."""
    if names and not isinstance(dates, pd.DatetimeIndex):
        raise ConfigError(f"calendar features {names} need dates in ds, but ds holds integers (e.g. {dates[0]}); "
                          "give ds as dates or drop calendar")
    if names and read_as_utc(dates):  # their local clock is unknown, after the data's end above all
        raise ConfigError(f"calendar features {names} need the local time of ds, but its dates were written with "
                          f"changing UTC offsets (a daylight-saving change) and are read as UTC (e.g. {dates[0]}); "
                          "give ds as dates in their zone in pandas (pd.to_datetime(df['ds'], utc=True).dt."
                          "tz_convert(ZONE)) and pass the frame, or write ds with one offset throughout")
    return np.stack([np.asarray(CALENDAR[n](dates), dtype=np.float64) for n in names], axis=1) \
        if names else np.zeros((len(dates), 0))


def check_calendar(names: list[str] | None) -> None:
    unknown = [n for n in names or [] if n not in CALENDAR]
    if unknown:
        raise ConfigError(f"unknown calendar feature(s) {unknown}; choose among {', '.join(CALENDAR)}")


def standard_stats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``StandardScaler().fit(values)``'s ``mean_`` and ``scale_`` of each column of ``values`` (n, k), to the bit:
    its own arithmetic (sklearn.utils.extmath._incremental_mean_and_var from no samples seen, NaN left out, scale 1
    for a column constant within its rounding error), without the input checks that cost about 0.5 ms a call,
    i.e. seconds for each fit and backtest window of a panel of thousands of series."""
    values = np.asarray(values, dtype=np.float64)
    gaps = np.isnan(values)
    total = np.nansum if gaps.any() else np.sum
    count = 0.0 + (len(values) - total(gaps.astype(np.float64), axis=0))
    sums = total(values, axis=0)
    mean = (0.0 + sums) / count
    centred = values - sums / count
    correction = total(centred, axis=0)
    variance = (total(centred ** 2, axis=0) - correction ** 2 / count) / count
    eps = np.finfo(np.float64).eps
    constant = variance <= count * eps * variance + (count * mean * eps) ** 2
    return mean, np.where(constant, 1.0, np.sqrt(variance))


def covariate_stats(cov: pd.DataFrame, rows: pd.DatetimeIndex) -> tuple[list[float], list[float]]:
    """StandardScaler's mean and scale of each covariate column over ``rows`` (a series' training part)."""
    mean, scale = standard_stats(cov.reindex(rows).to_numpy())
    return mean.tolist(), scale.tolist()


def check_training_covariates(key: str, part: pd.DataFrame, val_size: int) -> None:
    """Refuse in one line a covariate column without any value in the rows series ``key`` trains on (``part``,
    filled by the policy): its scaling statistics and every training window would read nothing there."""
    empty = list(part.columns[part.isna().to_numpy().all(axis=0)])
    if empty:
        held = f", before the last val_size={val_size} steps held out for validation" if val_size else ""
        raise ConfigError(f"covariate(s) {empty} of series '{key}' hold no value in the {len(part)} rows fit trains "
                          f"on (the series' first rows{held}); give them values there, or leave out that series "
                          "(or those covariates)")


def covariate_block(cfg, key: str, cov: pd.DataFrame | None, stats, dates: pd.DatetimeIndex, future: bool
                    ) -> np.ndarray:
    """(len(dates), k): the past-observed (``future=False``) or future-known covariates of series ``key`` at
    ``dates``, standardised with ``stats``; the future ones followed by the calendar features."""
    columns = (cfg.futr_exog if future else cfg.hist_exog) or []
    blocks = []
    if columns:
        rows = cov.index.get_indexer(dates)  # cov.reindex(dates)[columns] without building that frame: -1 absent
        values = np.full((len(dates), len(columns)), np.nan)
        values[rows >= 0] = cov.to_numpy(dtype=np.float64)[rows[rows >= 0]][:, cov.columns.get_indexer(columns)]
        absent = np.isnan(values).any(axis=1)
        if absent.any():
            fix = ("; pass futr_df (xformer forecast: --futr FILE.csv) with unique_id, ds and those columns for "
                   "the horizon after each series' end" if future else "")
            raise ConfigError(f"{'future-known' if future else 'past-observed'} covariate(s) {columns} missing for "
                              f"series '{key}' at {dates[int(np.argmax(absent))]} ({int(absent.sum())} of the "
                              f"{len(dates)} steps the forecast reads){fix}")
        where = [cfg.exog.index(c) for c in columns]
        mean, scale = np.asarray(stats[0])[where], np.asarray(stats[1])[where]
        blocks.append((values - mean) / scale)
    if future and cfg.calendar:
        blocks.append(calendar_features(dates, cfg.calendar))
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(dates), 0))


def series_windows(cfg, key: str, raw: pd.Series, cov: pd.DataFrame | None, stats: tuple[float, float], cov_stats,
                   lo: int, hi: int, static: np.ndarray | None = None) -> Dataset:
    """The windows of rows [lo, hi) of one series as ``fit`` trains (0, n_train) and validates (n_train - L, n) on
    them: its target ``raw`` (gaps NaN) standardised with ``stats``, and, with covariates, ``cov`` (``cov_stats``)
    and the standardised ``static`` vector. Gaps are filled (``cfg.missing``) from the rows before ``hi`` only,
    and with "interpolate" a gap that reaches a window's origin is carried forward from its last observation,
    not interpolated towards the value after it (``WindowDataset``'s rule): the inputs and past covariates read
    no row after the origin, the future-known covariates none after the horizon's end."""
    L, H, missing = cfg.input_len, cfg.horizon, cfg.missing
    rows = raw.iloc[:hi]
    scaled = lambda y: ((y.to_numpy() - stats[0]) / stats[1])[:, None]  # noqa: E731
    carry = missing == "interpolate"  # "ffill" carries every gap forward already
    carry_y = _carried(rows.to_frame(), lo, scaled(fill_gaps(rows, "ffill"))[lo:]) if carry else None
    z = scaled(fill_gaps(rows, missing))[lo:]
    if not cfg.has_covariates:
        return WindowDataset(z, L, H, carry_y)
    known = None if cov is None else cov.loc[:rows.index[-1]].reindex(rows.index)
    blocks = []
    for future in (False, True):
        block = lambda filled: covariate_block(cfg, key, filled, cov_stats, rows.index, future)[lo:]  # noqa: E731
        columns = (cfg.futr_exog if future else cfg.hist_exog) or []
        values = block(None if known is None else fill_gaps(known, missing))
        blocks.append((values, _carried(known[columns], lo, block(fill_gaps(known, "ffill")))
                       if carry and known is not None else None))
    (past, carry_past), (future, carry_future) = blocks
    return CovariateWindows(z, past, future, L, H, static, (carry_y, carry_past, carry_future))


def _carried(raw: pd.DataFrame, lo: int, forward: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``WindowDataset``'s ``carried`` pair for rows [lo, ...) of ``raw`` (gaps NaN): each value's last observed
    row (counted from lo) and ``forward``, the rows [lo, ...) filled forward as the window holds them; None
    without gaps. Columns of ``forward`` past ``raw``'s (calendar features, never missing) are observed in every
    row."""
    if not raw.isna().to_numpy().any():
        return None
    observed = last_observed_rows(raw)
    every_row = np.repeat(np.arange(len(raw))[:, None], forward.shape[1] - observed.shape[1], axis=1)
    return np.concatenate([observed, every_row], axis=1)[lo:] - lo, forward


def window_covariates(cfg, key: str, cov, stats, history: pd.DatetimeIndex, ahead: pd.DatetimeIndex
                      ) -> tuple[np.ndarray, np.ndarray]:
    """What one forecast reads: past covariates at the last L ``history`` dates, future-known ones there
    and at the H dates ``ahead``. Their gaps are filled (``cfg.missing``) from the rows up to what each may
    know: the origin (``history[-1]``) for past-observed ones, the horizon's end for future-known ones."""
    dates = history[-cfg.input_len:]
    known = lambda end: None if cov is None else known_covariates(cov, dates.append(ahead), end, cfg.missing)  # noqa: E731
    return (covariate_block(cfg, key, known(history[-1]), stats, dates, future=False),
            covariate_block(cfg, key, known(ahead[-1]), stats, dates.append(ahead), future=True))


def known_covariates(cov: pd.DataFrame, needed: pd.Index, end, missing: str) -> pd.DataFrame:
    """The covariate rows up to ``end``, filled by the ``missing`` policy from those rows only. A date of
    ``needed`` that futr_df skips between two of its rows is a missing value, as an empty cell there is; dates
    after its last row stay absent (the forecast is refused for lack of them, never filled past what was given)."""
    known = cov.loc[:end]
    inside = needed[needed <= min(end, known.index[-1])] if len(known) else needed[:0]
    return fill_gaps(known.reindex(known.index.union(inside)), missing)


class CovariateWindows(torch.utils.data.Dataset):
    """Item i of one series: inputs = y[i : i+L], targets = y[i+L : i+L+H], past = p[i : i+L],
    future = f[i : i+L+H] (the covariates never reach past the window's horizon), static = s (every item).
    ``carried``: ``WindowDataset``'s (last_observed, forward_filled) pair of y, p and f (each None without gaps):
    a trailing gap of the inputs and past covariates at the origin, of the future ones at the horizon's end,
    holds the value carried forward."""

    def __init__(self, y: np.ndarray, past: np.ndarray, future: np.ndarray, input_len: int, horizon: int,
                 static: np.ndarray | None = None, carried: tuple | None = None):
        as_tensor = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
        self.y, self.past, self.future = as_tensor(y).reshape(-1, 1), as_tensor(past), as_tensor(future)
        self.static = None if static is None else as_tensor(static)
        self.input_len, self.horizon = input_len, horizon
        self.carried = [None if c is None else (torch.as_tensor(c[0], dtype=torch.long), as_tensor(c[1]))
                        for c in carried or (None, None, None)]

    def __len__(self) -> int:
        return max(0, len(self.y) - self.input_len - self.horizon + 1)

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(i)
        cut, end = i + self.input_len, i + self.input_len + self.horizon
        carry_y, carry_past, carry_future = self.carried
        item = {INPUTS: carried_rows(self.y, carry_y, i, cut), TARGETS: self.y[cut:end]}
        if self.past.shape[1]:
            item[PAST] = carried_rows(self.past, carry_past, i, cut)
        if self.future.shape[1]:
            item[FUTURE] = carried_rows(self.future, carry_future, i, end)
        if self.static is not None:
            item[STATIC] = self.static
        return item


__all__ = ["PAST", "FUTURE", "STATIC", "CALENDAR", "calendar_features", "check_calendar", "check_training_covariates",
           "covariate_stats", "standard_stats", "covariate_block", "series_windows", "window_covariates",
           "CovariateWindows"]
