"""What a neuralforecast / Darts user met in the forecasting workflow (audit of 2026-12-04), each pinned: text
covariates and whole numbers written as text in ds were refused without the fix, unique_id as the frame's index
was not read, early_stopping refused numpy integers and named an internal option for True, too many backtest
windows or too long a val_size did not say what fits, monthly dates on another day than the first had no way
through, a futr_df whose ids name none of the series was reported as missing values, the JSON of the commands
held NaN (not JSON), and plot(history=-5) drew the wrong steps."""
import json

import numpy as np
import pandas as pd
import pytest

from xformer.cli import main
from xformer.config import ConfigError
from xformer.forecast import Forecaster

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

TINY = dict(input_len=16, horizon=4, patch_len=4, stride=4, d_model=8, n_layers=1, n_heads=2, epochs=1,
            max_steps=2, batch_size=16, device="cpu", seed=0)


def panel(lengths=(60, 80), freq="h", start="2020-01-01") -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.concat([pd.DataFrame({"unique_id": k, "ds": pd.date_range(start, periods=n, freq=freq),
                                    "y": np.sin(np.arange(n) / 3) + i + 0.1 * rng.standard_normal(n)})
                      for i, (k, n) in enumerate(zip("ab", lengths))], ignore_index=True)


@pytest.fixture(scope="module")
def df():
    return panel()


@pytest.fixture(scope="module")
def fitted(df):
    return Forecaster(**TINY).fit(df)


# ---- reading the frame ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("option", ["hist_exog", "futr_exog"])
def test_a_text_covariate_is_refused_naming_how_to_encode_it(df, option):
    frame = df.assign(site=np.where(np.arange(len(df)) % 2, "north", "south"))
    with pytest.raises(ConfigError, match=rf"covariate column 'site' holds .*'south'.*pandas\.get_dummies\(df, "
                                          rf"columns=\['site'\], dtype=float\), and name the new columns .*{option}"):
        Forecaster(**TINY, **{option: ["site"]}).fit(frame)  # was: "site must be finite numbers", no fix


def test_whole_numbers_written_as_text_in_ds_name_the_conversion(df):
    frame = df.assign(ds=df.groupby("unique_id").cumcount().astype(str))  # read_csv(..., dtype=str)
    with pytest.raises(ConfigError, match=r"ds holds whole numbers written as text \('0'.*"
                                          r"df\['ds'\] = df\['ds'\]\.astype\(int\)"):
        Forecaster(**TINY).fit(frame)  # was: "'0', which is not a date; fix the value"
    steps = df.assign(ds=df.groupby("unique_id").cumcount())
    assert len(Forecaster(**TINY).fit(steps).predict()) == 8  # the conversion named works


def test_unique_id_as_the_index_is_read_as_a_column(df, fitted):
    expected = fitted.predict(df)
    for frame in (df.set_index("unique_id"), df.set_index(["unique_id", "ds"])):  # neuralforecast < 1.0, groupbys
        pd.testing.assert_frame_equal(Forecaster(**TINY).fit(frame).predict(frame), expected)
        pd.testing.assert_frame_equal(fitted.predict(frame), expected)
    wide = df.pivot(index="ds", columns="unique_id", values="y")  # an index named ds stays a wide table's dates
    assert list(fitted.predict(wide).columns) == ["a", "b"]


def test_monthly_dates_on_another_day_than_the_first_name_month_starts():
    frame = panel((40, 40), freq="MS")
    frame["ds"] += pd.Timedelta(days=14)  # the 15th of every month: no pandas freq holds it
    fix = r"dated on day 15 of each month.*df\['ds'\] = df\['ds'\]\.dt\.to_period\('M'\)\.dt\.to_timestamp\(\).*" \
          r"freq='MS'"
    with pytest.raises(ConfigError, match=fix):
        Forecaster(**TINY).fit(frame)  # was: "pass freq (e.g. freq='h' ...)", and no freq fits
    with pytest.raises(ConfigError, match=fix):
        Forecaster(**TINY, freq="MS").fit(frame)  # was: "pass the freq its rows are one step apart at"
    quarterly = panel((40, 40), freq="QS")
    quarterly["ds"] += pd.Timedelta(days=9)
    with pytest.raises(ConfigError, match=r"day 10 of every 3 months.*to_period\('Q'\).*freq='QS'"):
        Forecaster(**TINY).fit(quarterly)
    starts = frame.assign(ds=frame["ds"].dt.to_period("M").dt.to_timestamp())
    assert Forecaster(**TINY, freq="MS").fit(starts).predict()["ds"].iloc[0] == pd.Timestamp("2023-05-01")


