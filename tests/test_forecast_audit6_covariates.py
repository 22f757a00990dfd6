"""Covariates, from a sixth audit: `xformer forecast --at --futr` forecasts the scenario given (its values after
--at replace the file's own, as predict(the file cut at --at, futr_df=...)), an infinite static value is refused,
unique_id is read as text from a CSV path (data and statics), plot's truth needs only y, `xformer forecast
--static` takes a wide file, covariate options take any sequence of names, a covariate without values in fit's
training part is refused in fit's words, and smaller messages and checks (the static token's parameter count,
cross_validation's own argument, futr_df dates off the grid, --futr / --static on a run without them, an
ensemble whose static_df has a row for a series not fitted)."""
import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xformer.cli import main
from xformer.config import ConfigError
from xformer.forecast import Forecaster

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

TINY = dict(input_len=24, horizon=6, patch_len=8, stride=4, d_model=8, n_layers=1, n_heads=2, epochs=1,
            batch_size=32, device="cpu")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "series.md"


def make(n: int = 96, ids=("a", "b", "c"), seed: int = 0) -> pd.DataFrame:
    """y driven by a past-observed load (lagged 3 steps) and a future-known 0/1 price."""
    rng = np.random.default_rng(seed)
    parts = []
    for i, key in enumerate(ids):
        x = rng.normal(size=n + 3).cumsum() * 0.3
        price = rng.choice([0.0, 1.0], size=n)
        y = 2 * x[:-3] + 3 * price + 0.1 * rng.normal(size=n) + 5 * i
        parts.append(pd.DataFrame({"unique_id": key, "ds": pd.date_range("2024-01-01", periods=n, freq="h"),
                                   "y": y, "load": x[3:], "price": price}))
    return pd.concat(parts, ignore_index=True)


STATIC = pd.DataFrame({"unique_id": ["a", "b", "c"], "lvl": [0.1, 5.0, 3.0]})


def refused(call, pattern: str) -> str:
    with pytest.raises(ConfigError, match=pattern) as e:
        call()
    assert "\n" not in str(e.value)
    return str(e.value)


@pytest.fixture(scope="module")
def covariate_run(tmp_path_factory):
    """A saved forecaster with past-observed, future-known and static covariates, and its data as CSV."""
    root = tmp_path_factory.mktemp("covariates")
    df = make()
    forecaster = Forecaster(hist_exog=["load"], futr_exog=["price"], stat_exog=["lvl"], **TINY)
    forecaster.fit(df[df.ds < "2024-01-03"], static_df=STATIC)
    forecaster.save(root / "run")
    df.to_csv(root / "full.csv", index=False)
    return forecaster, df, root


# ---- 1. xformer forecast --at DATE --futr FILE: the scenario is forecast ----------------------------------------
def test_forecast_at_with_futr_forecasts_the_scenario_as_predict_on_the_cut_history(covariate_run, tmp_path):
    forecaster, df, root = covariate_run
    at = pd.Timestamp("2024-01-03 23:00")
    scenario = df[df.ds > at].groupby("unique_id").head(6)[["unique_id", "ds", "price"]]
    scenario = scenario.assign(price=1.0 - scenario["price"])  # the plan flipped
    scenario.to_csv(tmp_path / "scenario.csv", index=False)
    run = ["forecast", str(root / "run"), "--data", str(root / "full.csv"), "--at", str(at), "--quiet"]
    assert main([*run, "--out", str(tmp_path / "plain.csv")]) == 0
    assert main([*run, "--futr", str(tmp_path / "scenario.csv"), "--out", str(tmp_path / "scen.csv")]) == 0
    expected = forecaster.predict(df[df.ds <= at], futr_df=scenario)
    assert (tmp_path / "scen.csv").read_text() == expected.to_csv(index=False, float_format="%.8g")
    assert (tmp_path / "scen.csv").read_text() != (tmp_path / "plain.csv").read_text()  # the scenario is read
    # without --futr the file's own values after --at are the future, as before
    own = forecaster.predict(df[df.ds <= at], futr_df=df[df.ds > at][["unique_id", "ds", "price"]])
    assert (tmp_path / "plain.csv").read_text() == own.to_csv(index=False, float_format="%.8g")


