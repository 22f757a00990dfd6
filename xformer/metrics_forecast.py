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
per-series values for MASE (each series has its own scale; one undefined is left out, named in a warning). MASE's
x_1..x_T are a series' rows of train_df in time order, taken as consecutive steps: a timestamp without a row
must be a row with a missing y (``xformer.forecast.evaluate`` puts a frame with absent timestamps on its time
grid first, as the panel reader does). No model, no data loading: numbers in, numbers out.
"""
from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

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
    with np.errstate(invalid="ignore", divide="ignore"):  # a NaN stays NaN, as in mse and mae; only 0/0 counts 0
        ratio = np.where(denominator == 0, 0.0, np.abs(y - y_hat) / denominator)
    return float(200 * np.mean(ratio))


def naive_scale(insample, season: int = 1) -> float:
    """1/(T-m) sum_{t>m} |x_t - x_{t-m}|: the in-sample MAE of the seasonal naive forecast. A difference that
    involves a missing value (NaN) is left out, the others keep their places in time (dropping the NaN values
    first would pair values m + 1 steps apart); NaN when no difference is left (T <= m)."""
    check_season(season)
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


# q as frames.quantile_column writes it (format "g"): 0.1, 0.99999, and 1e-05 or 1.5e-07 for the smallest levels
LEVEL = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def check_season(season) -> None:
    if isinstance(season, (bool, np.bool_)) or not isinstance(season, (int, np.integer)) or season < 1:
        raise ConfigError(f"season must be a whole number >= 1 (the seasonal naive period in steps, e.g. 24 for "
                          f"hourly data with a daily cycle), got {season!r}")


def quantile_columns(frame: pd.DataFrame, point: str = "y_hat") -> dict[float, str]:
    """{q: column} from columns named ``{point}_q{q}`` (every name ``frames.quantile_column`` writes, exponent
    notation included); the point column counts as q = 0.5 (the median) when there are quantile columns and
    none of them is 0.5."""
    found = {}
    for column in frame.columns:
        match = re.fullmatch(re.escape(point) + "_q" + LEVEL, str(column))
        if match:
            found[float(match.group(1))] = column
    if found and 0.5 not in found and point in frame.columns:
        found[0.5] = point
    return dict(sorted(found.items()))


def evaluate(df: pd.DataFrame, train_df: pd.DataFrame | None = None, season: int = 1, point: str = "y_hat",
             target: str = "y", id_column: str = "unique_id") -> pd.DataFrame:
    """Errors of a long forecast frame (``predict`` joined with the truth, or ``cross_validation``'s
    result): one row per series (in order of appearance) and a last row ``overall``; a series of that id is
    refused in one line (its row and the row of all series would be one).

    Columns ``mse, mae, smape``, ``pinball`` and ``crps`` when the frame has quantile columns, ``mase`` when
    ``train_df`` (long, ``unique_id, ds, y``) gives the in-sample history: its rows up to the series'
    first ``cutoff`` when the frame has a cutoff column (train_df then needs ``ds``), else all of its rows for
    that series, as utilsforecast's mase takes the training data it is given. Every series of the frame must
    have rows in ``train_df``. Those rows are taken in time order, whatever their order in ``train_df`` (``ds``
    read as the panel reader reads it: whole numbers as steps, dates with changing UTC offsets as UTC), as
    consecutive steps: x_t and x_{t-m} are rows m apart, so a timestamp of the series' grid without a row must be
    a row with ``y`` missing (as ``Panel.to_long()`` holds it); for a train_df with absent timestamps use
    ``xformer.forecast.evaluate``, which inserts them as the panel reader does. Two rows of a series at one ds
    are refused. A missing ``y`` is left out of the scale (``naive_scale``), not allowed to make the series' MASE
    NaN. ``season``: a whole number >= 1. A series whose MASE is undefined (a constant history, or none with
    two values ``season`` steps apart) is named in a warning: the overall MASE is the mean over the others.

    A missing truth (``y`` NaN: a gap of the data, as ``cross_validation`` leaves it) is an unobserved step:
    its row is left out of every metric alike; a series with no truth at all gets a row of NaN. A forecast
    (``y_hat`` or a quantile column) that is NaN or infinite, and an infinite ``y``, are refused in one line
    naming the series: such a forecast is a bug of what made it, and would otherwise make some metrics NaN."""
    for column in (id_column, target, point):
        if column not in df.columns:
            raise ConfigError(f"evaluate needs column '{column}'; the frame has {list(df.columns)}")
    check_season(season)
    levels = quantile_columns(df, point)
    forecasts = list(dict.fromkeys([point, *levels.values()]))
    ids = ids_as_text(df[id_column])
    refuse_overall_id(ids, f"e.g. df['{id_column}'] = df['{id_column}'].replace('{OVERALL}', '{OVERALL} series')")
    for column in [*forecasts, target]:
        values = _numbers(df[column], column)
        bad = np.isinf(values) if column == target else ~np.isfinite(values)
        if bad.any():
            what = "an infinite truth" if column == target else "a NaN or infinite forecast"
            raise ConfigError(f"column '{column}' holds {what} in {_count_by_series(ids[bad])}; "
                              + ("give finite values (NaN for a step without truth)" if column == target else
                                 "forecasts must be numbers: fix what produced them"))
    frame = df.dropna(subset=[target])
    if frame.empty:
        raise ConfigError(f"every '{target}' of the frame is missing, so there is no truth to score; join the "
                          "forecasts with the observed values first")
    if train_df is not None:
        train_df, train_ids = _in_sample(train_df, df, ids, target, id_column)
        histories = dict(iter(train_df.groupby(train_ids, sort=False)))  # by id, each in time order
    rows, undefined = {}, {}
    for key, group in df.groupby(id_column, sort=False):
        group = group.dropna(subset=[target])
        if group.empty:  # only unobserved steps: no error to give, but the series is not dropped unseen
            rows[key] = {}
            continue
        y, y_hat = group[target].to_numpy(float), group[point].to_numpy(float)
        row = {"mse": mse(y, y_hat), "mae": mae(y, y_hat), "smape": smape(y, y_hat)}
        if levels:
            row["pinball"] = pinball(y, group[list(levels.values())].to_numpy(float), list(levels))
            row["crps"] = 2.0 * row["pinball"]  # crps(): the quantile form, twice the mean pinball loss
        if train_df is not None:
            cutoff = _times(group["cutoff"], "the frame").min() if "cutoff" in group.columns else None
            insample = _insample_values(histories[str(key)], cutoff, target)
            scale = naive_scale(insample, season)
            row["mase"] = row["mae"] / scale if scale > 0 else float("nan")
            if not scale > 0:
                undefined[str(key)] = "constant" if scale == 0 else "short"
        rows[key] = row
    table = pd.DataFrame.from_dict(rows, orient="index").reindex(list(rows))  # pandas 2 drops the rows that are {}
    y, y_hat = frame[target].to_numpy(float), frame[point].to_numpy(float)
    overall = {"mse": mse(y, y_hat), "mae": mae(y, y_hat), "smape": smape(y, y_hat)}
    if levels:
        overall["pinball"] = pinball(y, frame[list(levels.values())].to_numpy(float), list(levels))
        overall["crps"] = 2.0 * overall["pinball"]
    if train_df is not None:
        overall["mase"] = float(table["mase"].mean())
        _report_undefined_mase(undefined, int(table["mase"].notna().sum()), len(table), season)
    table.loc[OVERALL] = pd.Series(overall)
    table.index.name = id_column
    return table


def overall_json(table: pd.DataFrame) -> dict:
    """The ``overall`` row of ``evaluate``'s table for a JSON line: each metric to 6 decimals, ``None`` (null) where
    it is undefined (a MASE of constant histories only), since NaN is no JSON; and ``mase_series``, the series the
    overall MASE averages."""
    row = {k: round(float(v), 6) if np.isfinite(v) else None for k, v in table.loc[OVERALL].items()}
    if "mase" in table.columns:
        row["mase_series"] = int(table.drop(OVERALL)["mase"].notna().sum())
    return row


def refuse_overall_id(ids, fix: str) -> None:
    """Refuse in one line, ending in ``fix``, ids (text) holding ``OVERALL``: the label of evaluate's row of all
    series, which that series' own row would share (one overwriting the other)."""
    if (np.asarray(ids, dtype=object) == OVERALL).any():
        raise ConfigError(f"series '{OVERALL}' has the id of evaluate's row of all series, '{OVERALL}', so their rows "
                          f"would be one; give that series another unique_id ({fix})")


