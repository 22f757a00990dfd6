"""Forecast defects found by a seventh audit, each pinned: MASE's in-sample scale taken on each series' own time
grid (so Python's evaluate and ``xformer backtest`` agree when train_df lacks some timestamps), an overall MASE
that names the series it leaves out, unique_id values of mixed types refused instead of merged, a freq of the
other kind than ds refused at fit, and messages that name the fix (Periods, a wide table with a ds column,
weekly series on different weekdays, pandas' own hint for an alias it no longer reads)."""
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from xformer.cli import main
from xformer.config import ConfigError
from xformer.forecast import Forecaster, evaluate
from xformer.metrics_forecast import naive_scale

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

TINY = dict(input_len=16, horizon=4, patch_len=8, stride=4, d_model=8, n_layers=1, n_heads=2, epochs=1,
            batch_size=32, device="cpu")


def refused(make, message: str) -> str:
    with pytest.raises(ConfigError, match=message) as e:
        make()
    assert "\n" not in str(e.value)
    return str(e.value)


def daily_cycle(n: int = 200, uid: str = "s", freq: str = "h", start: str = "2024-01-01") -> pd.DataFrame:
    t = np.arange(n)
    y = 10 + 5 * np.sin(2 * np.pi * t / 24) + np.random.default_rng(0).normal(0, 0.2, n)
    return pd.DataFrame({"unique_id": uid, "ds": pd.date_range(start, periods=n, freq=freq), "y": y})


def on_grid(df: pd.DataFrame, freq: str) -> pd.DataFrame:
    """``df`` (one series) with its absent timestamps as rows without y."""
    grid = pd.date_range(df["ds"].min(), df["ds"].max(), freq=freq, name="ds")
    return df.set_index("ds").reindex(grid).reset_index().assign(unique_id=df["unique_id"].iloc[0])


def scored(df: pd.DataFrame, cutoff, n: int = 4) -> pd.DataFrame:
    """A forecast frame of the n steps after ``cutoff`` (truth from df, forecasts off by 1)."""
    after = df[df["ds"] > cutoff].head(n)
    return after.assign(cutoff=cutoff, y_hat=after["y"] + 1.0)[["unique_id", "ds", "cutoff", "y", "y_hat"]]


# ---- 1. MASE's scale on each series' own time grid ----------------------------------------------------------------
@pytest.mark.parametrize("freq, season", [("h", 24), ("MS", 12), ("B", 5)])
def test_mase_pairs_values_season_steps_apart_in_time_when_train_df_lacks_timestamps(freq, season):
    full = daily_cycle(freq=freq)
    gapped = full.drop(index=[30, 31, 32, 33, 34]).reset_index(drop=True)
    frame = scored(full, full["ds"].iloc[150])
    expected = evaluate(frame, train_df=on_grid(gapped, freq), season=season)
    by_hand = full["y"].to_numpy()[:151].copy()
    by_hand[30:35] = np.nan
    assert expected.loc["s", "mase"] == pytest.approx(1.0 / naive_scale(by_hand, season))
    table = evaluate(frame, train_df=gapped, season=season)  # was the rows differenced by position
    assert table.loc["s", "mase"] == pytest.approx(expected.loc["s", "mase"])
    given = evaluate(frame, train_df=gapped, season=season, freq=freq)
    assert given.loc["s", "mase"] == pytest.approx(expected.loc["s", "mase"])


def test_mase_on_the_grid_of_integer_steps_and_refusals():
    full = pd.DataFrame({"unique_id": "s", "ds": np.arange(0, 400, 2), "y": daily_cycle()["y"]})
    gapped = full.drop(index=[30, 31, 32]).reset_index(drop=True)
    frame = scored(full, 300)
    x = full["y"].to_numpy()[:151].copy()
    x[30:33] = np.nan
    assert evaluate(frame, train_df=gapped, season=24).loc["s", "mase"] == pytest.approx(1.0 / naive_scale(x, 24))
    grid = "^cannot put train_df on its time grid for MASE's scale: "
    refused(lambda: evaluate(frame, train_df=gapped, season=24, freq="D"),
            grid + r"freq D is a pandas frequency of dates, but series 's' has whole-number steps .*\(freq=2\)")
    refused(lambda: evaluate(frame, train_df=gapped, season=24, freq=3),
            grid + r"freq 3 does not fit series 's': .*not a whole number of 3 steps")
    irregular = full.assign(ds=np.cumsum(np.arange(1, 201)))
    refused(lambda: evaluate(scored(irregular, irregular["ds"].iloc[150]), train_df=irregular),
            grid + r"series 's' has dates on no frequency's grid .*; pass evaluate\(\.\.\., freq=\.\.\.\)")
    twice = pd.concat([gapped, gapped.head(1)], ignore_index=True)
    refused(lambda: evaluate(frame, train_df=twice), grid + r"series 's' has 2 rows at 0; keep one row per")
    refused(lambda: evaluate(frame, freq=2), r"^freq is the step of train_df's ds")