# ---- 2. an infinite static value ------------------------------------------------------------------------------
def test_an_infinite_static_value_is_refused_in_one_line(covariate_run, tmp_path, capsys):
    forecaster, df, root = covariate_run
    history, futr = df[df.ds <= "2024-01-03 23:00"], df[df.ds > "2024-01-03 23:00"][["unique_id", "ds", "price"]]
    infinite = STATIC.assign(lvl=[np.inf, 1.0, 2.0])
    message = r"static column 'lvl' holds the infinite value inf \(series 'a'\); static values must be finite"
    assert forecaster.predict(history, futr_df=futr, static_df=STATIC).y_hat.notna().all()  # the rest is fine
    refused(lambda: forecaster.predict(history, futr_df=futr, static_df=infinite), message)
    refused(lambda: Forecaster(stat_exog=["lvl"], **TINY).fit(df[["unique_id", "ds", "y"]], static_df=infinite),
            message)
    refused(lambda: forecaster.predict(history, futr_df=futr, static_df=STATIC.assign(lvl=["1", "-inf", "2"])),
            r"holds the infinite value -inf \(series 'b'\)")
    infinite.to_csv(tmp_path / "static.csv", index=False)
    capsys.readouterr()
    for command in (["forecast", "--at", "2024-01-03 23:00"], ["backtest", "--windows", "1"]):
        out = tmp_path / f"{command[0]}.csv"
        assert main([command[0], str(root / "run"), "--data", str(root / "full.csv"), *command[1:], "--static",
                     str(tmp_path / "static.csv"), "--out", str(out)]) == 2
        assert not out.exists()  # refused before anything is written
        assert "static column 'lvl' holds the infinite value inf" in capsys.readouterr().err


# ---- 3. unique_id from a CSV path is text -----------------------------------------------------------------------
def test_ids_with_leading_zeros_read_from_a_csv_path_forecast_as_from_the_frame(tmp_path):
    df = make(ids=("001", "002"))
    static = pd.DataFrame({"unique_id": ["001", "002"], "lvl": [1.0, 2.0]})
    df.to_csv(tmp_path / "ids.csv", index=False)
    static.to_csv(tmp_path / "static.csv", index=False)
    forecaster = Forecaster(hist_exog=["load"], stat_exog=["lvl"], **TINY).fit(df[df.ds < "2024-01-03"],
                                                                               static_df=static)
    expected = forecaster.predict(df)
    assert expected.unique_id.unique().tolist() == ["001", "002"]
    pd.testing.assert_frame_equal(forecaster.predict(str(tmp_path / "ids.csv")), expected)
    pd.testing.assert_frame_equal(forecaster.predict(df, static_df=str(tmp_path / "static.csv")), expected)
    forecaster.save(tmp_path / "run")
    assert main(["forecast", str(tmp_path / "run"), "--data", str(tmp_path / "ids.csv"), "--static",
                 str(tmp_path / "static.csv"), "--out", str(tmp_path / "f.csv"), "--quiet"]) == 0
    assert (tmp_path / "f.csv").read_text() == expected.to_csv(index=False, float_format="%.8g")


# ---- 4. plot's truth needs only y --------------------------------------------------------------------------------
def test_plot_truth_needs_only_unique_id_ds_and_y(covariate_run, tmp_path):
    forecaster, df, _ = covariate_run
    history, later = df[df.ds <= "2024-01-03 23:00"], df[df.ds > "2024-01-03 23:00"]
    futr = later[["unique_id", "ds", "price"]]
    for i, truth in enumerate((later[["unique_id", "ds", "y"]], later.assign(load=np.nan), later)):
        path = forecaster.plot(history, tmp_path / f"p{i}.png", truth=truth, futr_df=futr)
        assert path.stat().st_size > 0


# ---- 5. xformer forecast --static with a wide file ----------------------------------------------------------------
@pytest.fixture(scope="module")
def wide_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("wide")
    long = make()[["unique_id", "ds", "y"]]
    wide = long.pivot(index="ds", columns="unique_id", values="y").reset_index().rename(columns={"ds": "date"})
    wide.columns.name = None
    wide.to_csv(root / "wide.csv", index=False)
    forecaster = Forecaster(stat_exog=["lvl"], **TINY).fit(wide, static_df=STATIC)
    forecaster.save(root / "run")
    return forecaster, wide, root


