"""Forecast errors per series and overall: MSE, MAE, MASE, sMAPE, the pinball loss of quantiles and CRPS.

For one series with truth y_1..y_n and forecasts yhat_1..yhat_n (every window and step of it):

    MSE   = 1/n sum_i (y_i - yhat_i)^2
    MAE   = 1/n sum_i |y_i - yhat_i|
    sMAPE = 200/n sum_i |y_i - yhat_i| / (|y_i| + |yhat_i|)          (percent, 0..200; a 0/0 term counts 0;
                                                                       the M4 competition's definition)
    MASE  = MAE / (1/(T-m) sum_{t=m+1..T} |x_t - x_{t-m}|)            (Hyndman & Koehler 2006: the MAE of the
                                                                       seasonal naive forecast of period m on
                                                                       the in-sample history x_1..x_T)
    pinball = 1/(n Q) sum_q sum_i max(q u_qi, (q - 1) u_qi),  u_qi = y_i - yhat_qi
                                                                      (the quantile loss; under-forecasts cost
                                                                       q per unit, over-forecasts 1 - q)
    CRPS  = 1/n sum_i int_0^1 2 rho_q(y_i - F_i^{-1}(q)) dq            (continuous ranked probability score,
          ~ 1/n sum_i (2/Q) sum_q rho_q(u_qi) = 2 pinball               Gneiting & Raftery 2007, in quantile form:
                                                                       the integral over q replaced by the mean
                                                                       over the forecaster's Q levels, the
                                                                       approximation GluonTS's / neuralforecast's
                                                                       scaled CRPS build on, here not divided by
                                                                       sum |y|; rho_q(u) = max(q u, (q - 1) u))

"overall" pools every value of every series for MSE, MAE, sMAPE, pinball and CRPS, and is the mean of the
per-series values for MASE (each series has its own scale). No model, no data loading: numbers in,
numbers out.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .errors import ConfigError
from .timestamps import integer_steps, parse_dates

OVERALL = "overall"


def mse(y, y_hat) -> float:
    return float(np.mean((np.asarray(y, float) - np.asarray(y_hat, float)) ** 2))


def mae(y, y_hat) -> float:
    return float(np.mean(np.abs(np.asarray(y, float) - np.asarray(y_hat, float))))


def smape(y, y_hat) -> float:
    """200/n sum |y - yhat| / (|y| + |yhat|), 0/0 terms as 0 (percent)."""
    y, y_hat = np.asarray(y, float), np.asarray(y_hat, float)
    denominator = np.abs(y) + np.abs(y_hat)
    ratio = np.divide(np.abs(y - y_hat), denominator, out=np.zeros_like(y), where=denominator > 0)
    return float(200 * np.mean(ratio))


def naive_scale(insample, season: int = 1) -> float:
    """1/(T-m) sum_{t>m} |x_t - x_{t-m}|: the in-sample MAE of the seasonal naive forecast. A difference that
    involves a missing value (NaN) is left out, the others keep their places in time (dropping the NaN values
    first would pair values m + 1 steps apart); NaN when no difference is left (T <= m)."""
    x = np.asarray(insample, float)
    d = np.abs(x[season:] - x[:-season]) if len(x) > season else np.zeros(0)
    d = d[~np.isnan(d)]
    return float(np.mean(d)) if len(d) else float("nan")


def mase(y, y_hat, insample, season: int = 1) -> float:
    """MAE / naive_scale(insample, season); NaN when the history is too short or constant."""
    scale = naive_scale(insample, season)
    return mae(y, y_hat) / scale if scale > 0 else float("nan")


def pinball(y, quantile_forecasts, quantiles) -> float:
    """Mean pinball loss; ``quantile_forecasts`` (n, Q) for the Q levels ``quantiles``."""
    y = np.asarray(y, float)[:, None]
    q = np.asarray(quantiles, float)[None, :]
    u = y - np.asarray(quantile_forecasts, float)
    return float(np.mean(np.maximum(q * u, (q - 1) * u)))


def crps(y, quantile_forecasts, quantiles) -> float:
    """CRPS from Q quantile forecasts: 1/n sum_i (2/Q) sum_q rho_q(y_i - yhat_qi) = 2 * pinball (0 when every
    quantile equals the truth); ``quantile_forecasts`` (n, Q) for the Q levels ``quantiles``."""
    return 2.0 * pinball(y, quantile_forecasts, quantiles)


def quantile_columns(frame: pd.DataFrame, point: str = "y_hat") -> dict[float, str]:
    """{q: column} from columns named ``{point}_q{q}``; the point column counts as q = 0.5 (the median)
    when there are quantile columns and none of them is 0.5."""
    found = {}
    for column in frame.columns:
        match = re.fullmatch(re.escape(point) + r"_q([0-9.]+)", str(column))
        if match:
            found[float(match.group(1))] = column
    if found and 0.5 not in found and point in frame.columns:
        found[0.5] = point
    return dict(sorted(found.items()))


def evaluate(df: pd.DataFrame, train_df: pd.DataFrame | None = None, season: int = 1, point: str = "y_hat",
             target: str = "y", id_column: str = "unique_id") -> pd.DataFrame:
    """Errors of a long forecast frame (``predict`` joined with the truth, or ``cross_validation``'s
    result): one row per series (in order of appearance) and a last row ``overall``.

    Columns ``mse, mae, smape``, ``pinball`` and ``crps`` when the frame has quantile columns, ``mase`` when
    ``train_df`` (long, ``unique_id, ds, y``) gives the in-sample history: its rows up to the series'
    first ``cutoff`` when the frame has a cutoff column, else all of its rows for that series. Those rows are
    taken in time order, whatever their order in ``train_df`` (``ds`` read as the panel reader reads it: whole
    numbers as steps, dates with changing UTC offsets as UTC); a missing ``y`` among them is left out of the
    scale (``naive_scale``), not allowed to make the series' MASE NaN."""
    for column in (id_column, target, point):
        if column not in df.columns:
            raise ValueError(f"evaluate needs column '{column}'; the frame has {list(df.columns)}")
    frame = df.dropna(subset=[target])
    levels = quantile_columns(frame, point)
    if train_df is not None:
        if "ds" in train_df.columns:
            train_df = train_df.assign(ds=_times(train_df["ds"], "train_df").array).sort_values("ds", kind="stable")
        ids = train_df[id_column].astype(str).to_numpy()
    rows = {}
    for key, group in frame.groupby(id_column, sort=False):
        y, y_hat = group[target].to_numpy(float), group[point].to_numpy(float)
        row = {"mse": mse(y, y_hat), "mae": mae(y, y_hat), "smape": smape(y, y_hat)}
        if levels:
            row["pinball"] = pinball(y, group[list(levels.values())].to_numpy(float), list(levels))
            row["crps"] = 2.0 * row["pinball"]  # crps(): the quantile form, twice the mean pinball loss
        if train_df is not None:
            history = train_df[ids == str(key)]
            if "cutoff" in group.columns and "ds" in history.columns:
                cutoff = _times(group["cutoff"], "the frame").min()
                try:
                    history = history[history["ds"] <= cutoff]
                except TypeError:  # one with a time zone, the other without
                    raise ConfigError(f"the cutoffs (e.g. {cutoff}) and train_df's ds (e.g. {history['ds'].iloc[0]}) "
                                      "must both have a time zone or both have none") from None
            row["mase"] = mase(y, y_hat, history[target].to_numpy(float), season)
        rows[key] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    y, y_hat = frame[target].to_numpy(float), frame[point].to_numpy(float)
    overall = {"mse": mse(y, y_hat), "mae": mae(y, y_hat), "smape": smape(y, y_hat)}
    if levels:
        overall["pinball"] = pinball(y, frame[list(levels.values())].to_numpy(float), list(levels))
        overall["crps"] = 2.0 * overall["pinball"]
    if train_df is not None:
        overall["mase"] = float(table["mase"].mean())
    table.loc[OVERALL] = pd.Series(overall)
    table.index.name = id_column
    return table


def _times(values: pd.Series, name: str) -> pd.Series:
    """``values`` (a ds or cutoff column) as the panel reader reads a ds: whole numbers as integer steps, else
    dates (one-line errors naming the first value that is not one)."""
    steps = integer_steps(values, name)
    return steps if steps is not None else parse_dates(values, name)


__all__ = ["mse", "mae", "smape", "mase", "naive_scale", "pinball", "crps", "quantile_columns", "evaluate", "OVERALL"]
