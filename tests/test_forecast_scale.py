"""Forecasting on big panels (audit E2): a cap on training (max_steps), per-series statistics and panel reading
without per-series sklearn or pandas work giving the same numbers, long_to_wide's checks, evaluate's train_df, and
the MASE period of `xformer forecast --at` (--season). Tiny data; equality, not timing."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler

from xformer.cli import main
from xformer.config import ConfigError
from xformer.data.series import long_to_wide
from xformer.forecast import Forecaster, evaluate
from xformer.forecast.covariates import standard_stats
from xformer.forecast.frames import read_covariates, read_panel

TINY = dict(model="dlinear", input_len=8, horizon=4, batch_size=8, epochs=3)


def panel_frame(n_series: int = 3, seed: int = 0, covariates: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(n_series):
        n = 40 + 7 * k
        part = pd.DataFrame({"unique_id": f"s{k}", "ds": pd.date_range("2021-01-01", periods=n, freq="h"),
                             "y": np.sin(np.arange(n) / 3 + k) + rng.normal(0, 0.1, n)})
        if covariates:
            part["x"], part["z"] = rng.normal(size=n), rng.integers(0, 2, n).astype(float)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


# ---- 1. max_steps --------------------------------------------------------------------------------------------
def test_max_steps_caps_training_and_is_reported():
    df = panel_frame()
    windows = sum(40 + 7 * k - 8 - 4 + 1 for k in range(3))
    whole = Forecaster(**TINY).fit(df).fit_report
    assert whole["steps"] == 3 * (windows // 8) and whole["max_steps"] is None
    capped = Forecaster(**TINY, max_steps=5).fit(df).fit_report
    assert capped["steps"] == 5 and capped["max_steps"] == 5 and capped["epochs"] == 5 / (windows // 8)
    assert Forecaster(**TINY, max_steps=10**6).fit(df).fit_report["steps"] == whole["steps"]  # a cap above: no change


def test_max_steps_with_validation_keeps_the_best_evaluated_weights():
    report = Forecaster(**TINY, max_steps=3).fit(panel_frame(), val_size=4).fit_report
    assert report["steps"] == 3 and report["best_val_loss"] is not None and report["best_epoch"] > 0


@pytest.mark.parametrize("bad", [0, -1, 2.5, "100", True])
def test_max_steps_takes_a_whole_number(bad):
    with pytest.raises(ConfigError, match=r"max_steps=.*: give a whole number >= 1 \(or None\)"):
        Forecaster(**TINY, max_steps=bad)


def test_max_steps_is_saved_and_a_folder_without_it_loads(tmp_path):
    f = Forecaster(**TINY, max_steps=4).fit(panel_frame())
    loaded = Forecaster.load(f.save(tmp_path / "f"))
    assert loaded.config.max_steps == 4 and loaded.fit_report["max_steps"] == 4
    pd.testing.assert_frame_equal(loaded.predict(panel_frame()), f.predict())
    state = json.loads((tmp_path / "f" / "forecaster.json").read_text())
    del state["config"]["max_steps"]  # as a folder saved before the option existed
    (tmp_path / "f" / "forecaster.json").write_text(json.dumps(state))
    assert Forecaster.load(tmp_path / "f").config.max_steps is None
    assert "max_steps=4" in repr(f)


# ---- 2. per-series statistics and panels -----------------------------------------------------------------------
def stat_cases():
    rng = np.random.default_rng(1)
    for n in (1, 2, 5, 64, 333):
        for k in (1, 3):
            x = rng.normal(rng.uniform(-1e3, 1e3), rng.choice([1e-9, 1.0, 1e6]), (n, k))
            gappy = x.copy()
            gappy[rng.random((n, k)) < 0.2] = np.nan
            gappy[0] = x[0]
            yield from (x, np.asfortranarray(x), gappy, np.full((n, k), 0.1), -np.zeros((n, k)),
                        np.where(np.arange(n)[:, None] % 2, 3.0, 3.0 + 1e-15) + np.zeros((1, k)))


def test_standard_stats_are_standard_scalers_to_the_bit():
    for x in stat_cases():
        scaler = StandardScaler().fit(x)
        mean, scale = standard_stats(x)
        assert mean.tobytes() == np.asarray(scaler.mean_).tobytes()
        assert scale.tobytes() == np.asarray(scaler.scale_).tobytes()


def test_a_constant_series_has_scale_one():
    assert standard_stats(np.full((6, 1), 7.0))[1].tolist() == [1.0]


def test_a_long_frame_with_covariates_is_read_as_its_groups_are():
    df = panel_frame(covariates=True).sample(frac=1.0, random_state=0)  # rows in any order
    df = df.drop(index=df.index[5:9])
    panel = read_panel(df, missing="ffill", exog=["x", "z"], freq="h")
    assert panel.ids == sorted(pd.unique(df["unique_id"]))  # sorted by id, whatever the rows' order
    for key, rows in df.groupby("unique_id", sort=False):
        rows = rows.set_index(pd.DatetimeIndex(rows["ds"], name="ds")).sort_index()
        grid = pd.date_range(rows.index[0], rows.index[-1], freq="h", name="ds")
        pd.testing.assert_series_equal(panel.series[key], rows["y"].reindex(grid), check_freq=False)
        pd.testing.assert_frame_equal(panel.covariates[key], rows[["x", "z"]].reindex(grid), check_freq=False)
    futr = read_covariates(df[["unique_id", "ds", "x"]], ["x"], "error", "futr_df")
    assert list(futr) == panel.ids and list(futr["s0"].columns) == ["x"]


def test_a_covariate_gap_is_still_refused_naming_its_column():
    df = panel_frame(covariates=True)
    df.loc[3, "z"] = np.nan
    with pytest.raises(ConfigError, match=r"missing values in series 's0' \(column 'z'\) \(1 of 40 rows\)"):
        read_panel(df, exog=["x", "z"])


# ---- 3. evaluate with a long train_df ---------------------------------------------------------------------
def test_evaluate_names_the_series_train_df_lacks():
    df = panel_frame()
    cv = pd.DataFrame({"unique_id": ["s0", "s9"], "ds": df["ds"].iloc[:2], "y": 1.0, "y_hat": 1.5})
    with pytest.raises(ConfigError, match="train_df has no rows of .*'s9'"):
        evaluate(cv, train_df=df)


# ---- 4. long_to_wide --------------------------------------------------------------------------------------------
def test_long_to_wide_sorts_the_series_and_refuses_series_on_other_steps():
    dates = pd.date_range("2021-01-01", periods=5, freq="D")
    frame = pd.concat([pd.DataFrame({"unique_id": k, "ds": dates[::-1], "y": np.arange(5.0) + i})
                       for i, k in enumerate(["b", "a"])], ignore_index=True)
    wide = long_to_wide(frame)
    assert list(wide.columns) == ["ds", "a", "b"] and wide["a"].tolist() == [5.0, 4.0, 3.0, 2.0, 1.0]
    shifted = frame.assign(ds=np.where(frame["unique_id"] == "a", frame["ds"] + pd.Timedelta(days=1), frame["ds"]))
    with pytest.raises(ConfigError, match=r"cover different time steps \('b': 5 rows, 'a': 5\)"):
        long_to_wide(shifted)
    with pytest.raises(ConfigError, match=r"cover different time steps \('b': 5 rows, 'a': 4\)"):
        long_to_wide(frame.iloc[:-1])


# ---- 5. xformer forecast --at --season ----------------------------------------------------------------------------
def test_forecast_at_takes_the_season_of_mase(tmp_path, capsys):
    df = panel_frame()
    run = Forecaster(**TINY).fit(df).save(tmp_path / "run")
    df.to_csv(tmp_path / "long.csv", index=False)
    at = str(df["ds"].iloc[30])
    printed = {}
    for season in (1, 3):
        capsys.readouterr()
        assert main(["forecast", str(run), "--data", str(tmp_path / "long.csv"), "--at", at, "--season",
                     str(season), "--out", str(tmp_path / f"f{season}.csv"), "--quiet"]) == 0
        printed[season] = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert printed[1]["mse"] == printed[3]["mse"] and printed[1]["mase"] != printed[3]["mase"]
    forecast = pd.read_csv(tmp_path / "f3.csv", dtype={"unique_id": str}, parse_dates=["ds"])
    truth = forecast.merge(df, on=["unique_id", "ds"])
    expected = evaluate(truth, train_df=df[df["ds"] <= pd.Timestamp(at)], season=3).loc["overall", "mase"]
    assert printed[3]["mase"] == round(float(expected), 6)
    assert main(["forecast", str(run), "--data", str(tmp_path / "long.csv"), "--at", at, "--season", "0"]) == 2
    assert "--season must be a whole number >= 1, got 0" in capsys.readouterr().err