def test_forecast_takes_static_for_a_wide_file_as_predict_does(wide_run, tmp_path):
    forecaster, wide, root = wide_run
    other = STATIC.assign(lvl=[3.0, 0.1, 5.0])
    other.to_csv(tmp_path / "static.csv", index=False)
    assert main(["forecast", str(root / "run"), "--data", str(root / "wide.csv"), "--static",
                 str(tmp_path / "static.csv"), "--out", str(tmp_path / "f.csv"), "--quiet"]) == 0
    expected = forecaster.predict(wide, static_df=other)
    assert (tmp_path / "f.csv").read_text() == expected.to_csv(index_label="date", float_format="%.8g")
    assert not expected.equals(forecaster.predict(wide))  # the statics given are read


# ---- 6. covariate options: any sequence of names -------------------------------------------------------------
@pytest.mark.parametrize("names", [("load",), pd.Index(["load"]), np.array(["load"]), pd.Series(["load"]), "load"])
def test_covariate_options_take_any_sequence_of_names_as_a_list_of_str(names):
    config = Forecaster(hist_exog=names, **TINY).config
    assert config.hist_exog == ["load"] and type(config.hist_exog[0]) is str
    json.dumps(dataclasses.asdict(config))  # save writes it as JSON
    assert Forecaster(calendar="hour", **TINY).config.calendar == ["hour"]
    assert Forecaster(calendar=("hour", "month"), **TINY).config.calendar == ["hour", "month"]


@pytest.mark.parametrize("option, value, pattern", [
    ("hist_exog", ["load", "load"], r"^hist_exog names 'load' twice; give each column name once$"),
    ("calendar", ["hour", "hour"], r"^calendar names 'hour' twice; give each calendar feature once$"),
    ("hist_exog", 5, r"^hist_exog must be a column name or a list of them, e.g. hist_exog=\['load'\], got 5$"),
    ("stat_exog", {"lvl"}, r"^stat_exog must be a column name or a list of them"),
    ("futr_exog", ["price", 3], r"^futr_exog holds 3 \(int\), not a column name; give the names as text"),
    ("calendar", "hours", r"^unknown calendar feature\(s\) \['hours'\]"),
])
def test_bad_covariate_options_are_refused_in_one_line(option, value, pattern):
    refused(lambda: Forecaster(**{option: value}, **TINY), pattern)


def test_a_tuple_of_covariates_fits_and_forecasts_as_the_list():
    df = make()
    expected = Forecaster(hist_exog=["load"], **TINY).fit(df).predict(df)
    pd.testing.assert_frame_equal(Forecaster(hist_exog=("load",), **TINY).fit(df).predict(df), expected)


# ---- 7. a covariate without values in fit's training part ---------------------------------------------------------
def test_a_covariate_without_values_in_the_training_part_is_refused_in_fits_words():
    df = make()
    rows = df.index[df.unique_id == "a"]
    df.loc[rows[:80], "load"] = np.nan  # the sensor of series a came late: nothing before the validation rows
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no sklearn warnings on the way
        refused(lambda: Forecaster(hist_exog=["load"], missing="ffill", **TINY).fit(df, val_size=16),
                r"^covariate\(s\) \['load'\] of series 'a' hold no value in the 80 rows fit trains on \(the series' "
                r"first rows, before the last val_size=16 steps held out for validation\); give them values there, "
                r"or leave out that series \(or those covariates\)$")


# ---- 8. smaller ones ---------------------------------------------------------------------------------------------
def test_the_static_token_adds_the_parameters_the_docs_say():
    from xformer.forecast.config import ForecasterConfig, model_config
    from xformer.models import build_model

    count = lambda cfg: sum(p.numel() for p in build_model(model_config(cfg, 1)).parameters())  # noqa: E731
    d, H = 16, 12
    for quantiles, Q in ((None, 1), ([0.1, 0.5, 0.9], 3)):
        plain = ForecasterConfig(input_len=48, horizon=H, patch_len=8, stride=4, d_model=d, n_heads=2,
                                 futr_exog=["price"], quantiles=quantiles)
        with_static = dataclasses.replace(plain, stat_exog=["s1", "s2"])
        S = 2
        assert count(with_static) - count(plain) == (S + 2) * d + d * H * Q
    assert "It adds (S + 2) d + d H Q parameters" in " ".join(DOCS.read_text().split())


