"""Forecaster on long-format series (issue 17): long = wide, per-series scaling, short series reported,
validation and early stopping, save/load, cross_validation without look-ahead, metrics, CLI."""
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from xformer.cli import main
from xformer.config import ConfigError
from xformer.forecast import Forecaster, evaluate
from xformer.metrics_forecast import mase, pinball, smape

TINY = dict(input_len=24, horizon=6, patch_len=8, stride=4, d_model=8, n_layers=1, n_heads=2, epochs=1,
            batch_size=32, device="cpu")


def series(n, k, start="2022-01-01", freq="h", seed=0):
    t = np.arange(n)
    rng = np.random.default_rng(seed + k)
    return (k + 1) * np.sin(2 * np.pi * t / 12 + k) + 5 * k + 0.1 * rng.standard_normal(n)


def long_frame(lengths=(120, 90, 15), starts=("2022-01-01", "2022-01-02 05:00", "2022-01-03")):
    parts = [pd.DataFrame({"unique_id": f"s{k}", "ds": pd.date_range(s, periods=n, freq="h"), "y": series(n, k)})
             for k, (n, s) in enumerate(zip(lengths, starts))]
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def df():
    return long_frame()


@pytest.fixture(scope="module")
def fitted(df):
    with pytest.warns(UserWarning, match=r"1 series shorter than 30 rows left out of training: 's2'"):
        return Forecaster(**TINY, quantiles=[0.1, 0.5, 0.9]).fit(df)


def test_long_and_wide_give_the_same_forecasts():
    wide = pd.DataFrame({"date": pd.date_range("2022-01-01", periods=100, freq="h"),
                         "a": series(100, 0), "b": series(100, 1)})
    long = wide.melt(id_vars="date", var_name="unique_id", value_name="y").rename(columns={"date": "ds"})
    from_wide = Forecaster(**TINY, quantiles=[0.1, 0.5, 0.9]).fit(wide).predict(wide)
    from_long = Forecaster(**TINY, quantiles=[0.1, 0.5, 0.9]).fit(long).predict(long)
    assert list(from_long.columns) == ["unique_id", "ds", "y_hat", "y_hat_q0.1", "y_hat_q0.9"]  # no median twice
    for name in ("a", "b"):
        one = from_long[from_long["unique_id"] == name]
        assert list(one["ds"]) == list(from_wide.index)
        np.testing.assert_array_equal(one["y_hat"], from_wide[name])
        np.testing.assert_array_equal(one["y_hat_q0.1"], from_wide[f"{name}_q0.1"])


def test_every_series_forecast_from_its_own_end_and_short_ones_reported(df, fitted):
    with pytest.warns(UserWarning, match=r"left out of the forecast: 's2'"):
        out = fitted.predict(df)
    assert list(out["unique_id"].unique()) == ["s0", "s1"]
    for key, g in out.groupby("unique_id"):
        last = df.loc[df["unique_id"] == key, "ds"].max()
        assert list(g["ds"]) == list(pd.date_range(last, periods=7, freq="h")[1:])
    assert (out["y_hat_q0.1"] <= out["y_hat"]).all() and (out["y_hat"] <= out["y_hat_q0.9"]).all()
    with pytest.warns(UserWarning):
        assert len(fitted.predict(df, h=2)) == 4
    with pytest.raises(ConfigError, match="h must be a whole number from 1 to the trained horizon 6"):
        fitted.predict(df, h=7)
    with pytest.raises(ConfigError, match="no series is long enough to train on.*longest has 15"):
        Forecaster(**TINY).fit(df[df["unique_id"] == "s2"])


def test_each_series_is_scaled_by_its_training_part_only(df):
    f = Forecaster(**TINY).fit(df[df["unique_id"] != "s2"], val_size=12)
    for key in ("s0", "s1"):
        y = df.loc[df["unique_id"] == key, "y"].to_numpy()[:-12]
        assert f.stats[key] == pytest.approx((y.mean(), y.std()))


