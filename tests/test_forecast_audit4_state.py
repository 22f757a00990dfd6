"""Forecaster defects found by a fourth audit, each pinned: a backtest and a failed fit leave the forecaster as it
was (its model, fit_report, freq and the series predict() continues), and the one-line refusals of plot,
Forecaster.ensemble, predict at another frequency, future-known covariates short of the horizon, and a patch
longer than the input window."""
import numpy as np
import pandas as pd
import pytest
import torch

from xformer.config import ConfigError
from xformer.forecast import Forecaster

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

TINY = dict(input_len=24, horizon=6, patch_len=8, stride=4, d_model=8, n_layers=1, n_heads=2, epochs=1,
            batch_size=32, device="cpu")


def one(n, start, freq, uid, seed=0) -> pd.DataFrame:
    t = np.arange(n)
    noise = 0.3 * np.random.default_rng(seed).standard_normal(n)
    return pd.DataFrame({"unique_id": uid, "ds": pd.date_range(start, periods=n, freq=freq),
                         "y": 10 + 3 * np.sin(2 * np.pi * t / 12) + noise})


@pytest.fixture(scope="module")
def df():
    return pd.concat([one(120, "2020-01-01", "h", "a"), one(100, "2020-01-02 05:00", "h", "b", 1),
                      one(90, "2020-01-03", "h", "c", 2)], ignore_index=True)


@pytest.fixture(scope="module")
def fitted(df):
    return Forecaster(**TINY).fit(df)


def state(f: Forecaster) -> tuple:
    """What a fit leaves: the forecast of predict(), the weights, fit_report, freq, statistics and statics."""
    weights = {k: v.detach().clone() for k, v in f.model.state_dict().items()}
    return f.predict(), weights, dict(f.fit_report), f.freq, dict(f.stats), f.history, f.static


def assert_same_state(before: tuple, after: tuple) -> None:
    pd.testing.assert_frame_equal(before[0], after[0])
    assert before[1].keys() == after[1].keys()
    for key in before[1]:
        torch.testing.assert_close(before[1][key], after[1][key], rtol=0, atol=0)
    assert before[2:5] == after[2:5]
    assert before[5] is after[5] and before[6] is after[6]


# ---- 1. cross_validation(fit=True) trains the windows' models on a fresh forecaster --------------------------
@pytest.mark.parametrize("refit", [False, True])
def test_cross_validation_leaves_the_fitted_forecaster_as_it_was(df, refit):
    f = Forecaster(**TINY).fit(df, val_size=6)
    assert "best_val_loss" in f.fit_report
    before = state(f)
    cv = f.cross_validation(df, n_windows=2, refit=refit)
    assert_same_state(before, state(f))
    # and the backtest is the one a fresh forecaster of that config gives
    pd.testing.assert_frame_equal(cv, Forecaster(**TINY).cross_validation(df, n_windows=2, refit=refit))


def test_cross_validation_of_an_unfitted_forecaster_leaves_it_unfitted(df):
    f = Forecaster(**TINY)
    f.cross_validation(df, n_windows=1)
    assert f.model is None and f.history is None and f.fit_report == {} and f.freq is None


def test_cross_validation_keeps_the_static_df_of_fit(df):
    static = pd.DataFrame({"unique_id": ["a", "b", "c"], "size": [1.0, 2.0, 3.0]})
    f = Forecaster(**TINY, stat_exog=["size"]).fit(df, static_df=static)
    before = state(f)
    cv = f.cross_validation(df)  # the static_df remembered from fit
    assert_same_state(before, state(f))
    pd.testing.assert_frame_equal(cv, Forecaster(**TINY, stat_exog=["size"]).cross_validation(df, static_df=static))


def test_an_ensemble_is_backtested_as_it_is_and_not_replaced_by_one_model(df, fitted):
    from xformer.ensemble import Ensemble

    both = Forecaster.ensemble([fitted, Forecaster(**TINY, seed=1).fit(df)])
    with pytest.raises(ConfigError, match=r"an ensemble of 2 fitted models.*pass fit=False to backtest the "
                                          r"ensemble as it is") as e:
        both.cross_validation(df)
    assert "\n" not in str(e.value)
    assert isinstance(both.model, Ensemble)
    cv = both.cross_validation(df, fit=False)
    assert len(cv) == 3 * 6 and isinstance(both.model, Ensemble)


# ---- 2. a failed fit commits nothing ---------------------------------------------------------------------------
@pytest.mark.parametrize("failing_fit", [
    lambda f, daily: f.fit(daily, static_df=pd.DataFrame({"unique_id": ["a"], "s": [1.0]})),  # refused: no stat_exog
    lambda f, daily: f.fit(daily.iloc[:20]),  # refused: no series long enough
])
def test_a_failed_fit_leaves_the_forecaster_as_it_was(df, failing_fit):
    f = Forecaster(**TINY).fit(df)
    daily = one(120, "2020-01-01", "D", "a")
    with pytest.raises(ConfigError, match="freq h does not fit series 'a'"):
        f.predict(daily)  # the hourly model
    before = state(f)
    with pytest.raises(ConfigError):
        failing_fit(f, daily)
    assert_same_state(before, state(f))
    with pytest.raises(ConfigError, match="freq h does not fit series 'a'"):
        f.predict(daily)  # still the hourly model, still refused


