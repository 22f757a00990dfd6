"""Audit 20 (forecasting): behaviour a mutation audit found no test pinned.

The overall MSE and MAE pool every scored value, quantile columns are named by their sorted levels whatever
the order the levels were given in, a series not seen in fit is scaled by its whole history, a backtest that
fits leaves out (naming it) a series too short to train on before its first window, and the static
covariates' statistics are those of the training series' rows only.
"""
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from xformer.batch import INPUTS
from xformer.forecast import Forecaster
from xformer.metrics_forecast import evaluate

TINY = dict(input_len=24, horizon=6, patch_len=8, stride=8, d_model=8, n_layers=1, n_heads=2, d_ff=16, epochs=1,
            batch_size=16, device="cpu")


def frame(lengths: dict[str, int], trend: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """A long frame: series ``id`` of ``n`` hourly rows, a noisy daily-ish wave plus ``trend`` per step."""
    rng = np.random.default_rng(seed)
    parts = []
    for k, (key, n) in enumerate(lengths.items()):
        t = np.arange(n)
        y = np.sin(2 * np.pi * t / 12 + k) + trend * t + 0.1 * rng.standard_normal(n)
        parts.append(pd.DataFrame({"unique_id": key, "ds": pd.date_range("2022-01-01", periods=n, freq="h"),
                                   "y": y}))
    return pd.concat(parts, ignore_index=True)


def test_overall_mse_and_mae_pool_every_value_not_the_series_means():
    """'overall' pools the values of every series (the module docstring): series a, one scored row off by 2,
    and b, three rows off by 1, give MSE (4 + 3) / 4 = 1.75 and MAE (2 + 3) / 4 = 1.25 (the mean of the series'
    values would be 2.5 and 1.5). A row without truth (y NaN) is left out of both."""
    df = pd.DataFrame({"unique_id": ["a", "a", "b", "b", "b"], "y": [0.0, np.nan, 0.0, 0.0, 0.0],
                       "y_hat": [2.0, 9.0, 1.0, 1.0, 1.0]})
    table = evaluate(df)
    assert table.loc["a", "mse"] == 4.0 and table.loc["b", "mse"] == 1.0
    assert table.loc["overall", "mse"] == pytest.approx(1.75)
    assert table.loc["overall", "mae"] == pytest.approx(1.25)


def test_quantile_columns_are_named_by_the_sorted_levels_whatever_their_order():
    """quantiles=[0.9, 0.5, 0.1] is the model of [0.1, 0.5, 0.9] (the head sorts the levels, and its outputs
    are sorted): y_hat_q0.1 is the lowest forecast and y_hat_q0.9 the highest, and the frame equals, column
    for column, that of the same fit with the levels in order."""
    df = frame({"a": 60, "b": 60})
    given = Forecaster(**TINY, quantiles=[0.9, 0.5, 0.1]).fit(df).predict(df)
    ordered = Forecaster(**TINY, quantiles=[0.1, 0.5, 0.9]).fit(df).predict(df)
    assert list(given.columns) == ["unique_id", "ds", "y_hat", "y_hat_q0.1", "y_hat_q0.9"]
    assert (given["y_hat_q0.1"] <= given["y_hat"]).all() and (given["y_hat"] <= given["y_hat_q0.9"]).all()
    assert (given["y_hat_q0.1"] < given["y_hat_q0.9"]).any()
    for column in ordered.columns:
        np.testing.assert_array_equal(given[column].to_numpy(), ordered[column].to_numpy(), err_msg=column)


def test_a_series_not_seen_in_fit_is_scaled_by_its_whole_history():
    """Without RevIN the model sees (x - mean) / scale with the series' training statistics; for a series not
    in fit they are those of its whole history (StandardScaler's: std with ddof 0), not of the last input_len
    values. A trending series b makes the two differ: its forecast is the model's output on its last 24 values
    scaled by all 60, scaled back."""
    f = Forecaster(**TINY, revin=False).fit(frame({"a": 60}))
    b = frame({"b": 60}, trend=0.5, seed=1)
    out = f.predict(b)
    assert "b" not in f.stats and list(out["unique_id"].unique()) == ["b"]
    y = b["y"].to_numpy()
    mean, scale = y.mean(), y.std()
    z = torch.as_tensor((y[-24:] - mean) / scale, dtype=torch.float32)[None, :, None]
    with torch.no_grad():
        expected = f.model({INPUTS: z})["prediction"][0, :, 0].double().numpy() * scale + mean
    np.testing.assert_allclose(out["y_hat"].to_numpy(), expected, rtol=1e-5, atol=1e-5)
    last = y[-24:]  # the statistics of the last window alone would give another forecast
    z_last = torch.as_tensor((last - last.mean()) / last.std(), dtype=torch.float32)[None, :, None]
    with torch.no_grad():
        other = f.model({INPUTS: z_last})["prediction"][0, :, 0].double().numpy() * last.std() + last.mean()
    assert np.abs(other - expected).max() > 0.1


def test_a_backtest_that_fits_leaves_out_a_series_too_short_to_train_before_its_first_window():
    """With fitting, a series needs input_len + horizon (+ val_size) rows before its first window to train on,
    and the window's h rows after them: 24 + 6 + 6 = 36 rows here. b (32 rows) has only 26 before its window,
    too few to train on: it is left out of the backtest, named in a warning, while a (100 rows) is backtested."""
    df = frame({"a": 100, "b": 32})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cv = Forecaster(**TINY).cross_validation(df, n_windows=1)
    assert set(cv["unique_id"]) == {"a"} and len(cv) == 6
    messages = [str(w.message) for w in caught]
    assert any("left out of the backtest: 'b'" in m and "shorter than 36 rows" in m for m in messages), messages


def test_static_statistics_are_those_of_the_training_series_rows_only():
    """static_df may hold rows of series not in the data (c, size 100): the mean and scale that standardise a
    static column are those of the training series' rows (a: 1, b: 3), StandardScaler's (std with ddof 0):
    mean 2, scale 1."""
    df = frame({"a": 40, "b": 40})
    static = pd.DataFrame({"unique_id": ["a", "b", "c"], "size": [1.0, 3.0, 100.0]})
    f = Forecaster(**TINY, stat_exog=["size"]).fit(df, static_df=static)
    means, scales = f.static_stats
    assert means == pytest.approx([2.0]) and scales == pytest.approx([1.0])