def test_the_grid_is_the_whole_train_df_s_and_the_cut_at_each_cutoff_follows():
    """The grid starts at a series' first row whatever the cutoff, and a series without any value keeps its
    undefined MASE (named in the warning) instead of a refusal of the reader."""
    full = daily_cycle(freq="h")
    gapped = full.drop(index=[30, 31, 32, 33, 34, 170, 171]).reset_index(drop=True)  # absent before and after it
    frame = scored(full, full["ds"].iloc[150])
    x = full["y"].to_numpy()[:151].copy()
    x[30:35] = np.nan
    assert evaluate(frame, train_df=gapped, season=24).loc["s", "mase"] == pytest.approx(1.0 / naive_scale(x, 24))
    blank = daily_cycle(freq="h", uid="blank").assign(y=np.nan)
    both = pd.concat([frame, scored(blank.assign(y=1.0), blank["ds"].iloc[150])], ignore_index=True)
    with pytest.warns(UserWarning, match=r"averages 1 of 2 series.*'blank' \(no two observed values") as caught:
        table = evaluate(both, train_df=pd.concat([gapped, blank], ignore_index=True), season=24)
    assert caught[0].filename == __file__  # the user's line, not the wrapper's
    assert table.loc["overall", "mase"] == pytest.approx(1.0 / naive_scale(x, 24))


def test_metrics_forecast_evaluate_takes_train_df_rows_as_consecutive_steps():
    """Numbers in, numbers out: xformer.metrics_forecast.evaluate does not grid; a timestamp without a row must be
    a row without y there (as Panel.to_long() holds it). Two rows of a series at one ds are still refused."""
    from xformer.metrics_forecast import evaluate as plain_evaluate
    full = daily_cycle(freq="h")
    gapped = full.drop(index=[30, 31, 32, 33, 34]).reset_index(drop=True)
    frame = scored(full, full["ds"].iloc[150])
    rows = gapped["y"].to_numpy()[:146]  # rows up to the cutoff, absent hours not counted
    assert plain_evaluate(frame, train_df=gapped, season=24).loc["s", "mase"] == \
        pytest.approx(1.0 / naive_scale(rows, 24))
    assert plain_evaluate(frame, train_df=on_grid(gapped, "h"), season=24).loc["s", "mase"] == \
        pytest.approx(evaluate(frame, train_df=gapped, season=24).loc["s", "mase"])
    twice = pd.concat([gapped, gapped.head(1)], ignore_index=True)
    refused(lambda: plain_evaluate(frame, train_df=twice),
            r"^train_df has 2 rows of series 's' at 2024-01-01 00:00:00;")


def test_a_panel_of_series_of_different_freqs_is_scored_each_on_its_own_grid():
    """M4-style panels and other libraries' cv frames mix hourly and daily series: fit needs one freq, evaluate
    does not (was refused whatever freq was passed)."""
    hourly = daily_cycle(freq="h", uid="hourly")
    daily = daily_cycle(freq="D", uid="daily")
    frame = pd.concat([scored(hourly, hourly["ds"].iloc[150]), scored(daily, daily["ds"].iloc[150])],
                      ignore_index=True)
    gapped = pd.concat([hourly.drop(index=[30, 31, 32]), daily.drop(index=[40, 41])], ignore_index=True)
    table = evaluate(frame, train_df=gapped, season=24)
    alone = {uid: evaluate(frame[frame["unique_id"] == uid], train_df=gapped[gapped["unique_id"] == uid],
                           season=24).loc[uid] for uid in ("hourly", "daily")}
    for uid, row in alone.items():
        assert table.loc[uid].to_numpy() == pytest.approx(row.to_numpy())
    x = daily["y"].to_numpy()[:151].copy()
    x[40:42] = np.nan  # the daily series on its own grid, not the hourly one's nor its rows as steps
    assert table.loc["daily", "mase"] == pytest.approx(1.0 / naive_scale(x, 24))
    assert table.loc["overall", "mase"] == pytest.approx((alone["hourly"]["mase"] + alone["daily"]["mase"]) / 2)
    two_rows = pd.DataFrame({"unique_id": "short", "ds": pd.to_datetime(["2024-01-01", "2024-01-03"]),
                             "y": [1.0, 2.0]})  # no freq of its own: its rows are kept as steps
    short = pd.DataFrame({"unique_id": ["short"], "ds": [pd.Timestamp("2024-01-05")],
                          "cutoff": [pd.Timestamp("2024-01-03")], "y": [3.0], "y_hat": [3.5]})
    with_short = evaluate(pd.concat([frame, short], ignore_index=True),
                          train_df=pd.concat([gapped, two_rows], ignore_index=True), season=1)
    assert with_short.loc["short", "mase"] == pytest.approx(0.5)