# ---- fit's options -----------------------------------------------------------------------------------------------------
def test_early_stopping_takes_numpy_whole_numbers_and_refuses_true_in_its_own_words(df):
    f = Forecaster(**TINY).fit(df, val_size=np.int64(4), early_stopping=np.int64(1))  # was refused
    assert f.fit_report["val_windows"] == 2
    with pytest.raises(ConfigError, match=r"^early_stopping must be a patience .* got True$"):
        Forecaster(**TINY).fit(df, val_size=4, early_stopping=True)  # was: "train.early_stopping.patience ..."


def test_a_val_size_too_long_names_val_size_in_the_fix(df):
    with pytest.raises(ConfigError, match=r"the longest has 80; give longer series, a smaller val_size \(at most "
                                          r"60\) or a shorter input_len / horizon$"):
        Forecaster(**TINY).fit(df, val_size=100)


# ---- backtests ---------------------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:.*backtest windows forecast steps the model was fitted on")
def test_too_many_windows_name_how_many_fit(df, fitted):
    # the longest series has 80 rows; input_len 16 leaves 64, of h=4 every 4 steps: 16 windows (fit=False)
    with pytest.raises(ConfigError, match=r"the longest has 80; give n_windows=16 or fewer \(xformer backtest: "
                                          r"--windows 16\), a smaller step, or longer series$"):
        fitted.cross_validation(df, n_windows=50, fit=False)
    with pytest.raises(ConfigError, match=r"give n_windows=8 or fewer"):  # step 8
        fitted.cross_validation(df, n_windows=50, step=8, fit=False)
    with pytest.raises(ConfigError, match=r"give n_windows=15 or fewer"):  # fit=True trains on a horizon first
        fitted.cross_validation(df, n_windows=50)
    with pytest.raises(ConfigError, match=r"the longest has 18; no window fits: give longer series or a shorter h$"):
        fitted.cross_validation(df.groupby("unique_id").head(18), fit=False)
    with pytest.warns(UserWarning, match="1 series shorter than 80 rows left out of the backtest: 'a'"):
        assert fitted.cross_validation(df, n_windows=16, fit=False)["cutoff"].nunique() == 16  # as many fit


@pytest.fixture(scope="module")
def saved(tmp_path_factory, fitted):
    return fitted.save(tmp_path_factory.mktemp("audit_forecast_user") / "run")


def test_backtest_with_too_many_windows_names_the_option(saved, df, tmp_path, cli_error):
    df.to_csv(tmp_path / "long.csv", index=False)
    cli_error(["backtest", saved, "--data", tmp_path / "long.csv", "--windows", "200"], "--windows 16")


def test_the_commands_json_writes_null_for_an_undefined_mase(saved, df, tmp_path, capsys):
    df.assign(y=3.0).to_csv(tmp_path / "const.csv", index=False)  # constant histories: MASE's scale is 0
    capsys.readouterr()

    def strict(text):  # as jq and JSON.parse read it: NaN is no JSON
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the JSON: {text}"))

    assert main(["backtest", str(saved), "--data", str(tmp_path / "const.csv"), "--windows", "2",
                 "--out", str(tmp_path / "cv.csv")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert strict(line)["mase"] is None and strict(line)["mase_series"] == 0 and strict(line)["mae"] < 1
    assert main(["forecast", str(saved), "--data", str(tmp_path / "const.csv"), "--at", "2020-01-04 00:00",
                 "--quiet"]) == 0
    report = [line for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert strict(report[0])["mase"] is None


# ---- covariates given at predict ----------------------------------------------------------------------------------------
def test_a_futr_df_whose_ids_name_none_of_the_series_says_so(df):
    frame = df.assign(price=1.0)
    f = Forecaster(**TINY, futr_exog=["price"]).fit(frame)
    ends = frame.groupby("unique_id")["ds"].max()
    futr = pd.DataFrame([{"unique_id": k, "ds": ends[k] + pd.Timedelta(hours=j), "price": 1.0}
                         for k in "ab" for j in range(1, 5)])
    assert len(f.predict(frame, futr_df=futr)) == 8
    numbered = futr.assign(unique_id=futr["unique_id"].map({"a": 1, "b": 2}))
    with pytest.raises(ConfigError, match=r"futr_df's unique_id values \['1', '2'\] name none of the series of the "
                                          r"data \(\['a', 'b'\]\); give futr_df the data's ids"):
        f.predict(frame, futr_df=numbered)  # was: "covariate(s) ['price'] missing for series 'a'"


# ---- plots -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("history", [0, -5, 2.5])
def test_plot_refuses_a_history_that_is_no_count_of_steps(fitted, df, tmp_path, history):
    with pytest.raises(ConfigError, match=rf"history={history!r}: give the number of past steps to draw"):
        fitted.plot(df, tmp_path / "f.png", history=history)  # was: -5 drew all but the first 5 steps
    assert not (tmp_path / "f.png").exists()
