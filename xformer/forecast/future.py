"""Future-known covariate values given apart from the data (``futr_df``; ``xformer forecast --futr FILE.csv``),
added to a Panel's covariates after each series' forecast origin."""
from __future__ import annotations

import pandas as pd

from ..config import ConfigError
from .frames import Panel, align_ds, check_observed_end, read_covariates


def with_future(cfg, panel: Panel, futr_df, origins: dict | None = None, name: str = "futr_df") -> Panel:
    """``panel`` with the ``futr_exog`` columns of ``futr_df`` (unique_id, ds and those columns) added after each
    series' rows. ``panel`` is the data as given (before ``--at`` cuts it): a series whose last rows have no y but
    hold covariates is refused here (``check_observed_end``).

    Without ``origins`` (predict, plot) each series ends at its last row, and futr_df's rows at dates the data
    holds are left out: those dates are the series' history, whose own values stand. ``origins`` ({id: the last
    date of its history}, ``xformer forecast --at``) marks the data's rows after each origin as the forecast's
    future: futr_df's values there replace the data's own (the scenario given is the one forecast), as
    ``predict(the data cut at the origins, futr_df=...)`` reads them; the data's values stand at dates futr_df
    lacks. ``name``: futr_df's name in the messages ("--futr FILE" for the commands')."""
    check_observed_end(panel)
    if futr_df is None:
        return panel
    if not cfg.futr_exog:
        raise ConfigError("futr_df holds future-known covariates, but the forecaster has none; set futr_exog")
    future = read_covariates(futr_df, cfg.futr_exog, cfg.missing, name)
    if not set(future) & set(panel.series):  # e.g. ids 1, 2 beside the data's "a", "b": every series would lack them
        raise ConfigError(f"{name}'s unique_id values {list(future)[:5]} name none of the series of the data "
                          f"({panel.ids[:5]}); give {name} the data's ids")
    covariates = dict(panel.covariates or {})
    for key, frame in future.items():
        if key not in covariates or origins is not None and key not in origins:
            continue
        known = covariates[key]
        frame = frame.set_axis(align_ds(frame.index, known.index, name))[cfg.futr_exog]
        if origins is None:
            later = frame[~frame.index.isin(known.index)]
            covariates[key] = pd.concat([known, later.reindex(columns=known.columns)]).sort_index()
        else:
            later = frame[frame.index > origins[key]]
            merged = known.reindex(known.index.union(later.index))
            merged.loc[later.index, cfg.futr_exog] = later.to_numpy()
            covariates[key] = merged
    return Panel(panel.series, panel.wide_date_column, covariates)


__all__ = ["with_future"]
