"""Refusals the Forecaster makes before its work, each one line worded for the user of the estimator: a
network the config cannot build, data at another frequency than the one it forecasts at (series too short to use
left out of that check), future-known covariates short of the horizon the model reads, and what
``Forecaster.ensemble`` is given."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..config import ConfigError
from .covariates import known_covariates
from .frames import Panel, check_freq, freq_label, future_dates
from ..data.frequency import grid_rows


def check_patches(cfg) -> None:
    """PatchTST cuts the input window into patches of ``patch_len`` steps: one longer than ``input_len`` cannot
    be cut. Checked when the config is known (construction, fit), not when the network is first built."""
    if cfg.model != "patchtst" or cfg.patch_len <= cfg.input_len:
        return
    from .config import ForecasterConfig

    default = " (the default)" if cfg.patch_len == ForecasterConfig.patch_len else ""
    patch = max(1, min(16, cfg.input_len // 2))
    raise ConfigError(f"patch_len={cfg.patch_len}{default} is longer than input_len={cfg.input_len}; pass patch_len "
                      f"and stride no longer than input_len, e.g. patch_len={patch}, stride={max(1, patch // 2)}")


def refuse_all_short(panel: Panel, short: list[str], need: int, val_size: int, cfg) -> None:
    """Refuse a fit in which every series is ``short`` (fewer than ``need`` rows), naming a smaller ``val_size`` when
    one (of at least ``horizon`` steps) would leave the longest series a training window."""
    if len(short) < len(panel.series):
        return
    longest = max(len(s) for s in panel.series.values())
    most = longest - cfg.input_len - cfg.horizon
    smaller = f", a smaller val_size (at most {most})" if val_size and most >= cfg.horizon else ""
    raise ConfigError(f"no series is long enough to train on: each needs input_len + horizon"
                      f"{' + val_size' if val_size else ''} = {need} rows, the longest has {longest}; "
                      f"give longer series{smaller} or a shorter input_len / horizon")


def check_data_freq(panel: Panel, freq, given: bool, fitted=None, loaded_over=None, saved_with=None) -> None:
    """``check_freq`` for the freq a fitted (or loaded) forecaster forecasts at: data at another frequency are
    refused with the fix that applies, giving data at that frequency. ``given``: the freq was passed (to the
    Forecaster or to load) rather than inferred at fit. ``fitted``: a ds of the data of fit (None when unknown),
    so that data of the other kind of ds (dates, whole-number steps) is told apart from a forecaster loaded with a
    freq of the other kind (``Forecaster.load(path, freq=1)`` for one fitted on dates). ``loaded_over``: the freq
    of fit when load was given ``freq`` in its place; the likelier fix is then to leave that out, named first.
    ``saved_with``: the freq a folder's config holds in place of ``loaded_over`` (saved after such a load), which
    leaving freq out would give: the fix is then to load with the freq of fit."""
    label = freq_label(freq)
    if saved_with is not None:
        fit, saved = freq_label(loaded_over), freq_label(saved_with)
        loaded = f", loaded with freq {label} (--freq {label})" if saved != label else ""
        held = (f"this forecaster was fitted on freq {fit} and saved with freq {saved}{loaded}: load it with "
                f"freq={fit!r} (xformer forecast/backtest: --freq {fit}) to forecast at {fit}, or give data at freq "
                f"{label}")
    elif loaded_over is not None:
        fit = freq_label(loaded_over)
        held = (f"this forecaster was fitted on freq {fit} and loaded with freq {label} (xformer forecast/backtest: "
                f"--freq {label}): leave freq out of load (drop --freq) to forecast at {fit}, or give data at freq "
                f"{label}")
    else:
        held = f"this forecaster {'was given' if given else 'was fitted on'} freq {label}: give data at that frequency"
    check_freq(panel, freq, held=held, fitted=fitted)


def usable(panel: Panel, short: list[str]) -> Panel:
    """``panel`` without its ``short`` series (fewer rows than a window needs), whose frequency is not checked: a
    few rows with a step absent between them look like another frequency, and one such series would refuse the
    whole panel, where it is only left out. All of ``panel`` when every series is short (then refused as such)."""
    if len(short) == len(panel.series):
        return panel
    return Panel({k: s for k, s in panel.series.items() if k not in short}, panel.wide_date_column, panel.covariates)


def too_short(panel: Panel, short: list[str], need: int, freq, check) -> list[str]:
    """Of the ``short`` series of ``panel`` (fewer than ``need`` rows), those that are too short to use on their
    grid at ``freq`` too. The others would be long enough with their absent rows inserted, so ``check`` (the
    frequency checks, given a Panel) refuses them as it refuses any series, with the fix that inserts them."""
    longer = [k for k in short if grid_rows(panel.series[k].index, freq) >= need]
    if longer:
        check(Panel({k: panel.series[k] for k in longer}, panel.wide_date_column))
    return [k for k in short if k not in longer]


def check_future_horizon(cfg, panel: Panel, keys: list[str], freq, h: int) -> None:
    """The model reads future-known covariates over its whole horizon (``cfg.horizon`` steps after each series'
    end) whatever ``h`` keeps of the forecast: refuse in one line a series that lacks some of them, as
    ``window_covariates`` would fill and read them (gaps filled up to the horizon's end)."""
    if not cfg.futr_exog:
        return
    H = cfg.horizon
    for key in keys:
        ahead = future_dates(panel.series[key].index[-1], freq, H)
        cov = (panel.covariates or {}).get(key)
        known = pd.DataFrame(columns=cfg.futr_exog, dtype=float) if cov is None else \
            known_covariates(cov, ahead, ahead[-1], cfg.missing)
        absent = known.reindex(ahead)[cfg.futr_exog].isna().any(axis=1)
        if absent.any():
            off_grid(key, cov, panel.series[key].index[-1], ahead, freq)
            even = f" even when h={h}" if h < H else ""
            raise ConfigError(f"future-known covariate(s) {cfg.futr_exog} missing for series '{key}' at "
                              f"{absent.index[absent.to_numpy().argmax()]} ({int(absent.sum())} of the {H} steps "
                              f"after its end): the model reads them over its whole horizon of {H} steps{even}; "
                              f"pass futr_df (xformer forecast: --futr FILE.csv) with unique_id, ds and those "
                              f"columns for all {H} steps after each series' end")


def off_grid(key: str, cov: pd.DataFrame | None, end, ahead: pd.Index, freq) -> None:
    """Refuse in one line covariate rows dated between a series' last row ``end`` and its horizon's end that are
    not forecast steps (``ahead``): futr_df's dates off the series' grid, which leave the steps themselves
    without a value."""
    dates = pd.Index([]) if cov is None else cov.index[(cov.index > end) & (cov.index < ahead[-1])]
    off = dates[~dates.isin(ahead)]
    if len(off):
        step = int(ahead.searchsorted(off[0]))
        raise ConfigError(f"futr_df's dates for series '{key}' are off its grid of freq {freq_label(freq)}: "
                          f"{off[0]} lies between the forecast steps {ahead[step - 1] if step else end} and "
                          f"{ahead[step]}; give futr_df (xformer forecast: --futr FILE.csv) rows dated at the steps "
                          "after each series' end")


def ensemble_members(members, cls) -> tuple[list, list[str]]:
    """The forecasters ``Forecaster.ensemble`` averages and their names for its messages: each item a ``cls``
    fitted in memory, or the folder of a saved one (read with ``cls.load``)."""
    if isinstance(members, (str, Path)) or not hasattr(members, "__iter__"):
        raise ConfigError(f"Forecaster.ensemble takes a list of forecasters, not one of type {type(members).__name__}; "
                          "give "
                          "two or more, e.g. Forecaster.ensemble([f1, f2])")
    members = list(members)
    if len(members) < 2:
        raise ConfigError(f"Forecaster.ensemble averages two or more forecasters, got {len(members)}; give two or "
                          "more fitted forecasters (or their saved folders)")
    forecasters, names = [], []
    for i, member in enumerate(members):
        if isinstance(member, (str, Path)):
            forecasters.append(cls.load(member))
            names.append(str(member))
        elif isinstance(member, cls):
            forecasters.append(member)
            names.append(f"forecaster {i}")
        else:
            raise ConfigError(f"item {i} of Forecaster.ensemble is of type {type(member).__name__}; give fitted "
                              "Forecasters or the folders they were saved in")
    return forecasters, names


__all__ = ["check_patches", "refuse_all_short", "check_data_freq", "usable", "too_short", "check_future_horizon",
           "off_grid", "ensemble_members"]
