"""Forecast defects found by an eighth audit, each pinned: unique_id values that pandas reads as missing ("NA",
"None", "null", ...) kept as written in every CSV xformer reads ids from (a long CSV, the CLI's --data, a saved
forecaster's static_df.csv), a freq given as a pandas offset object saved as its string (or refused at
construction when no string holds it), evaluate's aggregate row "overall" never mixed with a series of that id,
and a series too short to use left out before the frequency checks rather than refusing the whole panel."""
import warnings

import numpy as np
import pandas as pd
import pytest

from xformer.cli import main
from xformer.config import ConfigError
from xformer.forecast import Forecaster, evaluate
from xformer.metrics_forecast import evaluate as evaluate_rows

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

TINY = dict(model="dlinear", input_len=8, horizon=4, epochs=1, max_steps=5, batch_size=16, device="cpu")
PATCHES = dict(TINY, model="patchtst", patch_len=4, stride=2, d_model=8, n_layers=1, n_heads=2)
NA_TEXTS = ["NA", "None", "null", "nan", "n/a", "NaN", "NULL", "#N/A", "<NA>"]


def refused(make, message: str) -> str:
    with pytest.raises(ConfigError, match=message) as e:
        make()
    assert "\n" not in str(e.value)
    return str(e.value)


def panel(specs, freq="D", seed=0) -> pd.DataFrame:
    """A long frame of the series (id, start, rows) at ``freq``."""
    rng, parts = np.random.default_rng(seed), []
    for k, (uid, start, n) in enumerate(specs):
        t = np.arange(n)
        y = 10 + 3 * np.sin(2 * np.pi * t / 7 + k) + rng.normal(0, 0.3, n)
        parts.append(pd.DataFrame({"unique_id": uid, "ds": pd.date_range(start, periods=n, freq=freq), "y": y}))
    return pd.concat(parts, ignore_index=True)


# ---- 1. ids that pandas reads as missing ----------------------------------------------------------------------------
def test_a_long_csv_keeps_ids_pandas_reads_as_missing(tmp_path):
    df = panel([(uid, "2020-01-01", 20) for uid in [*NA_TEXTS, "001"]])
    df.loc[3, "y"] = np.nan  # a value column keeps pandas' missing values: written here as NA
    df.to_csv(tmp_path / "long.csv", index=False, na_rep="NA")
    assert "NA,2020-01-04,NA\n" in (tmp_path / "long.csv").read_text()
    f = Forecaster(**TINY, missing="ffill").fit(tmp_path / "long.csv")
    assert f.fit_report["series"] == len(NA_TEXTS) + 1
    assert f.predict(tmp_path / "long.csv")["unique_id"].unique().tolist() == sorted([*NA_TEXTS, "001"])
    assert f.predict(tmp_path / "long.csv").equals(f.predict(df))


def test_an_empty_id_cell_is_still_refused(tmp_path):
    (tmp_path / "long.csv").write_text("unique_id,ds,y\nNA,2020-01-01,1\n,2020-01-02,2\n")
    refused(lambda: Forecaster(**TINY).fit(tmp_path / "long.csv"), "column 'unique_id' has no value at row 2")


def test_a_saved_static_df_keeps_ids_pandas_reads_as_missing(tmp_path):
    df = panel([("NA", "2020-01-01", 30), ("None", "2020-01-01", 30), ("EU", "2020-01-01", 30)])
    static = pd.DataFrame({"unique_id": ["NA", "None", "EU"], "size": [3.0, 2.0, 1.0]})
    f = Forecaster(**PATCHES, stat_exog=["size"]).fit(df, static_df=static)
    f.save(tmp_path / "run")
    g = Forecaster.load(tmp_path / "run")
    assert g.static.index.tolist() == ["NA", "None", "EU"]
    pd.testing.assert_frame_equal(g.predict(df), f.predict(df))


def test_the_cli_forecasts_ids_pandas_reads_as_missing(tmp_path):
    df = panel([("NA", "2020-01-01", 30), ("null", "2020-01-01", 30)])
    df.to_csv(tmp_path / "long.csv", index=False)
    Forecaster(**TINY).fit(df).save(tmp_path / "run")
    out = tmp_path / "forecast.csv"
    assert main(["forecast", str(tmp_path / "run"), "--data", str(tmp_path / "long.csv"), "--out", str(out)]) == 0
    assert pd.read_csv(out, keep_default_na=False)["unique_id"].unique().tolist() == ["NA", "null"]


