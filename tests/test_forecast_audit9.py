"""Forecasting defects found by a neuralforecast user's audit (2026-12-02), each pinned: a frame's row order
changed the seeded model, a series ending before --at went unmentioned, quantiles without the median were
refused only at fit, neuralforecast's argument names got no hint, a wide result repeated the median, and four
messages named what was not there."""
import warnings

import numpy as np
import pandas as pd
import pytest

from xformer.cli import main
from xformer.config import ConfigError
from xformer.data.series import long_to_wide
from xformer.forecast import Forecaster

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

TINY = dict(input_len=24, horizon=6, patch_len=8, stride=4, d_model=8, n_layers=1, n_heads=2, epochs=1,
            batch_size=16, device="cpu", seed=0)


def series(uid, n: int, k: int, start="2022-01-01") -> pd.DataFrame:
    t = np.arange(n)
    y = (k + 1) * np.sin(2 * np.pi * t / 12 + k) + 5 * k + 0.1 * np.random.default_rng(k).standard_normal(n)
    return pd.DataFrame({"unique_id": uid, "ds": pd.date_range(start, periods=n, freq="h"), "y": y})


def test_the_order_of_a_frames_rows_never_changes_the_seeded_model_and_series_come_sorted_by_id():
    df = pd.concat([series(10, 80, 0), series(2, 90, 1), series(33, 70, 2)], ignore_index=True)
    first = Forecaster(**TINY).fit(df).predict()
    shuffled = df.sample(frac=1.0, random_state=0)  # the series first appear in another order, rows shuffled
    again = Forecaster(**TINY).fit(shuffled).predict()
    pd.testing.assert_frame_equal(first, again)
    assert list(dict.fromkeys(first["unique_id"])) == ["2", "10", "33"]  # numbers by value, as neuralforecast
    text = df.assign(unique_id=df["unique_id"].map({10: "b", 2: "c", 33: "a"}))
    assert list(dict.fromkeys(Forecaster(**TINY, max_steps=1).fit(text).predict()["unique_id"])) == \
        ["a", "b", "c"]
    aligned = pd.concat([series(u, 30, k) for k, u in enumerate(["z", "a", "m"])], ignore_index=True)
    assert list(long_to_wide(aligned).columns) == ["ds", "a", "m", "z"]  # xformer train's channels alike


def test_forecast_at_after_a_series_end_names_that_series(tmp_path, capsys):
    df = pd.concat([series("a", 100, 0), series("b", 60, 1)], ignore_index=True)
    data = tmp_path / "long.csv"
    df.to_csv(data, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = Forecaster(**TINY, max_steps=2).fit(df).save(tmp_path / "run")
    at = str(df["ds"].iloc[80])  # after b's last row (row 60), inside a
    capsys.readouterr()
    assert main(["forecast", str(run), "--data", str(data), "--at", at, "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert ("xformer: warning: 1 series ends before --at, forecast after its own last row with no later rows to "
            "score: b") in err
    assert '"mase_series": 1' in err and out.count("\nb,") == 6  # b is forecast, from its own end, and not scored


def test_quantiles_without_the_median_are_refused_when_the_forecaster_is_made():
    with pytest.raises(ConfigError, match=r"^quantiles=\[0.1, 0.9\]: give levels in \(0, 1\) that include 0.5, the "
                                          r"median the point forecast is, e.g. quantiles=\[0.1, 0.5, 0.9\]$"):
        Forecaster(**TINY, quantiles=[0.1, 0.9])
    with pytest.raises(ConfigError, match=r"e.g. quantiles=\[0.5, 0.9\]$"):
        Forecaster(**TINY, quantiles=[0.5, 0.9, 1.0])


def test_neuralforecast_argument_names_are_answered_with_ours():
    with pytest.raises(ConfigError, match=r"unknown Forecaster option\(s\) \['h', 'input_size'\] \(neuralforecast's "
                                          r"names; here h -> horizon, input_size -> input_len\); valid: affine, "):
        Forecaster(h=12, input_size=48)
    with pytest.raises(ConfigError, match=r"here level -> quantiles \(level=\[80, 90\] is quantiles=\[0.05, 0.1, 0.5, "
                                          r"0.9, 0.95\]\)\)"):  # neuralforecast's prediction intervals
        Forecaster(level=[80, 90])
    df = series("a", 60, 0)
    fitted = Forecaster(**TINY, max_steps=1).fit(df)
    with pytest.raises(ConfigError, match=r"unknown cross_validation option\(s\) \['step_size'\] \(neuralforecast's "
                                          r"names; here step_size -> step\); valid: early_stopping, fit, h, "):
        fitted.cross_validation(df, n_windows=2, step_size=6, fit=False)
    with pytest.raises(ConfigError, match=r"\['wrong'\]; valid"):  # no hint where there is none
        fitted.cross_validation(df, wrong=1)


def test_messages_name_what_is_there(tmp_path):
    df = pd.concat([series("a", 60, 0), series("b", 60, 1)], ignore_index=True).assign(price=1.0)
    f = Forecaster(**TINY, max_steps=1, futr_exog=["price"]).fit(df)
    history, future = df[df["ds"] < df["ds"].iloc[54]], df[df["ds"] >= df["ds"].iloc[54]]
    with pytest.raises(ConfigError, match=r"^futr_df has no column 'price'; it needs unique_id, ds and the covariate "
                                          r"columns \['price'\] \(it has \['unique_id', 'ds'\]\)$"):
        f.predict(history, futr_df=future[["unique_id", "ds"]])  # no y listed: futr_df has none
    with pytest.raises(ConfigError, match=r"column 'y' holds an infinite value -inf \(row 3, series 'a'\)"):
        Forecaster(**TINY).fit(df.assign(y=np.where(np.arange(len(df)) == 2, -np.inf, df["y"])))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"^.*mine holds files but no config.yaml, so it is not the folder of a "
                                          r"forecaster, and overwrite=True replaces only that; give a new folder$"):
        f.save(mine, overwrite=True)
    assert (mine / "notes.txt").read_text() == "mine"
    short = pd.concat([df, series("c", 10, 2).assign(price=1.0)], ignore_index=True)
    with pytest.warns(UserWarning, match="1 series shorter than 30 rows left out of training: 'c'") as caught:
        Forecaster(**TINY, max_steps=1).fit(short[["unique_id", "ds", "y"]])
    assert {w.filename for w in caught} == {__file__}  # the user's line, not the decorator's in contextlib