def test_cross_validation_without_static_df_names_its_own_argument():
    df = make()[["unique_id", "ds", "y"]]
    refused(lambda: Forecaster(stat_exog=["lvl"], **TINY).cross_validation(df, h=6),
            r"stat_exog \['lvl'\] needs static_df .*: cross_validation\(df, static_df=\.\.\.\)$")


def test_futr_df_dates_off_the_grid_are_named(covariate_run):
    forecaster, df, _ = covariate_run
    history, later = df[df.ds <= "2024-01-03 23:00"], df[df.ds > "2024-01-03 23:00"]
    futr = later[["unique_id", "ds", "price"]]
    refused(lambda: forecaster.predict(history, futr_df=futr.assign(ds=futr.ds + pd.Timedelta(minutes=30))),
            r"^futr_df's dates for series 'a' are off its grid of freq h: 2024-01-04 00:30:00 lies between the "
            r"forecast steps 2024-01-04 00:00:00 and 2024-01-04 01:00:00; give futr_df")


def test_futr_and_static_on_a_run_without_them_are_refused_in_the_commands_words(wide_run, covariate_run, tmp_path,
                                                                                  capsys):
    _, _, wide_root = wide_run
    _, df, root = covariate_run
    df[["unique_id", "ds", "price"]].to_csv(tmp_path / "futr.csv", index=False)
    capsys.readouterr()
    assert main(["forecast", str(wide_root / "run"), "--data", str(wide_root / "wide.csv"), "--futr",
                 str(tmp_path / "futr.csv")]) == 2
    err = capsys.readouterr().err
    assert "--futr" in err and "was fitted without any; drop --futr" in err and "set futr_exog" not in err
    plain = Forecaster(**TINY).fit(df[["unique_id", "ds", "y"]])
    plain.save(tmp_path / "plain")
    STATIC.to_csv(tmp_path / "static.csv", index=False)
    for command in (["forecast"], ["backtest", "--windows", "1"]):
        assert main([command[0], str(tmp_path / "plain"), "--data", str(root / "full.csv"), *command[1:],
                     "--static", str(tmp_path / "static.csv")]) == 2
        err = capsys.readouterr().err
        assert "was fitted without any; drop --static" in err and "stat_exog" not in err


def test_an_ensemble_compares_the_statics_of_the_series_fitted_only():
    df = make()[["unique_id", "ds", "y"]]
    extra = pd.concat([STATIC, pd.DataFrame({"unique_id": ["q"], "lvl": [9.0]})], ignore_index=True)
    first = Forecaster(stat_exog=["lvl"], **TINY).fit(df, static_df=STATIC)
    second = Forecaster(stat_exog=["lvl"], **TINY, seed=1).fit(df, static_df=extra)
    averaged = Forecaster.ensemble([first, second]).predict(df)
    mean = (first.predict(df).y_hat + second.predict(df).y_hat) / 2
    np.testing.assert_allclose(averaged.y_hat, mean, rtol=1e-5, atol=1e-6)
    differing = Forecaster(stat_exog=["lvl"], **TINY, seed=1).fit(df, static_df=STATIC.assign(lvl=[0.2, 5.0, 3.0]))
    refused(lambda: Forecaster.ensemble([first, differing]), r"static_df.* differ")


def test_xformer_train_reads_a_long_csv_s_ids_as_written(tmp_path):
    """read_raw_series (xformer train's reader) keeps ids 001 and 002 as written, as load_frame does."""
    from xformer.data.series import read_raw_series
    ds = pd.date_range("2024-01-01", periods=6, freq="h")
    frame = pd.DataFrame({"unique_id": ["001"] * 6 + ["002"] * 6, "ds": list(ds) * 2, "y": np.arange(12.0)})
    frame.to_csv(tmp_path / "long.csv", index=False)
    wide = read_raw_series(tmp_path / "long.csv", "date", None, "error")
    assert [c for c in wide.columns if c != "ds"] == ["001", "002"]