# ---- 2. freq as a pandas offset object -------------------------------------------------------------------------------
@pytest.mark.parametrize("offset, text", [(pd.offsets.MonthEnd(), "ME"), (pd.offsets.Hour(), "h"),
                                          (pd.offsets.Week(weekday=2), "W-WED")])
def test_an_offset_freq_is_kept_as_its_string_and_saves(tmp_path, offset, text):
    f = Forecaster(**TINY, freq=offset)
    assert f.config.freq == text
    df = panel([("a", "2020-01-01", 40)], freq=offset)
    f.fit(df)
    f.save(tmp_path / "run")
    g = Forecaster.load(tmp_path / "run")
    assert g.freq == offset
    pd.testing.assert_frame_equal(g.predict(df), f.predict(df))


def test_an_offset_no_string_holds_is_refused_when_made():
    holidays = pd.offsets.CustomBusinessDay(holidays=["2020-02-17"])
    refused(lambda: Forecaster(**TINY, freq=holidays), "no pandas frequency string.*pass a string freq")


def test_load_with_an_offset_freq_keeps_its_string(tmp_path):
    df = panel([("a", "2020-01-01", 40)], freq="ME")
    Forecaster(**TINY).fit(df).save(tmp_path / "run")
    g = Forecaster.load(tmp_path / "run", freq=pd.offsets.MonthEnd())
    assert g.config.freq == "ME"
    g.save(tmp_path / "again")  # was: TypeError MonthEnd is not JSON


# ---- 3. a series named "overall" -------------------------------------------------------------------------------------
def test_evaluate_refuses_a_series_named_like_its_overall_row():
    cv = pd.DataFrame({"unique_id": ["overall"] * 2 + ["x"] * 2, "y": [1.0, 2.0, 3.0, 4.0]})
    cv["y_hat"] = cv["y"] + [5.0, 5.0, 1.0, 1.0]
    for score in (evaluate, evaluate_rows):  # was: the series' row overwritten by the pooled one, MAE 3
        refused(lambda: score(cv), "series 'overall'.*give that series another unique_id")


def test_backtest_refuses_a_series_named_overall_before_any_work(tmp_path, capsys):
    df = panel([("overall", "2020-01-01", 30), ("x", "2020-01-01", 30)])
    df.to_csv(tmp_path / "long.csv", index=False)
    Forecaster(**TINY).fit(df).save(tmp_path / "run")
    out = tmp_path / "cv.csv"
    assert main(["backtest", str(tmp_path / "run"), "--data", str(tmp_path / "long.csv"), "--windows", "1",
                 "--out", str(out)]) == 2
    assert "series 'overall'" in capsys.readouterr().err and not out.exists()


# ---- 4. a series too short to use does not refuse the panel ----------------------------------------------------------
def gappy_panel() -> pd.DataFrame:
    """Two daily series and 'new': two rows with a day absent between them (they look two days apart)."""
    new = pd.DataFrame({"unique_id": "new", "ds": pd.to_datetime(["2020-02-20", "2020-02-22"]), "y": [3.0, 4.0]})
    return pd.concat([panel([("a", "2020-01-01", 60), ("b", "2020-01-05", 50)]), new], ignore_index=True)


@pytest.mark.parametrize("options", [{}, {"missing": "ffill"}, {"freq": "D", "missing": "ffill"}])
def test_a_short_series_with_an_absent_step_is_left_out_of_fit(options):
    with pytest.warns(UserWarning, match="1 series shorter than 12 rows left out of training: 'new'"):
        f = Forecaster(**TINY, **options).fit(gappy_panel())
    assert f.fit_report["left_out"] == ["new"] and f.fit_report["series"] == 2
    with pytest.warns(UserWarning, match="left out of the forecast: 'new'"):
        assert f.predict(gappy_panel())["unique_id"].unique().tolist() == ["a", "b"]
    with pytest.warns(UserWarning, match="left out of the forecast: 'new'"):
        assert f.predict()["unique_id"].unique().tolist() == ["a", "b"]  # the history of fit holds 'new'


