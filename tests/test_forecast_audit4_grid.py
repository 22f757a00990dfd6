"""Forecasting defects found by a fourth audit of how series dates are read, each pinned: missing timestamps
become missing rows on each series' grid (the missing policy then applies), a wide table's columns each span
their own first to last value, calendar features are computed on one clock or refused, local dates written with
changing UTC offsets are read as those dates, and dates written day first or future rows appended to df get the
right advice."""
import numpy as np
import pandas as pd
import pytest

from xformer.cli import main
from xformer.config import ConfigError
from xformer.forecast import Forecaster

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

TINY = dict(input_len=24, horizon=6, patch_len=8, stride=4, d_model=8, n_layers=1, n_heads=2, epochs=1,
            batch_size=32, device="cpu")
H = 6


def series(n: int, start, uid: str, seed: int = 0, freq="h", tz=None) -> pd.DataFrame:
    t = np.arange(n)
    ds = pd.date_range(start, periods=n, freq=freq, tz=tz) if freq is not None else pd.Index(100 + 2 * t)
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": 10 + 3 * np.sin(2 * np.pi * t / 24)
                         + 0.3 * np.random.default_rng(seed).standard_normal(n)})


def panel(**kw) -> pd.DataFrame:
    return pd.concat([series(150, "2020-01-01", "a", 0, **kw), series(120, "2020-01-02 05:00", "b", 1, **kw)],
                     ignore_index=True)


