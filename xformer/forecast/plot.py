"""One panel per series: history, truth, forecast and the widest quantile band."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ConfigError
from ..folders import FIGURE_SUFFIXES, output_file, save_figure
from ..registry import is_whole_number
from .frames import DS, ID, POINT, Panel, quantile_column, read_panel


def figure_path(path: str | Path, overwrite: bool) -> Path:
    """``path`` checked before any work: a file name (not a folder) whose suffix names a figure format, and no
    existing file unless ``overwrite``."""
    return output_file(path, "path", overwrite, suffixes=FIGURE_SUFFIXES, replace="pass overwrite=True")


def series_ids(series) -> list[str]:
    """``series`` (one id, or a list of them, of any type) as the ids a Panel holds: text, as read_panel reads
    ``unique_id`` (``astype(str)``) and a wide table's column names."""
    many = isinstance(series, (list, tuple, set, pd.Index, pd.Series, np.ndarray))
    return [str(key) for key in (series if many else [series])]


def read_truth(forecaster, truth) -> Panel:
    """The series of ``truth`` (their later values: unique_id, ds and y, or a wide table) read as the forecaster
    reads data, but without its covariate columns: the truth drawn is y, whatever truth holds besides."""
    if isinstance(truth, Panel):
        return truth
    cfg = forecaster.config
    return read_panel(truth, cfg.date_column, forecaster.columns or cfg.columns, cfg.missing,
                      freq=cfg.freq if forecaster.freq is None else forecaster.freq,
                      aligned=forecaster.columns is not None)


def plot_forecast(forecaster, df, path: str | Path, truth=None, history: int | None = None,
                  series=None, futr_df=None, static_df=None) -> Path:
    from matplotlib.figure import Figure  # not pyplot: the caller's backend and open figures stay as they are

    if history is not None and (not is_whole_number(history) or history < 1):  # -5 would drop the first 5 steps
        raise ConfigError(f"history={history!r}: give the number of past steps to draw (a whole number >= 1), or "
                          "leave it out for 2 * input_len")
    panel = forecaster.with_future(forecaster.read(df), futr_df)
    forecast = forecaster.predict_panel(panel, static_df=static_df)
    later = read_truth(forecaster, truth) if truth is not None else None
    if series is None:
        keys = list(dict.fromkeys(forecast[ID]))
        keys = keys if panel.wide_date_column else keys[:4]
    else:
        keys = series_ids(series)
        unknown = [k for k in keys if k not in set(forecast[ID])]
        if unknown:
            known = list(dict.fromkeys(forecast[ID]))[:10]
            raise ConfigError(f"no forecast for series {unknown}; choose among {known}")
    qs = sorted(forecaster.config.quantiles or [])
    columns = {q: POINT if q == 0.5 else quantile_column(q) for q in qs}
    fig = Figure(figsize=(10, 2.2 * len(keys)))
    axes = fig.subplots(len(keys), 1, sharex=bool(panel.wide_date_column), squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        past = panel.series[key].iloc[-(history or 2 * forecaster.config.input_len):]
        f = forecast[forecast[ID] == key]
        ax.plot(past.index, past.to_numpy(), color="0.4", lw=1, label="history")
        if later is not None and key in later.series:
            true = later.series[key].loc[f[DS].iloc[0]:f[DS].iloc[-1]]
            ax.plot(true.index, true.to_numpy(), color="black", lw=1, label="truth")
        ax.plot(f[DS], f[POINT], color="tab:blue", lw=1.5, label="forecast")
        if len(qs) >= 2:
            # arrays, not Series: matplotlib 3.7 fails on these Series in its isfinite check
            ax.fill_between(f[DS].to_numpy(), f[columns[qs[0]]].to_numpy(), f[columns[qs[-1]]].to_numpy(),
                            color="tab:blue", alpha=0.2, label=f"q{qs[0]:g}-q{qs[-1]:g}")
        ax.set_ylabel(key)
    axes[0, 0].legend(loc="upper left", fontsize="small")
    fig.autofmt_xdate()
    fig.tight_layout()
    return save_figure(fig, path)