def test_a_short_series_is_left_out_of_predict_and_the_backtest():
    f = Forecaster(**TINY, missing="ffill").fit(gappy_panel().query("unique_id != 'new'"))
    with pytest.warns(UserWarning, match="left out of the forecast: 'new'"):
        assert f.predict(gappy_panel())["unique_id"].unique().tolist() == ["a", "b"]
    with pytest.warns(UserWarning, match="left out of the backtest: 'new'"):
        cv = f.cross_validation(gappy_panel(), n_windows=2)
    assert cv["unique_id"].unique().tolist() == ["a", "b"]


def test_a_three_row_short_series_with_an_absent_step_is_left_out():
    new = pd.DataFrame({"unique_id": "new", "ds": pd.to_datetime(["2020-02-20", "2020-02-21", "2020-02-23"]),
                        "y": [3.0, 4.0, 5.0]})
    df = pd.concat([gappy_panel().query("unique_id != 'new'"), new], ignore_index=True)
    with pytest.warns(UserWarning, match="left out of training: 'new'"):
        assert Forecaster(**TINY, missing="ffill").fit(df).fit_report["left_out"] == ["new"]


def test_a_series_long_enough_on_its_grid_is_still_checked():
    """Left out are the series too short whatever their spacing: one whose grid would hold enough rows is refused
    as before, with a fix that works (here: pass the freq to confirm its grid)."""
    df = gappy_panel().query("unique_id != 'new'")
    gaps = panel([("c", "2020-01-01", 15)]).drop(index=[3, 5, 7, 9])  # 11 rows, 15 on its grid; 12 needed
    df = pd.concat([df, gaps], ignore_index=True)
    message = refused(lambda: Forecaster(**TINY, missing="ffill").fit(df), "series 'c' lacks 4 timestamps")
    assert "freq='D'" in message
    with warnings.catch_warnings(record=True) as caught:  # the fix works: its rows are inserted and filled
        warnings.simplefilter("always")
        f = Forecaster(**TINY, missing="ffill", freq="D").fit(df)
    assert f.fit_report["left_out"] == [] and f.fit_report["series"] == 3 and not caught


def test_a_refused_spacing_names_a_fix_that_works():
    """Rows two steps apart at a given freq, with no freq the dates suggest: the fix named inserts the rows."""
    df = pd.DataFrame({"unique_id": "s", "ds": pd.to_datetime(["2020-01-01", "2020-01-03"]), "y": [1.0, 2.0]})
    message = refused(lambda: Forecaster(**dict(TINY, input_len=1, horizon=1), freq="D").fit(df),
                      "typically 2 steps of D apart")
    assert "add its absent rows" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gap = pd.DataFrame({"unique_id": "s", "ds": pd.to_datetime(["2020-01-02"]), "y": [np.nan]})
        Forecaster(**dict(TINY, input_len=1, horizon=1), freq="D", missing="ffill").fit(pd.concat([df, gap]))


def test_a_short_series_two_days_apart_leaves_the_inferred_grid_to_the_long_ones():
    """'new' alone is regular at 2D: it used to refuse the panel ('a' has D but 'new' 2D) and kept the day absent
    from 'a' from being inserted."""
    a = panel([("a", "2020-01-01", 60)]).drop(index=[20])
    new = pd.DataFrame({"unique_id": "new", "ds": pd.to_datetime(["2020-02-20", "2020-02-22", "2020-02-24"]),
                        "y": [3.0, 4.0, 5.0]})
    with pytest.warns(UserWarning, match="left out of training: 'new'"):
        f = Forecaster(**TINY, missing="ffill").fit(pd.concat([a, new], ignore_index=True))
    assert f.fit_report["left_out"] == ["new"] and f.fit_report["windows"] == 60 - 12 + 1  # 'a' on its grid


def test_xformer_trains_long_csv_reader_keeps_ids_pandas_reads_as_missing(tmp_path):
    """The csv_series reader of `xformer train` (xformer/data/series.py) reads a long CSV's ids as written too:
    'NA' and 'null' are series, not missing values (the Forecaster's reader does the same)."""
    from xformer.data.series import read_series

    dates = pd.date_range("2021-01-01", periods=6, freq="h")
    frame = pd.concat([pd.DataFrame({"unique_id": uid, "ds": dates, "y": np.arange(6.0) + k})
                       for k, uid in enumerate(["NA", "null", "001"])])
    path = tmp_path / "long.csv"
    frame.to_csv(path, index=False)
    wide = read_series(path)
    assert sorted(wide.columns) == ["001", "NA", "null"]
    assert wide["null"].tolist() == list(np.arange(6.0) + 1)