# ---- 3. plot and ensemble arguments ----------------------------------------------------------------------------
def test_plot_takes_one_id_of_any_type_as_the_ids_are_read(df, tmp_path):
    numbered = df.assign(unique_id=df["unique_id"].map({"a": 1, "b": 2, "c": 3}))
    f = Forecaster(**TINY).fit(numbered)
    assert f.plot(numbered, tmp_path / "one.png", series=1).stat().st_size > 0
    assert f.plot(numbered, tmp_path / "two.png", series=[1, "3"]).stat().st_size > 0
    with pytest.raises(ConfigError, match=r"no forecast for series \['7'\]"):
        f.plot(numbered, tmp_path / "none.png", series=7)


def test_plot_refuses_a_suffix_that_names_no_figure_format(fitted, df, tmp_path):
    with pytest.raises(ConfigError, match=r"path .*x\.txt: give a file name ending in one of \.png, \.svg, \.pdf, "
                                          r"\.jpg") as e:
        fitted.plot(df, tmp_path / "x.txt")
    assert "\n" not in str(e.value) and not (tmp_path / "x.txt").exists()
    (tmp_path / "kept.png").write_text("mine")
    with pytest.raises(ConfigError, match="already exists.*overwrite=True"):
        fitted.plot(df, tmp_path / "kept.png")
    assert (tmp_path / "kept.png").read_text() == "mine"
    assert fitted.plot(df, tmp_path / "f.svg").read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize("members, message", [
    ([], "averages two or more forecasters, got 0"),
    ("runA", "takes a list of forecasters, not one of type str"),
    ([None, None], "item 0 of Forecaster.ensemble is of type NoneType; give fitted Forecasters or the folders"),
])
def test_ensemble_refuses_what_is_not_two_or_more_forecasters(members, message):
    with pytest.raises(ConfigError, match=message) as e:
        Forecaster.ensemble(members)
    assert "\n" not in str(e.value)


def test_ensemble_loads_the_members_given_as_folders(df, fitted, tmp_path):
    other = Forecaster(**TINY, seed=1).fit(df)
    fitted.save(tmp_path / "a")
    expected = Forecaster.ensemble([Forecaster.load(tmp_path / "a"), other]).predict(df)
    pd.testing.assert_frame_equal(Forecaster.ensemble([tmp_path / "a", other]).predict(df), expected)
    pd.testing.assert_frame_equal(Forecaster.ensemble([str(tmp_path / "a"), other]).predict(df), expected)


# ---- 4. data at another frequency than the fitted one ----------------------------------------------------------
@pytest.mark.parametrize("freq, suggested", [("D", "D"), ("15min", "15min")])
def test_data_at_another_freq_than_the_fitted_one_asks_for_data_at_that_freq(fitted, df, freq, suggested):
    other = one(120, "2020-01-01", freq, "a")
    for attempt in (lambda: fitted.predict(other), lambda: fitted.cross_validation(other, fit=False)):
        with pytest.raises(ConfigError, match=f"freq h does not fit series 'a'.*its dates suggest freq "
                                              f"'{suggested}'; this forecaster was fitted on freq h: give data at "
                                              "that frequency$") as e:
            attempt()
        assert "pass that" not in str(e.value) and "leave freq out" not in str(e.value)


def test_a_freq_given_to_the_forecaster_is_named_as_given(df):
    f = Forecaster(**TINY, freq="h").fit(df)
    with pytest.raises(ConfigError, match="this forecaster was given freq h: give data at that frequency$"):
        f.predict(one(120, "2020-01-01", "D", "a"))


# ---- 5. future-known covariates for the whole horizon; patches longer than the window ---------------------------
def test_futr_df_shorter_than_the_horizon_names_the_horizon_the_model_reads():
    frame = pd.concat([one(100, "2020-01-01", "h", k, i).assign(now=np.arange(100.0) % 12) for i, k in
                       enumerate("ab")], ignore_index=True)
    f = Forecaster(**TINY, futr_exog=["now"]).fit(frame)
    ends = frame.groupby("unique_id")["ds"].max()
    futr = pd.DataFrame([{"unique_id": k, "ds": ends[k] + pd.Timedelta(hours=j), "now": float(j)}
                         for k in "ab" for j in range(1, 4)])  # 3 of the 6 steps
    with pytest.raises(ConfigError, match=r"future-known covariate\(s\) \['now'\] missing for series 'a' at "
                                          r".* \(3 of the 6 steps after its end\): the model reads them over its "
                                          r"whole horizon of 6 steps even when h=3; pass futr_df") as e:
        f.predict(frame, h=3, futr_df=futr)
    assert "\n" not in str(e.value)
    full = pd.DataFrame([{"unique_id": k, "ds": ends[k] + pd.Timedelta(hours=j), "now": float(j)}
                         for k in "ab" for j in range(1, 7)])
    assert len(f.predict(frame, h=3, futr_df=full)) == 2 * 3


@pytest.mark.parametrize("options, message", [
    ({"input_len": 14}, "patch_len=16 \\(the default\\) is longer than input_len=14; pass patch_len and stride no "
                        "longer than input_len, e.g. patch_len=7, stride=3"),
    ({"input_len": 6, "patch_len": 8, "stride": 4}, "patch_len=8 is longer than input_len=6; pass patch_len and "
                                                    "stride no longer than input_len, e.g. patch_len=3, stride=1"),
])
def test_a_patch_longer_than_the_input_window_is_refused_at_construction(options, message):
    with pytest.raises(ConfigError, match=message):
        Forecaster(**options)
    Forecaster(input_len=14, patch_len=14, stride=7)  # fits
    Forecaster(input_len=14, model="dlinear")  # reads no patches