def _in_sample(train_df: pd.DataFrame, df: pd.DataFrame, ids: pd.Series, target: str, id_column: str):
    """``train_df`` in time order and its ids as text, after checking it can give every series of ``df`` its
    MASE scale: the id and target columns, rows of each series, and a ``ds`` to cut at the cutoffs."""
    for column in (id_column, target):
        if column not in train_df.columns:
            raise ConfigError(f"train_df needs column '{column}' (the in-sample history of MASE); it has "
                              f"{list(train_df.columns)}")
    if "cutoff" in df.columns and "ds" not in train_df.columns:
        raise ConfigError("the frame has cutoffs but train_df has no 'ds' column to cut its rows at them (MASE's "
                          "history is each series' rows up to its first cutoff); give train_df with ds, or drop the "
                          "frame's cutoff column to take all of train_df's rows")
    if "ds" in train_df.columns:
        train_df = train_df.assign(ds=_times(train_df["ds"], "train_df").array).sort_values("ds", kind="stable")
    train_ids = ids_as_text(train_df[id_column], "train_df")
    absent = ids[~ids.isin(pd.unique(train_ids.to_numpy()))]  # not set(train_ids): a Python loop over every row
    if len(absent):
        raise ConfigError(f"train_df has no rows of {_count_by_series(absent, 'series')}, so their MASE has no "
                          "scale; give train_df with every series' history, or leave train_df out (no MASE)")
    if "ds" in train_df.columns:  # two rows at one time would be two steps of the naive forecast
        keys = pd.DataFrame({"id": train_ids.to_numpy(), "ds": train_df["ds"].array})
        twice = keys.duplicated(keep=False).to_numpy()
        if twice.any():
            key, at = keys.iloc[int(np.argmax(twice))]
            n = int(((keys["id"] == key) & (keys["ds"] == at)).sum())
            raise ConfigError(f"train_df has {n} rows of series '{key}' at {at}; keep one row per (unique_id, ds)")
    return train_df, train_ids.to_numpy()