def test_validation_keeps_the_best_weights_and_early_stopping_stops(df):
    data = df[df["unique_id"] != "s2"]
    f = Forecaster(**{**TINY, "epochs": 40, "lr": 0.5}).fit(data, val_size=6, early_stopping=1)
    report = f.fit_report
    assert report["val_windows"] == 2 and report["epochs"] < 40  # stopped early
    # the kept weights are those whose validation loss was the best: recompute it on the two windows
    x, y = [], []
    for key, (mean, scale) in f.stats.items():
        v = (data.loc[data["unique_id"] == key, "y"].to_numpy() - mean) / scale
        x.append(v[-30:-6]), y.append(v[-6:])
    with torch.no_grad():
        out = f.model({"inputs": torch.tensor(np.array(x), dtype=torch.float32)[..., None],
                       "targets": torch.tensor(np.array(y), dtype=torch.float32)[..., None]})
    assert float(out["loss"]) == pytest.approx(report["best_val_loss"], rel=1e-5)
    with pytest.raises(ConfigError, match="early_stopping needs a validation split"):
        Forecaster(**TINY).fit(data, early_stopping=2)
    with pytest.raises(ConfigError, match="val_size must be 0 or a whole number of steps >= horizon=6"):
        Forecaster(**TINY).fit(data, val_size=3)


def test_save_and_load_round_trip_the_forecasts_exactly(df, fitted, tmp_path):
    path = fitted.save(tmp_path / "f")
    assert (path / "config.yaml").is_file() and (path / "checkpoints" / "latest.json").is_file()
    assert not [p for p in path.rglob("*") if p.suffix in (".pt", ".pkl", ".pickle")]  # no pickle
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd.testing.assert_frame_equal(Forecaster.load(path).predict(df), fitted.predict(df))
    with pytest.raises(ConfigError, match="already holds files.*overwrite=True"):
        fitted.save(path)
    fitted.save(path, overwrite=True)


def test_cross_validation_windows_never_see_their_future(df):
    data = df[df["unique_id"] != "s2"]
    cv = Forecaster(**TINY).cross_validation(data, n_windows=3, step=4)
    assert list(cv.columns) == ["unique_id", "ds", "cutoff", "y", "y_hat"] and len(cv) == 2 * 3 * 6
    one = cv[cv["unique_id"] == "s1"]
    truth = data[data["unique_id"] == "s1"].set_index("ds")["y"]
    np.testing.assert_array_equal(one["y"], truth.loc[one["ds"]].to_numpy())
    cutoffs = sorted(one["cutoff"].unique())
    assert cutoffs[-1] == truth.index[-7] and cutoffs[1] - cutoffs[0] == pd.Timedelta(hours=4)
    assert (one["ds"] > one["cutoff"]).all()
    # change every value after the second cutoff: windows 1 and 2 (cutoffs <= it) must not move, window 3 must
    changed = data.copy()
    changed.loc[changed["ds"] > cutoffs[1], "y"] += 100.0
    cv2 = Forecaster(**TINY).cross_validation(changed, n_windows=3, step=4)
    early = cv["cutoff"] <= cutoffs[1]
    early &= cv["unique_id"] == "s1"
    np.testing.assert_array_equal(cv.loc[early, "y_hat"], cv2.loc[early, "y_hat"])
    late = (cv["unique_id"] == "s1") & (cv["cutoff"] == cutoffs[2])
    assert np.abs(cv.loc[late, "y_hat"].to_numpy() - cv2.loc[late, "y_hat"].to_numpy()).min() > 1.0