def gapped(df: pd.DataFrame, key: str = "a", back: int = 8, n: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(``df`` without ``n`` rows of series ``key`` ending ``back - n`` rows before its end, the same with those
    rows kept and their y missing)."""
    last = df.index[df["unique_id"] == key][-1]
    rows = list(range(last - back, last - back + n))
    return df.drop(index=rows), df.assign(y=df["y"].where(~df.index.isin(rows)))


# ---- 1. missing timestamps are missing rows ------------------------------------------------------------------
@pytest.mark.parametrize("kind", [dict(), dict(tz="Europe/Berlin", start="2020-03-27"), dict(freq=None)])
def test_a_gapped_series_forecasts_and_backtests_as_the_same_rows_with_y_missing(kind):
    """Hourly dates, hourly dates in a zone across a daylight-saving change (no local hour is inserted where the
    clock skips one) and integer steps: the rows left out are read as rows without y, not closed up."""
    start = kind.pop("start", None)
    df = panel(**kind) if start is None else pd.concat(
        [series(150, start, "a", 0, **kind), series(120, start, "b", 1, **kind)], ignore_index=True)
    without, with_nan = gapped(df)
    f = Forecaster(**TINY, missing="interpolate").fit(with_nan)
    pd.testing.assert_frame_equal(f.predict(without), f.predict(with_nan))
    cv = f.cross_validation(without, n_windows=2, step=H, h=H, fit=False)
    pd.testing.assert_frame_equal(cv, f.cross_validation(with_nan, n_windows=2, step=H, h=H, fit=False))
    step = pd.Timedelta(hours=1) if kind.get("freq", "h") else 2
    for _, window in cv.groupby(["unique_id", "cutoff"]):  # every label is cutoff + k * freq
        assert list(window["ds"]) == [window["cutoff"].iloc[0] + k * step for k in range(1, H + 1)]
    refit = Forecaster(**TINY, missing="interpolate")
    pd.testing.assert_frame_equal(refit.fit(without).predict(), Forecaster(**TINY, missing="interpolate")
                                  .fit(with_nan).predict())


def test_missing_timestamps_are_refused_by_default_in_one_line_naming_series_count_and_first(tmp_path, capsys):
    df = panel()
    without, _ = gapped(df)
    message = (r"series 'a' lacks 5 timestamps of freq h \(the first 2020-01-06 21:00:00\); pass missing='ffill' "
               r"or missing='interpolate' to fill them \(xformer forecast/backtest: --missing\), or add those rows with their values")
    with pytest.raises(ConfigError, match=message) as e:
        Forecaster(**TINY).fit(without)
    assert "\n" not in str(e.value)
    f = Forecaster(**TINY).fit(df)
    for call in (lambda: f.predict(without), lambda: f.cross_validation(without, fit=False)):
        with pytest.raises(ConfigError, match=message):
            call()
    run = f.save(tmp_path / "run")
    without.to_csv(tmp_path / "gapped.csv", index=False)
    capsys.readouterr()
    assert main(["backtest", str(run), "--data", str(tmp_path / "gapped.csv"), "--windows", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lacks 5 timestamps" in err


def test_the_command_backtest_labels_a_gapped_csv_as_its_rows_with_y_missing(tmp_path):
    without, with_nan = gapped(panel())
    run = Forecaster(**TINY, missing="interpolate").fit(with_nan).save(tmp_path / "run")
    for name, frame in (("gapped", without), ("nan", with_nan)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        assert main(["backtest", str(run), "--data", str(tmp_path / f"{name}.csv"), "--windows", "2",
                     "--out", str(tmp_path / f"{name}_cv.csv"), "--quiet"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "gapped_cv.csv"), pd.read_csv(tmp_path / "nan_cv.csv"))


def test_a_date_missing_from_a_wide_table_is_a_missing_row_of_its_series():
    long = panel()
    wide = long.pivot(index="ds", columns="unique_id", values="y").rename_axis("date").reset_index()
    wide = wide.rename_axis(None, axis=1)
    without = wide.drop(index=[100, 101])
    with pytest.raises(ConfigError, match=r"series 'a' lacks 2 timestamps of freq h \(the first 2020-01-05 04:00"):
        Forecaster(**TINY).fit(without)
    with_nan = wide.assign(a=wide["a"].where(~wide.index.isin([100, 101])),
                           b=wide["b"].where(~wide.index.isin([100, 101])))
    f = Forecaster(**TINY, missing="interpolate").fit(with_nan)
    pd.testing.assert_frame_equal(f.predict(without), f.predict(with_nan))


# ---- 2. a wide table's columns each span their own dates -------------------------------------------------------
def test_a_ragged_wide_table_forecasts_as_its_long_format_equivalent():
    """Series b starts 29 hours after a and ends 3 hours before it: its leading and trailing empty cells are no
    values to fill (the default missing='error' takes the table), and its forecast starts after its own last
    value, as the same data in long format gives."""
    long = pd.concat([series(150, "2020-01-01", "a", 0), series(118, "2020-01-02 05:00", "b", 1)],
                     ignore_index=True)
    wide = long.pivot(index="ds", columns="unique_id", values="y").rename_axis("date").reset_index()
    wide = wide.rename_axis(None, axis=1)
    assert wide["b"].isna().sum() == 32
    by_wide, by_long = Forecaster(**TINY).fit(wide).predict(wide), Forecaster(**TINY).fit(long).predict(long)
    for key in ("a", "b"):
        expected = by_long[by_long["unique_id"] == key].set_index("ds")["y_hat"]
        np.testing.assert_array_equal(by_wide[key].dropna().to_numpy(), expected.to_numpy())
        assert list(by_wide[key].dropna().index) == list(expected.index)
    inside = wide.assign(b=wide["b"].where(wide.index != 60))  # a gap inside b's span follows the policy
    with pytest.raises(ConfigError, match=r"missing values in series 'b' \(1 of 118 rows\)"):
        Forecaster(**TINY).fit(inside)


# ---- 3. calendar features on one clock -------------------------------------------------------------------------
def test_calendar_features_of_dates_read_as_utc_from_changing_offsets_are_refused(tmp_path):
    idx = pd.date_range("2020-03-25", periods=200, freq="h", tz="Europe/Berlin")
    d = pd.DataFrame({"unique_id": "x", "ds": idx, "y": np.sin(2 * np.pi * idx.hour / 24)})
    f = Forecaster(**TINY, calendar=["hour"]).fit(d)
    d.to_csv(tmp_path / "dst_h.csv", index=False)
    assert len(f.predict(d)) == H  # the zone's local hours, as in fit
    message = r"calendar features \['hour'\] need the local time of ds, but its dates were written with changing UTC"
    for call in (lambda: f.predict(tmp_path / "dst_h.csv"),
                 lambda: Forecaster(**TINY, calendar=["hour"]).fit(tmp_path / "dst_h.csv")):
        with pytest.raises(ConfigError, match=message) as e:
            call()
        assert "\n" not in str(e.value) and "tz_convert" in str(e.value)
    # without calendar features the file still reads as one UTC timeline: hourly rows stay hourly
    out = Forecaster(**TINY).fit(tmp_path / "dst_h.csv").predict(tmp_path / "dst_h.csv")
    assert list(out["ds"]) == [idx[-1].tz_convert("UTC") + pd.Timedelta(hours=k) for k in range(1, H + 1)]


# ---- 4. local dates written with changing offsets ----------------------------------------------------------------
def test_daily_local_dates_written_with_changing_offsets_are_read_as_those_dates(tmp_path):
    days = pd.date_range("2020-01-01", periods=150, freq="D", tz="America/New_York")
    d = pd.DataFrame({"unique_id": "n", "ds": days, "y": np.sin(np.arange(150) / 7 * 2 * np.pi)})
    d.to_csv(tmp_path / "ny.csv", index=False)  # -05:00, then -04:00 from 2020-03-08
    for freq in (None, "D"):
        out = Forecaster(**TINY, freq=freq).fit(tmp_path / "ny.csv").predict(tmp_path / "ny.csv")
        assert list(out["ds"]) == list(pd.date_range("2020-05-30", periods=H, freq="D"))
    f = Forecaster(**TINY, calendar=["weekday", "day"]).fit(d)  # the same clock as the zone's own dates
    np.testing.assert_array_equal(f.predict(tmp_path / "ny.csv")["y_hat"], f.predict(d)["y_hat"])


def test_a_freq_that_dates_read_as_utc_cannot_fit_names_the_cause_not_another_freq(tmp_path):
    days = pd.date_range("2020-01-01", periods=150, freq="D", tz="America/New_York")
    days = days.where(np.arange(150) != 20, days[20] + pd.Timedelta(hours=12))  # one row at noon: not only days
    pd.DataFrame({"unique_id": "n", "ds": days, "y": 1.0 + np.arange(150) % 7}).to_csv(tmp_path / "ny.csv",
                                                                                      index=False)
    for freq in (None, "D", "24h"):
        with pytest.raises(ConfigError, match="written with changing UTC offsets .* and are read as UTC") as e:
            Forecaster(**TINY, freq=freq).fit(tmp_path / "ny.csv")
        assert "suggest" not in str(e.value) and "\n" not in str(e.value)


# ---- 5. and 6. the right advice ---------------------------------------------------------------------------------
def test_dates_written_day_first_are_named_as_such_with_the_fix(tmp_path):
    ds = pd.date_range("2016-07-01", periods=400, freq="h")
    pd.DataFrame({"unique_id": "a", "ds": ds.strftime("%d/%m/%Y %H:%M"), "y": np.arange(400.0)}).to_csv(
        tmp_path / "dayfirst.csv", index=False)
    with pytest.raises(ConfigError, match=r"row 289 holds '13/07/2016 00:00', a date written day first \(13 is not "
                                          r"a month\).*ISO 8601 \(YYYY-MM-DD\).*dayfirst=True") as e:
        Forecaster(**TINY).fit(tmp_path / "dayfirst.csv")
    assert "\n" not in str(e.value)


def test_future_rows_appended_to_df_get_the_drop_advice_first_whatever_the_policy():
    history = series(100, "2020-01-01", "a").assign(p=1.0)
    future = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2020-01-05 04:00", periods=H, freq="h"), "p": 2.0})
    appended = pd.concat([history, future], ignore_index=True)
    for missing in ("error", "ffill"):
        with pytest.raises(ConfigError, match=r"series 'a' has no y in its last 6 rows .* drop those rows") as e:
            Forecaster(**TINY, futr_exog=["p"], missing=missing).fit(appended)
        assert "pass missing" not in str(e.value)


def test_the_commands_take_a_missing_policy_for_the_data_they_read(tmp_path, capsys):
    """A forecaster fitted with missing='error' (the default) meets gapped data: forecast and backtest refuse it
    as predict does, and --missing fills it as a forecaster fitted with that policy would."""
    df = panel()
    without, _ = gapped(df)
    without.to_csv(tmp_path / "gapped.csv", index=False)
    run = Forecaster(**TINY).fit(df).save(tmp_path / "run")
    for command in (["forecast"], ["backtest", "--windows", "2"]):
        capsys.readouterr()
        assert main([command[0], str(run), "--data", str(tmp_path / "gapped.csv"), *command[1:]]) == 2
        assert "lacks 5 timestamps" in capsys.readouterr().err
        out = tmp_path / f"{command[0]}.csv"
        assert main([command[0], str(run), "--data", str(tmp_path / "gapped.csv"), *command[1:], "--missing",
                     "interpolate", "--out", str(out), "--quiet"]) == 0
    loaded = Forecaster.load(run)
    loaded.config.missing = "interpolate"
    expected = loaded.predict(without)
    np.testing.assert_allclose(pd.read_csv(tmp_path / "forecast.csv")["y_hat"], expected["y_hat"], rtol=1e-6)
    cv = pd.read_csv(tmp_path / "backtest.csv")
    assert len(cv) == 2 * 2 * H and np.isfinite(cv["y_hat"]).all()


def test_a_date_futr_df_skips_is_a_missing_value_and_one_after_its_end_is_refused():
    """futr_df without one date inside the horizon forecasts as futr_df with that date's cell empty (the policy
    fills both alike); without the horizon's last date it is refused under any policy, never filled past its end."""
    rng = np.random.default_rng(0)
    df = panel()
    df["now"] = rng.standard_normal(len(df))
    future = pd.concat([pd.DataFrame({"unique_id": key, "ds": pd.date_range(s["ds"].iloc[-1], periods=H + 1,
                                                                             freq="h")[1:], "now": 1.0 + k})
                        for k, (key, s) in enumerate(df.groupby("unique_id"))], ignore_index=True)
    f = Forecaster(**TINY, futr_exog=["now"], missing="ffill").fit(df)
    skipped = future.drop(index=[2])
    emptied = future.assign(now=future["now"].where(future.index != 2))
    pd.testing.assert_frame_equal(f.predict(df, futr_df=skipped), f.predict(df, futr_df=emptied))
    for short in (future.drop(index=[H - 1]), future[future["unique_id"] == "b"]):
        with pytest.raises(ConfigError, match=r"future-known covariate\(s\) \['now'\] missing for series 'a'"):
            f.predict(df, futr_df=short)
