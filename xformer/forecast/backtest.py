"""Rolling-origin backtest, as neuralforecast's ``cross_validation``.

For a series of n rows, window w = 0 .. n_windows-1 (oldest first) forecasts rows
[s_w, s_w + h) with s_w = n - h - (n_windows - 1 - w) * step; its cutoff is the timestamp of row
s_w - 1, and the model reads only rows before s_w. With ``fit=True`` (default) a fresh model is
trained first on each series' rows before its first window (s_0), so no window's future is ever
seen, neither by the forecast nor by the training or the scaling statistics. Those models are trained on a
fresh forecaster of the same config (and the static covariates it remembers): the forecaster backtested is
never changed, its model, ``fit_report`` and the series ``predict()`` continues stay those of its last fit.
``refit=True`` (neuralforecast's ``refit``) trains a fresh one before every window instead, on the rows before s_w,
so later windows learn from the periods the earlier ones forecast; ``refit=k`` (a whole number) trains one
before windows 0, k, 2k, ..., each forecasting its own window and the k - 1 after it (``True`` is k = 1):
k times fewer trainings for a long backtest. With ``fit=False`` the fitted
model is used as it is (it must not have been trained on the backtest period); a forecaster of an ``xformer
train`` run (``from_run``) only so, since fit cannot retrain the run's model, and an ensemble too (fit would
train one model of its config in place of its members). Each window's history is filled
(``missing``) from its own rows only, so a gap just before a cutoff is never filled from the window's future;
``y`` is the data as given (NaN where it has no value: ``evaluate`` skips those rows).
``static_df`` (static covariates, as in ``fit``) defaults to the one the forecaster remembers from fit.

The result is long: ``unique_id, ds, cutoff, y`` (the truth), ``y_hat`` and the quantile columns,
ordered by series, cutoff and date; :func:`xformer.metrics_forecast.evaluate` scores it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import ConfigError
from .frames import DS, ID, Y, Panel, check_observed_end, report_short


def cross_validation(forecaster, df, n_windows: int = 1, step: int | None = None, h: int | None = None,
                     fit: bool = True, val_size: int = 0, early_stopping: int | None = None, static_df=None,
                     refit: bool | int = False, say=None) -> pd.DataFrame:
    """``say``: how the messages spell an argument, ``python_words`` (default) or ``command_words``."""
    say = say or python_words
    h = forecaster._check_h(h)
    every = refit_every(refit)
    step = h if step is None else step
    for name, value in (("n_windows", n_windows), ("step", step)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
    if every and not fit:
        windows = "every window" if every == 1 else f"windows 0, {every}, {2 * every}, ..."
        raise ConfigError(f"refit={refit!r} trains a model before {windows}, so it needs fit=True")
    if fit:
        forecaster.check_fittable()
        check_not_ensemble(forecaster)
    elif forecaster.model is None:
        raise ConfigError("cross_validation(fit=False) needs a fitted forecaster; call fit first or pass fit=True")
    cfg = forecaster.config
    if cfg.stat_exog and static_df is None and forecaster.static is None:  # fit's advice would name fit's argument
        raise ConfigError(f"stat_exog {cfg.stat_exog} needs static_df (unique_id and those columns, one row per "
                          "series): cross_validation(df, static_df=...)")
    if cfg.futr_exog and h < cfg.horizon:  # the last window would need covariate rows after the frame's end
        raise ConfigError(f"with future-known covariates ({cfg.futr_exog}) h must equal the horizon {cfg.horizon}: "
                          f"the model reads them up to the horizon's end, after the frame's last row for the last "
                          f"window; leave h out (xformer backtest: no --h, or --h {cfg.horizon})")
    panel = forecaster.read(df, fitting=fit)  # a backtest that fits reads its data as a fresh fit would
    check_observed_end(panel)  # the data as given: the windows' own cuts may end in a gap
    span = h + (n_windows - 1) * step  # rows from the first window's start to the end of the series
    need = cfg.input_len + span + ((cfg.horizon + val_size) if fit else 0)
    short = [k for k, s in panel.series.items() if len(s) < need]
    if len(short) == len(panel.series):
        longest = max(len(s) for s in panel.series.values())
        most = (longest - (need - span) - h) // step + 1  # the windows the longest series holds
        named = f" (xformer backtest: --windows {most})" if say is python_words else ""
        fix = f"give {say('n_windows', most)} or fewer{named}, a smaller {say('step')}, or longer series" \
            if most >= 1 else f"no window fits: give longer series or a shorter {say('h')}"
        raise ConfigError(f"no series is long enough for {say('n_windows', n_windows)} window(s) of {say('h', h)} "
                          f"steps, {say('step', step)} apart: each "
                          f"needs {need} rows ({'training, ' if fit else ''}input_len={cfg.input_len} and the "
                          f"windows), the longest has {longest}; {fix}")
    report_short(short, need, "the backtest")
    keep = [k for k in panel.ids if k not in short]
    panel = Panel({k: panel.series[k] for k in keep}, panel.wide_date_column, panel.covariates)
    first = {k: len(s) - span for k, s in panel.series.items()}
    given = forecaster
    if fit:  # the windows' models are trained on a fresh forecaster of the same config: the one given stays as it is
        trainee = type(forecaster)(forecaster.config)
        trainee.static = forecaster.static  # the static_df remembered from fit, the default of static_df
        forecaster = trainee
    parts = []
    for w in range(n_windows):
        starts = {k: first[k] + w * step for k in keep}
        if fit and (w == 0 or (every and w % every == 0)):
            forecaster.fit_panel(panel.truncated(starts), val_size, early_stopping, static_df)
            static_df = None  # fit remembered it
        forecast = forecaster.predict_panel(panel.truncated(starts), h, static_df)
        ds, cutoff, y = [], [], []
        for key in forecast[ID].drop_duplicates():
            s, start = panel.series[key], starts[key]
            ds.append(s.index[start:start + h])
            cutoff.append(np.repeat(s.index[start - 1], h))
            y.append(s.to_numpy()[start:start + h])
        forecast[DS] = np.concatenate(ds)
        forecast.insert(2, "cutoff", np.concatenate(cutoff))
        forecast.insert(3, Y, np.concatenate(y))
        forecast["window"] = w
        parts.append(forecast)
    result = pd.concat(parts, ignore_index=True)
    order = {k: i for i, k in enumerate(keep)}
    result = result.sort_values([ID, "window", DS], key=lambda c: c.map(order) if c.name == ID else c,
                                kind="stable")
    result = result.drop(columns="window").reset_index(drop=True)
    if not fit:  # the model as it is: warn when its windows forecast steps it was fitted on
        from .folder import warn_trained_windows

        warn_trained_windows(given, result)
    return result


def python_words(name: str, value=None) -> str:
    """An argument of ``cross_validation`` as its messages spell it for Python: ``h=4``, or its bare name."""
    return name if value is None else f"{name}={value}"


def command_words(name: str, value=None) -> str:
    """The same argument as ``xformer backtest``'s option: ``--h 4``, ``--windows 6`` (n_windows)."""
    option = "--windows" if name == "n_windows" else f"--{name}"
    return option if value is None else f"{option} {value}"


def check_not_ensemble(forecaster) -> None:
    """An ensemble keeps its members' models, not their configs: a backtest that fits would train one model of
    the ensemble's config in their place and score that instead."""
    from ..ensemble import Ensemble

    if isinstance(forecaster.model, Ensemble):
        raise ConfigError(f"this forecaster is an ensemble of {len(forecaster.model.members)} fitted models, which "
                          "cross_validation(fit=True) cannot retrain: pass fit=False to backtest the ensemble as it "
                          "is (on data after its training period)")


def refit_every(refit) -> int:
    """How many windows one model forecasts in a backtest that refits: 0 for ``refit=False`` (one model for
    all), 1 for ``True`` (a model per window), k for a whole number k >= 1."""
    if isinstance(refit, (bool, np.bool_)):
        return int(refit)
    if isinstance(refit, (int, np.integer)) and refit >= 1:
        return int(refit)
    raise ConfigError(f"refit must be True, False or a whole number of windows k >= 1 (a fresh model every k "
                      f"windows), got {refit!r}")