def test_metrics_match_their_equations():
    frame = pd.DataFrame({"unique_id": ["a", "a", "b", "b"], "y": [1.0, 2.0, 0.0, -4.0],
                          "y_hat": [2.0, 2.0, 0.0, -2.0], "y_hat_q0.1": [0.0, 1.0, -1.0, -5.0]})
    history = pd.DataFrame({"unique_id": ["a"] * 3 + ["b"] * 3, "ds": pd.date_range("2020", periods=6),
                            "y": [0.0, 2.0, 3.0, 1.0, 1.0, 3.0]})
    table = evaluate(frame, train_df=history)
    assert table.loc["a", "mse"] == 0.5 and table.loc["b", "mae"] == 1.0 and table.loc["overall", "mse"] == 1.25
    assert table.loc["a", "smape"] == pytest.approx(100 * (1 / 3))  # 200/2 * (1/3 + 0)
    assert smape([0.0], [0.0]) == 0.0
    assert table.loc["a", "mase"] == pytest.approx(0.5 / 1.5)  # MAE 0.5, naive MAE (2 + 1) / 2
    assert np.isnan(mase([1.0], [2.0], [1.0, 1.0]))  # a constant history has no scale
    assert table.loc["b", "mase"] == pytest.approx(1.0 / 1.0)
    assert table.loc["overall", "mase"] == pytest.approx((1 / 3 + 1) / 2)
    # pinball: y_hat is the median (q = 0.5) beside q = 0.1
    expected = pinball([1.0, 2.0, 0.0, -4.0], np.array([[0.0, 2.0], [1.0, 2.0], [-1.0, 0.0], [-5.0, -2.0]]), [0.1, 0.5])
    assert table.loc["overall", "pinball"] == pytest.approx(expected)
    assert pinball([1.0], [[0.0]], [0.1]) == pytest.approx(0.1) and pinball([0.0], [[1.0]], [0.1]) == pytest.approx(0.9)


@pytest.mark.parametrize("change, message", [
    (lambda d: d.drop(columns="unique_id"), "no column 'unique_id'"),
    (lambda d: d.drop(columns="ds"), "no column 'ds'; it needs unique_id, ds and y"),
    (lambda d: d.drop(columns="y"), "no column 'y'"),
    (lambda d: pd.concat([d, d.iloc[[3]]]), "series 's0' has 2 rows at 2022-01-01 03:00:00; keep one row"),
    (lambda d: d.assign(y=d["y"].astype(object).where(d.index != 5, "abc")),
     "non-numeric value 'abc'.*series 's0'"),
    (lambda d: d.assign(y=d["y"].where(d.index != 5)), "missing values in series 's0' \\(1 of 120 rows\\)"),
])
def test_one_line_errors(df, change, message):
    with pytest.raises(ConfigError, match=message) as e:
        Forecaster(**TINY).fit(change(df))
    assert "\n" not in str(e.value)