def test_dates_no_freq_holds_are_refused_naming_the_series_and_evaluate_s_fixes():
    """Irregular event times and monthly data dated the 15th: one line naming the series, evaluate's freq= and
    metrics_forecast.evaluate (rows as steps, which scores them), not fit's --freq or Forecaster."""
    from xformer.metrics_forecast import evaluate as plain_evaluate
    regular = daily_cycle(freq="h", uid="regular")
    times = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.cumsum(np.arange(1, 201) % 7 + 1), unit="h")
    events = daily_cycle(uid="events").assign(ds=times)
    on_15th = daily_cycle(60, "events", freq="MS").assign(ds=lambda d: d["ds"] + pd.Timedelta(days=14))
    for odd in (events, on_15th):
        frame = pd.concat([scored(regular, regular["ds"].iloc[150]), scored(odd, odd["ds"].iloc[50])])
        train = pd.concat([regular, odd], ignore_index=True)
        message = refused(lambda: evaluate(frame, train_df=train, season=2),
                          r"^cannot put train_df on its time grid for MASE's scale: series 'events' has dates on no "
                          r"frequency's grid .*; pass evaluate\(\.\.\., freq=\.\.\.\) if a frequency holds its "
                          r"dates, or score its rows as consecutive steps with xformer\.metrics_forecast\.evaluate")
        assert "--freq" not in message and "Forecaster" not in message
        assert np.isfinite(plain_evaluate(frame, train_df=train, season=2).loc["events", "mase"])
    message = refused(lambda: evaluate(scored(on_15th, on_15th["ds"].iloc[50]), train_df=on_15th, freq="MS"),
                      r"^cannot put train_df on its time grid for MASE's scale: freq MS does not fit series 'events': "
                      r".*; "
                      r"or score its rows as consecutive steps with xformer\.metrics_forecast\.evaluate")
    hourly = daily_cycle(freq="h", uid="hourly")
    sparse = hourly.drop(index=range(20, 60, 2)).reset_index(drop=True)  # 20 of 200 hours absent: > 10%
    message = refused(lambda: evaluate(scored(hourly, hourly["ds"].iloc[150]), train_df=sparse),
                      r"^cannot put train_df on its time grid for MASE's scale: .*pass freq='h' to confirm that grid, "
                      r"or the freq its rows are on; or score its rows as consecutive steps")
    assert "--freq" not in message
    assert np.isfinite(evaluate(scored(hourly, hourly["ds"].iloc[150]), train_df=sparse, freq="h").loc["hourly",
                                                                                                    "mase"])
    daily = daily_cycle(freq="D", uid="daily")
    frame = pd.concat([scored(hourly, hourly["ds"].iloc[150]), scored(daily, daily["ds"].iloc[150])])
    refused(lambda: evaluate(frame, train_df=pd.concat([hourly, daily], ignore_index=True), freq="h"),
            r"freq h does not fit series 'daily': .*leave freq out to infer it; or score its rows as consecutive "
            r"steps with xformer\.metrics_forecast\.evaluate")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny forecaster of two hourly series, 'wave' (a daily cycle, 5 of its rows absent) and 'flat' (constant
    up to the backtest), saved; and the data as a CSV."""
    tmp = tmp_path_factory.mktemp("audit7")
    wave = daily_cycle(120, "wave").drop(index=[30, 31, 32, 33, 34])
    flat = daily_cycle(120, "flat").assign(y=lambda d: np.r_[np.full(108, 5.0), np.linspace(4, 6, 12)])
    df = pd.concat([wave, flat], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = Forecaster(**TINY, missing="ffill").fit(df[df["ds"] < pd.Timestamp("2024-01-04")])
    f.save(tmp / "fc")
    df.to_csv(tmp / "long.csv", index=False)
    return tmp, df


def test_backtest_cli_and_evaluate_give_one_mase_and_name_the_series_left_out(saved, capsys):
    tmp, df = saved
    command = ["backtest", str(tmp / "fc"), "--data", str(tmp / "long.csv"), "--windows", "3", "--step", "4",
               "--season", "24", "--out", str(tmp / "cv.csv"), "--overwrite", "--quiet"]
    assert main(command) == 0
    out, err = capsys.readouterr()
    printed = json.loads(out.strip().splitlines()[-1])
    assert printed["mase_series"] == 1 and printed["series"] == 2  # the overall MASE is wave's alone
    assert "xformer: warning: the overall MASE averages 1 of 2 series" in err and "'flat' (a constant history" in err
    cv = pd.read_csv(tmp / "cv.csv", parse_dates=["ds", "cutoff"])
    with pytest.warns(UserWarning, match=r"averages 1 of 2 series: MASE is undefined for 1 series, left out: 'flat'"):
        table = evaluate(cv, train_df=df, season=24)  # df: wave's 5 absent rows absent
    assert table.loc["overall", "mase"] == pytest.approx(printed["mase"], rel=1e-5)


def test_overall_mase_warns_naming_series_with_an_undefined_mase():
    cv = pd.DataFrame({"unique_id": ["c", "c", "v", "v", "s", "s"], "ds": [4, 5] * 3, "cutoff": 3,
                       "y": [0.0, 0.0, 2.0, 4.0, 1.0, 1.0], "y_hat": [1.0, 0.0, 3.0, 3.0, 1.0, 2.0]})
    train = pd.DataFrame({"unique_id": ["c"] * 4 + ["v"] * 4 + ["s"] * 2, "ds": [0, 1, 2, 3] * 2 + [2, 3],
                          "y": [5, 5, 5, 5, 1, 2, 4, 3, 1, 2.0]})
    with pytest.warns(UserWarning) as caught:
        table = evaluate(cv, train_df=train, season=2)
    message = str(caught[0].message)
    assert message.startswith("the overall MASE averages 1 of 3 series: MASE is undefined for 2 series")
    assert "'c' (a constant history" in message and "'s' (no two observed values season=2 steps apart" in message
    assert table.loc["overall", "mase"] == table.loc["v", "mase"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate(cv[cv["unique_id"] == "v"], train_df=train, season=2)  # every MASE defined: no warning


# ---- 3. unique_id of mixed types -------------------------------------------------------------------------------------
def test_ids_that_merge_or_split_as_text_are_refused():
    base = daily_cycle(60, "x")
    text_and_number = pd.concat([base.assign(unique_id="1"), base.assign(unique_id=1)], ignore_index=True)
    refused(lambda: Forecaster(**TINY).fit(text_and_number),  # was one series '1' of 120 rows glued end to end
            r"^unique_id of the long-format frame holds '1' \(str\) and 1 \(int\), which are read as one id '1'.*"
            r"give unique_id one type")
    floats = pd.concat([base.assign(unique_id=1.0), base.assign(unique_id="1.0")], ignore_index=True)
    refused(lambda: Forecaster(**TINY).fit(floats), r"holds 1\.0 \(float\) and '1\.0' \(str\)")
    split = base.assign(unique_id=pd.Series([1] * 59 + [1.0], dtype=object))  # one series to pandas' groupby
    refused(lambda: Forecaster(**TINY).fit(split),
            r"holds 1 \(int\) and 1\.0 \(float\), one id to pandas but two as text")
    frame = scored(text_and_number.iloc[:60], base["ds"].iloc[50]).astype({"unique_id": object})
    frame.iloc[0, 0] = 1
    refused(lambda: evaluate(frame), r"unique_id of the frame holds 1 \(int\) and '1' \(str\)")
    numbers = base.assign(unique_id=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predicted = Forecaster(**TINY).fit(numbers).predict(numbers)
    assert predicted["unique_id"].tolist() == ["7"] * 4  # text, as documented


# ---- 4. a freq of the other kind than ds ------------------------------------------------------------------------
def test_a_freq_of_the_other_kind_is_refused_at_fit():
    steps = pd.DataFrame({"unique_id": "a", "ds": np.arange(60), "y": np.sin(np.arange(60))})
    refused(lambda: Forecaster(**TINY, freq="D").fit(steps),  # was fitted, and refused by predict blaming fit
            r"^freq D is a pandas frequency of dates, but series 'a' has whole-number steps in ds \(e\.g\. 0\); "
            r"pass the whole-number step between its rows \(freq=1\)")
    refused(lambda: Forecaster(**TINY, freq="D").cross_validation(steps), r"^freq D is a pandas frequency of dates")
    dates = daily_cycle(60, "a", freq="D")
    refused(lambda: Forecaster(**TINY, freq=1).fit(dates),
            r"^freq 1 is a whole-number step for integer ds, but series 'a' has dates in ds .*freq='D'")


def test_cli_freq_of_the_other_kind_does_not_say_the_run_was_fitted_on_it(saved, capsys):
    tmp, _ = saved
    assert main(["forecast", str(tmp / "fc"), "--data", str(tmp / "long.csv"), "--freq", "1"]) == 2
    err = capsys.readouterr().err
    assert "fitted on integers" not in err and "freq 1 is a whole-number step for integer ds" in err
    assert "as the data it was fitted on" in err and "freq='h'" in err and "--freq" in err


# ---- 5. messages that name the fix ----------------------------------------------------------------------------------
def test_periods_in_ds_name_the_conversion_to_dates():
    monthly = daily_cycle(60, "a", freq="MS")
    refused(lambda: Forecaster(**TINY).fit(monthly.assign(ds=monthly["ds"].dt.to_period("M"))),
            r"column 'ds' holds pandas Periods \(e\.g\. Period\('2024-01', 'M'\)\), not dates; .*"
            r"df\['ds'\] = df\['ds'\]\.dt\.to_timestamp\(\)")
    wide = pd.DataFrame({"a": monthly["y"].to_numpy()}, index=pd.period_range("2024-01", periods=60, freq="M"))
    refused(lambda: Forecaster(**TINY).fit(wide), r"the index holds pandas Periods.*df\.index\.to_timestamp\(\)")


def test_a_wide_table_with_a_ds_column_is_told_to_pass_date_column():
    df = pd.concat([daily_cycle(60, "a"), daily_cycle(60, "b")], ignore_index=True)
    wide = df.pivot(index="ds", columns="unique_id", values="y").reset_index()
    refused(lambda: Forecaster(**TINY).fit(wide), r"^a wide table with its dates in 'ds' needs date_column='ds'")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert list(Forecaster(**TINY, date_column="ds").fit(wide).predict(wide).columns) == ["a", "b"]


def test_weekly_series_on_different_weekdays_are_told_to_pass_7d():
    a = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2024-01-07", periods=50, freq="W-SUN"),
                      "y": np.sin(np.arange(50))})
    b = pd.DataFrame({"unique_id": "b", "ds": pd.date_range("2024-01-08", periods=50, freq="W-MON"),
                      "y": np.cos(np.arange(50))})
    both = pd.concat([a, b], ignore_index=True)
    refused(lambda: Forecaster(**TINY).fit(both), r"has frequency W-SUN but 'b' has W-MON; pass freq='7D'")
    refused(lambda: Forecaster(**TINY, freq="W").fit(both), r"not on the anchor of W-SUN.*pass freq='7D'")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ends = Forecaster(**TINY, freq="7D").fit(both).predict().groupby("unique_id")["ds"].first()
    assert list(ends.dt.day_name()) == ["Sunday", "Monday"]  # each series at its own weekday


@pytest.mark.parametrize("alias, hint, fixed", [
    ("H", r"did you mean h\?", "h"), ("15T", r"did you mean min\?", "15min"),
    ("M", r"'M' is no longer supported for offsets, use 'ME' instead", "ME"),
    ("Y", r"'Y' is no longer supported for offsets, use 'YE' instead", "YE")])
def test_an_old_pandas_alias_keeps_pandas_hint(alias, hint, fixed):
    if int(pd.__version__.split(".")[0]) < 3:  # pandas 2 still takes them (with a FutureWarning): the same offsets
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            old = pd.tseries.frequencies.to_offset(Forecaster(**TINY, freq=alias).config.freq)
        assert old == pd.tseries.frequencies.to_offset(fixed)
        return
    message = refused(lambda: Forecaster(**TINY, freq=alias), rf"^freq '{alias}' is not a pandas frequency \(pandas: "
                      rf"{hint}\); pass freq='{fixed}'$")
    assert "MS" not in message  # month-end data is not steered to month starts
    assert Forecaster(**TINY, freq=fixed).config.freq == fixed
