"""Future-known covariate values given apart from the data (``futr_df``; ``xformer forecast --futr FILE.csv``),
added to a Panel's covariates after each series' forecast origin; the rows such a frame needs
(neuralforecast's ``make_future_dataframe`` / ``get_missing_future``)."""
from __future__ import annotations

import pandas as pd

from ..config import ConfigError
from .frames import Panel, align_ds, check_observed_end, future_dates, read_covariates


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


def future_frame(panel: Panel, freq, horizon: int) -> pd.DataFrame:
    """``unique_id, ds`` of the ``horizon`` steps after each series' last row: the rows a ``futr_df`` fills."""
    rows = [(key, ds) for key in panel.ids for ds in future_dates(panel.series[key].index[-1], freq, horizon)]
    return pd.DataFrame(rows, columns=["unique_id", "ds"])


def missing_future(needed: pd.DataFrame, futr_df) -> pd.DataFrame:
    """The rows of ``needed`` (``future_frame``) that ``futr_df`` lacks, matched on unique_id (as text, as series ids
    are read) and ds."""
    if not isinstance(futr_df, pd.DataFrame) or not {"unique_id", "ds"} <= set(futr_df.columns):
        raise ConfigError("futr_df must be a pandas DataFrame with unique_id and ds columns (and the futr_exog ones)")
    given = futr_df[["unique_id", "ds"]].astype({"unique_id": str})
    given["ds"] = align_ds(pd.Index(given["ds"]), pd.Index(needed["ds"]), "futr_df")
    merged = needed.merge(given.drop_duplicates(), how="left", on=["unique_id", "ds"], indicator=True)
    return merged.loc[merged["_merge"] == "left_only", ["unique_id", "ds"]].reset_index(drop=True)


__all__ = ["with_future", "future_frame", "missing_future"]