def test_cli_forecast_and_backtest_on_a_long_file(df, fitted, tmp_path, capsys):
    run = fitted.save(tmp_path / "run")
    data = tmp_path / "long.csv"
    df.to_csv(data, index=False)
    out = tmp_path / "forecast.csv"
    assert main(["forecast", str(run), "--data", str(data), "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err  # the short series is named once, as a plain line
    assert err.count("xformer: warning: 1 series shorter than") == 1 and "'s2'" in err and "Traceback" not in err
    written = pd.read_csv(out, parse_dates=["ds"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = fitted.predict(df)
    assert list(written.columns) == list(expected.columns) and written["ds"].equals(expected["ds"])
    np.testing.assert_allclose(written["y_hat"], expected["y_hat"], rtol=1e-7)
    cv_out, per_series = tmp_path / "cv.csv", tmp_path / "m.csv"
    capsys.readouterr()
    assert main(["backtest", str(run), "--data", str(data), "--windows", "2", "--out", str(cv_out),
                 "--metrics", str(per_series), "--quiet"]) == 0
    captured = capsys.readouterr()
    overall = json.loads(captured.out)
    assert captured.err.count("xformer: warning: 1 series shorter than") == 1 and "'s2'" in captured.err
    cv = pd.read_csv(cv_out)
    assert overall["series"] == 2 and len(cv) == 2 * 2 * 6 and set(cv.columns) >= {"cutoff", "y", "y_hat"}
    table = pd.read_csv(per_series, index_col=0)
    assert list(table.index) == ["s0", "s1", "overall"]
    assert overall["mse"] == pytest.approx(np.mean((cv["y"] - cv["y_hat"]) ** 2), rel=1e-5)
    bad = tmp_path / "dup.csv"
    pd.concat([df, df.iloc[[0]]]).to_csv(bad, index=False)
    for command in (["forecast", str(run), "--data", str(bad)],
                    ["backtest", str(run), "--data", str(bad), "--windows", "1"]):
        assert main(command) == 2
        assert "keep one row per (unique_id, ds)" in capsys.readouterr().err


# ---- covariates -------------------------------------------------------------------------------------------
def leading_frame(n=200, lead=6, seed=0):
    """y_t = 2 x_{t - lead} + k + noise: x, known `lead` steps ahead of y, determines it."""
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(4):
        x = rng.standard_normal(n + lead)
        parts.append(pd.DataFrame({"unique_id": f"s{k}", "ds": pd.date_range("2022-01-01", periods=n, freq="h"),
                                   "y": 2.0 * x[:n] + k + 0.1 * rng.standard_normal(n), "x": x[lead:],
                                   "now": x[:n]}))
    return pd.concat(parts, ignore_index=True)


COV = {**TINY, "d_model": 16, "epochs": 5, "lr": 3e-3}


@pytest.mark.parametrize("covariates", [{"futr_exog": ["now"]}, {"hist_exog": ["x"]}])
def test_covariates_that_determine_the_target_lower_the_error(covariates):
    df = leading_frame()
    plain = evaluate(Forecaster(**COV).cross_validation(df, n_windows=4, step=6)).loc["overall", "mse"]
    with_cov = evaluate(Forecaster(**COV, **covariates).cross_validation(df, n_windows=4, step=6))
    assert plain > 3.0 and with_cov.loc["overall", "mse"] < 0.2 * plain, (plain, with_cov)


def test_covariates_are_read_only_up_to_the_origin_or_the_horizon(tmp_path):
    df = leading_frame()
    f = Forecaster(**COV, hist_exog=["x"], futr_exog=["now"], calendar=["hour", "weekday"])
    cv = f.cross_validation(df, n_windows=2, step=6)
    cutoff = cv["cutoff"].min()  # the first window: rows after its horizon exist
    f.fit(df[df["ds"] <= cutoff])  # the backtest's model: cross_validation leaves f as it was
    first = (cv["cutoff"] == cutoff).to_numpy()

    def again(change):
        return f.cross_validation(change(df.copy()), n_windows=2, step=6, fit=False)["y_hat"].to_numpy()

    after_origin, after_horizon = df["ds"] > cutoff, df["ds"] > cutoff + pd.Timedelta(hours=6)
    assert after_horizon.sum() == 4 * 6
    same = again(lambda d: d.assign(x=d["x"].where(~after_origin, 50.0), now=d["now"].where(~after_horizon, 50.0)))
    np.testing.assert_array_equal(same[first], cv.loc[first, "y_hat"].to_numpy())
    assert np.abs(same[~first] - cv.loc[~first, "y_hat"].to_numpy()).max() > 0  # the later window reads them
    moved = again(lambda d: d.assign(now=d["now"].where(~after_origin, 50.0)))  # within the horizon: read
    assert np.abs(moved[first] - cv.loc[first, "y_hat"].to_numpy()).min() > 0
    # predict: the future-known values come in futr_df; without them it is one line naming the fix
    history, future = df[~after_origin], df[after_origin & ~after_horizon][["unique_id", "ds", "now"]]
    with pytest.raises(ConfigError, match=r"future-known covariate\(s\) \['now'\] missing for series 's0'.*futr_df"):
        f.predict(history)
    out = f.predict(history, futr_df=future)
    np.testing.assert_array_equal(out["y_hat"].to_numpy(), cv.loc[first, "y_hat"].to_numpy())
    with pytest.raises(ConfigError, match="has no covariate column 'x'"):
        f.predict(history.drop(columns="x"), futr_df=future)
    f.save(tmp_path / "cov")
    pd.testing.assert_frame_equal(Forecaster.load(tmp_path / "cov").predict(history, futr_df=future), out)
    history.to_csv(tmp_path / "history.csv", index=False)
    future.to_csv(tmp_path / "future.csv", index=False)
    command = ["forecast", str(tmp_path / "cov"), "--data", str(tmp_path / "history.csv"), "--quiet"]
    assert main([*command, "--futr", str(tmp_path / "future.csv"), "--out", str(tmp_path / "f.csv")]) == 0
    np.testing.assert_allclose(pd.read_csv(tmp_path / "f.csv")["y_hat"], out["y_hat"], rtol=1e-7)
    assert main(command) == 2


def test_calendar_features_from_the_dates():
    from xformer.forecast.covariates import calendar_features

    dates = pd.DatetimeIndex(["2024-01-01 00:00", "2024-12-31 23:00"])  # a Monday; a Tuesday
    np.testing.assert_allclose(calendar_features(dates, ["hour", "weekday", "month", "day"]),
                               [[-0.5, -0.5, -0.5, -0.5], [0.5, 1 / 6 - 0.5, 0.5, 0.5]])
    with pytest.raises(ConfigError, match="unknown calendar feature"):
        Forecaster(calendar=["minute"])
    with pytest.raises(ConfigError, match="covariates need model='patchtst'"):
        Forecaster(**{**TINY, "model": "dlinear"}, calendar=["hour"])


def test_missing_values_and_frequencies_per_series():
    from xformer.forecast.frames import fill_series, infer_freq, read_panel

    df = long_frame()
    gap = df.assign(y=df["y"].where(~df.index.isin([3, 130])))  # one missing value in s0, one in s1
    panel = fill_series(read_panel(gap, missing="ffill"), "ffill")  # read_panel keeps gaps until the cut
    assert panel.series["s0"].iloc[3] == panel.series["s0"].iloc[2]
    assert panel.series["s1"].iloc[130 - 120] == panel.series["s1"].iloc[130 - 121]
    assert infer_freq(panel).freqstr == "h" and infer_freq(panel, "h").freqstr == "h"
    with pytest.raises(ConfigError, match="freq 2h does not fit series 's0'.*suggest freq 'h'"):
        infer_freq(panel, "2h")  # a given freq the hourly rows contradict (test_forecast_audit2.py)
    daily = pd.DataFrame({"unique_id": "d", "ds": pd.date_range("2022-01-01", periods=40, freq="D"), "y": 1.0})
    with pytest.raises(ConfigError, match="series 'd' has frequency D but 's0' has h"):
        infer_freq(read_panel(pd.concat([df, daily])))
    dropped = df.drop(index=[5, 17, 40, 130, 140])  # missing rows: timestamps of the hourly grid without a row
    dropped = dropped[dropped["unique_id"] != "s2"]
    with pytest.raises(ConfigError, match="series 's0' lacks 3 timestamps of freq h .*missing='interpolate'"):
        Forecaster(**TINY).fit(dropped)
    assert Forecaster(**TINY, missing="interpolate").fit(dropped).freq.freqstr == "h"
    irregular = df.assign(ds=df["ds"] + pd.to_timedelta(np.random.default_rng(0).integers(0, 59, len(df)), "min"))
    with pytest.raises(ConfigError, match="cannot infer a regular frequency from column 'ds'.*freq="):
        Forecaster(**TINY).fit(irregular[irregular["unique_id"] != "s2"])  # no grid the rows lie on


def test_predict_without_df_forecasts_after_the_data_of_fit(df, fitted, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the short series is reported in both calls
        pd.testing.assert_frame_equal(fitted.predict(), fitted.predict(df))
        pd.testing.assert_frame_equal(fitted.predict(h=2), fitted.predict(df, h=2))
    loaded = Forecaster.load(fitted.save(tmp_path / "run"))  # a run folder keeps no data
    with pytest.raises(ConfigError, match=r"holds none \(it was loaded or not fitted\); pass the series") as e:
        loaded.predict()
    assert "\n" not in str(e.value)


def test_local_times_across_a_daylight_saving_change_become_one_utc_timeline(tmp_path):
    from xformer.data.series import read_series
    local = pd.date_range("2022-03-25", periods=120, freq="h", tz="Europe/Berlin")  # +01:00, then +02:00
    path = tmp_path / "dst.csv"
    pd.DataFrame({"unique_id": "a", "ds": local.astype(str), "y": series(120, 0)}).to_csv(path, index=False)
    f = Forecaster(**TINY).fit(path)
    assert f.freq == pd.tseries.frequencies.to_offset("h")  # hourly in UTC, though the local clock skipped 02:00
    out = f.predict(path)
    assert out["ds"].iloc[0] == local[-1].tz_convert("UTC") + pd.Timedelta(hours=1)
    wide = pd.DataFrame({"date": local.astype(str), "v": series(120, 0)})
    read = read_series(wide).index  # UTC, named for how it was read (timestamps.CHANGING_OFFSETS)
    assert read.name == "date" and read.tz_convert("UTC").equals(local.tz_convert("UTC"))


def test_a_long_file_of_aligned_series_is_a_wide_table_for_train_and_compare(tmp_path):
    from xformer.data.series import read_series
    wide = pd.DataFrame({"date": pd.date_range("2022-01-01", periods=50, freq="h"),
                         "b": series(50, 1), "a": series(50, 0)})
    long = wide.melt(id_vars="date", var_name="unique_id", value_name="y").rename(columns={"date": "ds"})
    long["extra"] = 1.0  # other columns are ignored
    read = read_series(long.iloc[::-1])  # rows in any order; series in order of first appearance: a, then b
    pd.testing.assert_frame_equal(read, read_series(wide[["date", "a", "b"]]).rename_axis("ds"))
    ragged = long[~((long["unique_id"] == "a") & (long.index % 50 < 3))]
    with pytest.raises(ConfigError, match=r"is in long format and its series cover different time steps \('b': 50 "
                                          r"rows, 'a': 47\); a model of all series together needs them aligned") as e:
        read_series(ragged)
    assert "\n" not in str(e.value)


def test_tables_with_to_pandas_are_read_and_other_objects_refused_in_one_line(df, fitted):
    class Table:  # what polars and pyarrow tables offer
        def __init__(self, frame):
            self.frame = frame

        def to_pandas(self):
            return self.frame

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the short series is reported in both calls
        pd.testing.assert_frame_equal(fitted.predict(Table(df)), fitted.predict(df))
    with pytest.raises(ConfigError, match="series data must be a pandas DataFrame, a table with to_pandas"):
        fitted.predict({"unique_id": ["s0"], "ds": [1], "y": [1.0]})


def test_refit_trains_a_fresh_model_before_every_window(df):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the short series 's2' is left out, and said so
        refit = Forecaster(**TINY).cross_validation(df, n_windows=2, step=6, refit=True)
        once = Forecaster(**TINY).cross_validation(df, n_windows=2, step=6)
        # window 1 starts 6 rows before each series' end: a model fitted on the rows before it forecasts the same
        before = df[df.groupby("unique_id").cumcount(ascending=False) >= 6]
        direct = Forecaster(**TINY).fit(before).predict(before)
    second = refit.groupby("unique_id", sort=False).tail(6).reset_index(drop=True)
    np.testing.assert_array_equal(second["y_hat"], direct["y_hat"])
    first = lambda cv: cv.groupby("unique_id", sort=False).head(6)["y_hat"].to_numpy()  # noqa: E731
    np.testing.assert_array_equal(first(refit), first(once))  # the same model up to the first window
    assert not np.array_equal(second["y_hat"], once.groupby("unique_id", sort=False).tail(6)["y_hat"])
    with pytest.raises(ConfigError, match="refit=True trains a model before every window, so it needs fit=True"):
        Forecaster(**TINY).cross_validation(df, refit=True, fit=False)


def test_refit_every_k_windows_trains_before_windows_0_k_2k(df):
    """refit=2 over three windows: window 1 is forecast by window 0's model, window 2 by a fresh one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the short series 's2' is left out, and said so
        runs = {refit: Forecaster(**TINY).cross_validation(df, n_windows=3, step=6, refit=refit)
                for refit in (False, True, 2)}
    window = lambda cv, w: cv.groupby("unique_id", sort=False).nth(list(range(6 * w, 6 * w + 6)))["y_hat"].to_numpy()  # noqa: E731
    for w, same_as in ((0, False), (1, False), (2, True)):
        np.testing.assert_array_equal(window(runs[2], w), window(runs[same_as], w))
    assert not np.array_equal(window(runs[2], 1), window(runs[True], 1))
    assert not np.array_equal(window(runs[2], 2), window(runs[False], 2))
    for bad in (0.5, -1, "2"):
        with pytest.raises(ConfigError, match="refit must be True, False or a whole number of windows k >= 1"):
            Forecaster(**TINY).cross_validation(df, refit=bad)
    with pytest.raises(ConfigError, match=r"refit=2 trains a model before windows 0, 2, 4, \.\.\., so it needs fit=True"):
        Forecaster(**TINY).cross_validation(df, refit=2, fit=False)