def _insample_values(history: pd.DataFrame, cutoff, target: str) -> np.ndarray:
    """The in-sample values of one series (its rows of train_df, in time order) up to ``cutoff`` (all of them
    when None)."""
    if cutoff is not None:
        try:
            history = history[history["ds"] <= cutoff]
        except TypeError:  # one with a time zone, the other without
            raise ConfigError(f"the cutoffs (e.g. {cutoff}) and train_df's ds (e.g. {history['ds'].iloc[0]}) must "
                              "both have a time zone or both have none") from None
    return history[target].to_numpy(float)


def _report_undefined_mase(undefined: dict[str, str], averaged: int, total: int, season: int) -> None:
    """Warn naming the series whose MASE is undefined, so left out of the overall MASE, and why."""
    if not undefined:
        return
    why = {"constant": "a constant history: its seasonal naive forecast is exact, scale 0",
           "short": f"no two observed values season={season} steps apart in its history"}
    named = [f"'{k}' ({why[r]})" for k, r in list(undefined.items())[:5]]
    more = f" and {len(undefined) - 5} more" if len(undefined) > 5 else ""
    frame, level = sys._getframe(0), 1  # point the warning at the user's line, outside xformer (its wrapper too)
    while frame is not None and frame.f_code.co_filename.startswith(str(Path(__file__).parent)):
        frame, level = frame.f_back, level + 1
    warnings.warn(f"the overall MASE averages {averaged} of {total} series: MASE is undefined for "
                  f"{len(undefined)} series, left out: {', '.join(named)}{more}", stacklevel=level)


def ids_as_text(ids: pd.Series, what: str = "the frame") -> pd.Series:
    """``ids`` (a unique_id column) as text, as the panel reader and ``evaluate`` key the series. Ids of mixed
    types that the text would merge (1 and "1", 1.0 and "1.0"), or that pandas takes as one id and the text
    splits (1 and 1.0), are refused in one line: the series read would not be the frame's own."""
    texts = ids.astype(str)
    if ids.dtype != object and not isinstance(ids.dtype, pd.CategoricalDtype):
        return texts  # one type: distinct values, distinct texts
    codes, uniques = pd.factorize(ids.astype(object))
    by_text: dict = {}
    for b in uniques:
        a = by_text.setdefault(str(b), b)
        if a is not b:  # two ids, one text
            problem = f"which are read as one id {str(a)!r} (ids are read as text)"
            break
    else:
        split = (codes >= 0) & (np.array([str(u) for u in uniques] + [""], dtype=object)[codes] != texts.to_numpy())
        if not split.any():
            return texts
        a, b = uniques[codes[int(np.argmax(split))]], ids.iloc[int(np.argmax(split))]
        problem = f"one id to pandas but two as text, {str(a)!r} and {str(b)!r} (ids are read as text)"
    raise ConfigError(f"unique_id of {what} holds {a!r} ({type(a).__name__}) and {b!r} ({type(b).__name__}), "
                      f"{problem}; give unique_id one type (all text or all numbers), one id per series")


def _numbers(values: pd.Series, column: str) -> np.ndarray:
    try:
        return values.to_numpy(float)
    except (TypeError, ValueError):
        raise ConfigError(f"column '{column}' holds values that are not numbers (e.g. "
                          f"{next(v for v in values if not _is_number(v))!r}); give numbers") from None


def _is_number(value) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


def _count_by_series(ids: pd.Series, unit: str = "rows") -> str:
    """"3 rows (series 'a': 2, 'b': 1)" or "2 series ('a', 'b')": ``ids`` (one per offending row) counted per
    series, the first five named."""
    counts = ids.groupby(ids.to_numpy(), sort=False).size()
    more = f" and {len(counts) - 5} more" if len(counts) > 5 else ""
    if unit == "series":
        return f"{len(counts)} series ({', '.join(repr(str(k)) for k in list(counts.index)[:5])}{more})"
    shown = ", ".join(f"'{k}': {n}" for k, n in list(counts.items())[:5])
    return f"{len(ids)} row{'s' if len(ids) != 1 else ''} (series {shown}{more})"


def _times(values: pd.Series, name: str) -> pd.Series:
    """``values`` (a ds or cutoff column) as the panel reader reads a ds: whole numbers as integer steps, else
    dates (one-line errors naming the first value that is not one)."""
    steps = integer_steps(values, name)
    return steps if steps is not None else parse_dates(values, name)


__all__ = ["mse", "mae", "smape", "mase", "naive_scale", "pinball", "crps", "quantile_columns", "evaluate", "OVERALL",
           "ids_as_text", "overall_json", "refuse_overall_id"]
