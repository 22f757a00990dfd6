"""Forecast metrics and backtest defects found by a fourth audit, each pinned: NaN forecasts refused instead of
scored by some metrics and not others, ``season`` checked, quantile columns in exponent notation scored, MASE
refused without a history for every series, ``xformer backtest`` warning about windows the model was fitted on,
and the forecast command's help and docs/series.md telling what really happens."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xformer.cli import main
from xformer.config import ConfigError
from xformer.data.series import read_raw_series, synthetic_frame
from xformer.forecast import Forecaster, evaluate
from xformer.forecast.folder import STATE_FILE, fitted_until, warn_trained_windows
from xformer.forecast.frames import quantile_column
from xformer.metrics_forecast import mase, naive_scale, pinball, quantile_columns, smape

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(input_len=24, horizon=6, patch_len=8, stride=4, d_model=8, n_layers=1, n_heads=2, epochs=1,
            batch_size=32, device="cpu")


def series(n: int, start: str, uid: str, seed: int = 0) -> pd.DataFrame:
    t = np.arange(n)
    noise = 0.3 * np.random.default_rng(seed).standard_normal(n)
    return pd.DataFrame({"unique_id": uid, "ds": pd.date_range(start, periods=n, freq="h"),
                         "y": 10 + 3 * np.sin(2 * np.pi * t / 24) + noise})


def panel() -> pd.DataFrame:
    return pd.concat([series(150, "2020-01-01", "a"), series(120, "2020-01-02 05:00", "b", 1),
                      series(100, "2020-01-03", "c", 2)], ignore_index=True)


def scored() -> pd.DataFrame:
    return pd.DataFrame({"unique_id": ["a", "a", "b", "b"], "y": [1.0, 2.0, 3.0, 4.0],
                         "y_hat": [1.5, 2.0, 2.0, 4.5], "y_hat_q0.1": [1.0, 1.5, 1.0, 4.0]})


# ---- 1. a NaN or infinite forecast is refused; a missing truth is skipped by every metric alike --------------------
def test_a_nan_forecast_is_refused_naming_its_series_and_count():
    frame = pd.DataFrame({"unique_id": ["a", "a"], "y": [1.0, 2.0], "y_hat": [1.0, np.nan]})
    with pytest.raises(ConfigError, match=r"column 'y_hat' holds a NaN or infinite forecast in 1 row \(series 'a': 1\)"):
        evaluate(frame)  # was mse and mae NaN beside sMAPE 0.0
    quantile = scored().assign(**{"y_hat_q0.1": [1.0, np.inf, -np.inf, 4.0]})
    with pytest.raises(ConfigError, match=r"'y_hat_q0.1' .* 2 rows \(series 'a': 1, 'b': 1\)"):
        evaluate(quantile)
    with pytest.raises(ConfigError, match=r"column 'y' holds an infinite truth in 1 row \(series 'b': 1\)"):
        evaluate(scored().assign(y=[1.0, 2.0, np.inf, 4.0]))
    assert math.isnan(smape([1.0, 2.0], [1.0, np.nan]))  # the function alone: NaN as mse and mae give, not 0
    assert smape([0.0, 1.0], [0.0, 3.0]) == pytest.approx(50.0)  # 0/0 still counts 0: 200/2 * (0 + 2/4)


def test_a_missing_truth_is_skipped_by_every_metric_and_a_series_without_any_is_shown():
    frame = scored()
    gap = pd.concat([frame, pd.DataFrame({"unique_id": ["a", "c", "c"], "y": [np.nan] * 3,
                                          "y_hat": [9.0, 1.0, 2.0], "y_hat_q0.1": [8.0, 0.5, 1.0]})])
    table = evaluate(gap)
    pd.testing.assert_frame_equal(table.loc[["a", "b", "overall"]], evaluate(frame).loc[["a", "b", "overall"]])
    assert list(table.index) == ["a", "b", "c", "overall"] and table.loc["c"].isna().all()  # was left out unseen
    with pytest.raises(ConfigError, match="every 'y' of the frame is missing"):
        evaluate(frame.assign(y=np.nan))


# ---- 2. season: a whole number >= 1 ----------------------------------------------------------------------------------
@pytest.mark.parametrize("season", [0, -2, 1.5, True, "24"])
def test_season_must_be_a_whole_number_of_steps(season):
    history = pd.DataFrame({"unique_id": ["a"] * 4 + ["b"] * 4, "ds": list(pd.date_range("2019", periods=4)) * 2,
                            "y": [0.0, 1.0, 3.0, 2.0, 1.0, 2.0, 2.0, 5.0]})
    with pytest.raises(ConfigError, match=f"season must be a whole number >= 1 .*got {season!r}"):
        evaluate(scored(), train_df=history, season=season)  # 0: a broadcast error, 1.5: a TypeError before
    with pytest.raises(ConfigError, match="season must be a whole number"):
        naive_scale([1.0, 2.0, 3.0], season)
    assert evaluate(scored(), train_df=history, season=np.int64(2)).loc["a", "mase"] == pytest.approx(0.25 / 2.0)


# ---- 3. every name quantile_column writes is a quantile column --------------------------------------------------------
def test_quantile_columns_in_exponent_notation_are_scored():
    levels = [1e-05, 0.5, 0.99999, 1.5e-07]
    assert quantile_column(1e-05) == "y_hat_q1e-05"  # the name that was not recognised
    y = np.array([1.0, 2.0, 3.0])
    forecasts = {q: y + (q - 0.5) * 4 for q in levels}
    frame = pd.DataFrame({"unique_id": "a", "y": y, "y_hat": forecasts[0.5],
                          **{quantile_column(q): forecasts[q] for q in levels if q != 0.5}})
    assert quantile_columns(frame) == {1.5e-07: "y_hat_q1.5e-07", 1e-05: "y_hat_q1e-05", 0.5: "y_hat",
                                       0.99999: "y_hat_q0.99999"}
    ordered = sorted(levels)
    expected = pinball(y, np.stack([forecasts[q] for q in ordered], 1), ordered)
    table = evaluate(frame)
    assert table.loc["overall", "pinball"] == pytest.approx(expected)
    assert table.loc["overall", "crps"] == pytest.approx(2 * expected)
    assert "y_hat_qmedian" not in quantile_columns(frame.assign(y_hat_qmedian=0.0)).values()  # not a level


# ---- 4. MASE: the history of every series, cut at the cutoffs ----------------------------------------------------------
def test_mase_refuses_a_series_without_history_and_a_train_df_it_cannot_cut():
    frame = scored()
    history = pd.DataFrame({"unique_id": ["a"] * 4, "ds": pd.date_range("2019", periods=4),
                            "y": [0.0, 1.0, 3.0, 2.0]})
    with pytest.raises(ConfigError, match=r"train_df has no rows of 1 series \('b'\).*leave train_df out"):
        evaluate(frame, train_df=history)  # was MASE NaN for b and an overall MASE of a alone
    both = pd.concat([history, history.assign(unique_id="b")], ignore_index=True)
    cut = frame.assign(cutoff=pd.Timestamp("2019-01-02"))
    with pytest.raises(ConfigError, match="train_df has no 'ds' column to cut"):
        evaluate(cut, train_df=both.drop(columns="ds"))  # was a scale from the rows after the cutoff too
    assert evaluate(cut, train_df=both).loc["a", "mase"] == pytest.approx(0.25 / 1.0)  # rows up to the cutoff: 0, 1
    assert evaluate(frame, train_df=both.drop(columns="ds")).loc["a", "mase"] == pytest.approx(0.25 / (4 / 3))
    with pytest.raises(ConfigError, match="train_df needs column 'y'"):
        evaluate(frame, train_df=both.rename(columns={"y": "value"}))


# ---- 5. the backtest of a model on the data it was fitted on ----------------------------------------------------------
def test_a_saved_forecaster_records_its_training_end_and_backtest_warns(tmp_path, capsys):
    data = panel()
    f = Forecaster(**TINY).fit(data.groupby("unique_id").head(80))  # rows 0..79 of each series
    ends = {k: data[data.unique_id == k].ds.iloc[79] for k in "abc"}
    assert fitted_until(f) == ends
    f.save(tmp_path / "fc")
    loaded = Forecaster.load(tmp_path / "fc")
    assert fitted_until(loaded) == ends
    cv = loaded.cross_validation(data, n_windows=5, step=6, fit=False)
    # windows of 6 steps start at rows n - 30, n - 24, ...: a 120..144 (none), b 90..114 (none), c 70, 76 (two)
    with pytest.warns(UserWarning, match=r"2 of 15 backtest windows forecast steps the model was fitted on"):
        assert warn_trained_windows(loaded, cv) == 2
    data.to_csv(tmp_path / "long.csv", index=False)
    command = ["backtest", str(tmp_path / "fc"), "--data", str(tmp_path / "long.csv"), "--windows", "5", "--step", "6",
               "--out", str(tmp_path / "cv.csv")]
    assert main(command) == 0
    assert "xformer: warning: 2 of 15 backtest windows forecast steps the model was fitted on (e.g. series 'c'" \
        in capsys.readouterr().err
    assert main(command[:6] + ["--windows", "1", "--out", str(tmp_path / "cv1.csv")]) == 0  # all after training
    assert "fitted on" not in capsys.readouterr().err
    # a folder saved before the record loads as before and warns about nothing
    state = json.loads((tmp_path / "fc" / STATE_FILE).read_text())
    del state["trained_until"]
    (tmp_path / "fc" / STATE_FILE).write_text(json.dumps(state))
    assert fitted_until(Forecaster.load(tmp_path / "fc")) is None
    assert main(command[:-1] + [str(tmp_path / "cv2.csv")]) == 0
    assert "fitted on" not in capsys.readouterr().err


def test_backtest_of_an_xformer_train_run_warns_up_to_its_validation_end(tmp_path, capsys):
    csv = tmp_path / "wide.csv"
    synthetic_frame(n_rows=600, n_channels=2).to_csv(csv, index=False)
    run = tmp_path / "run"
    assert main(["train", str(ROOT / "tasks" / "dlinear_etth1.yaml"), "data.name=csv_series",
                 f"data.args.path={csv}", "data.args.input_len=48", "data.args.horizon=12", "train.epochs=1",
                 "train.batch_size=32", "train.eval_every=11", "train.early_stopping.patience=null",
                 "train.device=cpu", "--out", str(run)]) == 0
    end = pd.read_csv(csv)["date"].iloc[600 - 120 - 1]  # ratio split 0.7 / 0.1 / 0.2: validation ends at row 479
    assert fitted_until(Forecaster.load(run)) == {"x0": pd.Timestamp(end), "x1": pd.Timestamp(end)}
    capsys.readouterr()
    # 20 windows of 12 steps start at rows 360, 372, ..., 588: those from 360 to 468 (10 per series) were seen
    assert main(["backtest", str(run), "--data", str(csv), "--windows", "20", "--step", "12",
                 "--out", str(tmp_path / "cv.csv")]) == 0
    assert "xformer: warning: 20 of 40 backtest windows forecast steps the model was fitted on" in capsys.readouterr().err
    assert main(["backtest", str(run), "--data", str(csv), "--windows", "10", "--step", "12",
                 "--out", str(tmp_path / "cv10.csv")]) == 0  # rows 480 on: the test split only
    assert "fitted on" not in capsys.readouterr().err


# ---- 6. the forecast command's help and docs/series.md --------------------------------------------------------------
def test_forecast_help_names_the_output_of_both_formats(capsys):
    with pytest.raises(SystemExit):
        main(["forecast", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "for a long file (unique_id, ds, y) the columns unique_id, ds, y_hat and y_hat_q{q}" in text
    assert "or long (unique_id, ds, y: every series in it is forecast)" in text


def test_the_docs_example_of_a_non_numeric_value_is_the_real_message(tmp_path):
    doc = " ".join((ROOT / "docs" / "series.md").read_text().split())
    example = doc.split("A value column holding text (`")[1].split(": ...`")[0]  # column 'OT' of FILE holds ...
    frame = synthetic_frame(n_rows=20, n_channels=1).rename(columns={"x0": "OT"}).astype({"OT": object})
    for value, expected in (("abc", example.replace("FILE", str(tmp_path / "v.csv"))),
                            ("n/a", "missing values in column 'OT'")):  # pandas reads n/a as missing
        frame.loc[4, "OT"] = value
        frame.to_csv(tmp_path / "v.csv", index=False)
        with pytest.raises(ConfigError) as error:
            read_raw_series(tmp_path / "v.csv", "date")
        assert str(error.value).startswith(expected)


def test_quantile_column_names_keep_levels_apart_and_read_back():
    from xformer.forecast.frames import quantile_column
    from xformer.metrics_forecast import quantile_columns

    levels = [0.1, 0.5, 0.9, 0.9999999, 1e-05]
    names = [quantile_column(q) for q in levels]
    assert names[:3] == ["y_hat_q0.1", "y_hat_q0.5", "y_hat_q0.9"] and len(set(names)) == len(names)
    frame = pd.DataFrame({"y_hat": [1.0], **{name: [1.0] for name in names}})
    assert sorted(quantile_columns(frame)) == sorted(levels)


@pytest.mark.parametrize("season, scale", [(1, 4 / 3), (2, 2.0)])
def test_mase_is_the_mae_over_the_in_sample_seasonal_naive_mae(season, scale):
    """MASE = mean |y - y_hat| / (1/(T-m) sum_{t>m} |x_t - x_{t-m}|) (Hyndman & Koehler 2006): errors 1 and 2
    (MAE 1.5, MSE 2.5) over the history 0, 1, 3, 2 (naive MAE 4/3 at m = 1, (3 + 1)/2 at m = 2)."""
    assert mase([1.0, 3.0], [2.0, 1.0], [0.0, 1.0, 3.0, 2.0], season) == pytest.approx(1.5 / scale)
