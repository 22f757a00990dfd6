"""An integer ``ds`` (neuralforecast's integer time index, as in M4): forecasts continue at last + k * step,
the same numbers as the same values with dates, through save/load, the backtest, metrics and the CLI."""
import json

import numpy as np
import pandas as pd
import pytest

from xformer.cli import main
from xformer.config import ConfigError
from xformer.forecast import Forecaster, evaluate

TINY = dict(input_len=24, horizon=6, patch_len=8, stride=4, d_model=8, n_layers=1, n_heads=2, epochs=1,
            batch_size=32, device="cpu")


def frame(step=1, dates=False, lengths=(90, 70)):
    parts = []
    for k, n in enumerate(lengths):
        t = np.arange(n)
        y = (k + 1) * np.sin(2 * np.pi * t / 12 + k) + 3 * k + 0.1 * np.random.default_rng(k).standard_normal(n)
        start = 100 * k  # different start points
        ds = pd.date_range("2022-01-01", periods=n, freq="h") + pd.Timedelta(hours=start) if dates \
            else start + step * t
        parts.append(pd.DataFrame({"unique_id": f"s{k}", "ds": ds, "y": y}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def fitted():
    return Forecaster(**TINY, quantiles=[0.1, 0.5, 0.9]).fit(frame())


def test_forecast_continues_the_integer_index_with_the_numbers_of_dated_rows(fitted):
    out = fitted.predict(frame())
    assert pd.api.types.is_integer_dtype(out["ds"])
    assert list(out[out["unique_id"] == "s0"]["ds"]) == list(range(90, 96))
    assert list(out[out["unique_id"] == "s1"]["ds"]) == list(range(170, 176))
    # both fitted here, under conftest's one thread: the module-scoped fixture is set up before that function-scoped
    # setting, so it trains with the process's thread count, and float sums split over threads differ in the last bits
    out = Forecaster(**TINY, quantiles=[0.1, 0.5, 0.9]).fit(frame()).predict(frame())
    dated = Forecaster(**TINY, quantiles=[0.1, 0.5, 0.9]).fit(frame(dates=True)).predict(frame(dates=True))
    np.testing.assert_array_equal(out["y_hat"], dated["y_hat"])  # without calendar features ds is only an order
    np.testing.assert_array_equal(out["y_hat_q0.9"], dated["y_hat_q0.9"])


def test_the_step_is_inferred_or_given():
    f = Forecaster(**TINY).fit(frame(step=10))
    assert f.freq == 10
    assert list(f.predict(frame(step=10), h=3).query("unique_id == 's0'")["ds"]) == [900, 910, 920]
    skipped = frame()
    skipped.loc[skipped.index[5:], "ds"] += 1  # steps of 1 and one of 2 in each series: step 5 has no row
    with pytest.raises(ConfigError, match="series 's0' lacks 1 timestamp of freq 1 \\(the first 5\\)") as e:
        Forecaster(**TINY).fit(skipped.query("unique_id == 's0'"))
    assert "\n" not in str(e.value)
    g = Forecaster(**TINY, freq=1, missing="interpolate").fit(skipped.query("unique_id == 's0'"))
    assert g.predict(skipped.query("unique_id == 's0'"), h=2)["ds"].tolist() == [91, 92]


def test_save_load_round_trips_the_integer_step(fitted, tmp_path):
    path = fitted.save(tmp_path / "run")
    assert json.loads((path / "forecaster.json").read_text())["freq"] == 1
    back = Forecaster.load(path)
    assert back.freq == 1
    pd.testing.assert_frame_equal(back.predict(frame()), fitted.predict(frame()))


def test_backtest_and_metrics_on_an_integer_index(fitted):
    df = frame()
    cv = fitted.cross_validation(df, n_windows=2, step=6, fit=False)
    s0 = cv[cv["unique_id"] == "s0"]
    assert s0["cutoff"].tolist() == [77] * 6 + [83] * 6 and s0["ds"].tolist() == list(range(78, 90))
    table = evaluate(cv, train_df=df, season=12)
    assert np.isfinite(table.loc["overall", "mase"])
    # MASE's in-sample rows end at the first cutoff, as with dates
    twin = Forecaster(**TINY, quantiles=[0.1, 0.5, 0.9]).fit(frame(dates=True))  # the same weights (first test)
    dated = twin.cross_validation(frame(dates=True), n_windows=2, step=6, fit=False)
    dated_table = evaluate(dated, train_df=frame(dates=True), season=12)
    np.testing.assert_allclose(table["mase"], dated_table["mase"])


def test_missing_values_interpolate_along_the_integer_index():
    from xformer.forecast.frames import fill_series
    df = frame(step=2, lengths=(90,))
    df.loc[10, "y"] = np.nan
    f = Forecaster(**TINY, missing="interpolate")
    panel = fill_series(f.read(df), f.config.missing)  # read keeps the gap; each history is filled after its cut
    assert panel.series["s0"].iloc[10] == pytest.approx((df["y"][9] + df["y"][11]) / 2)


@pytest.mark.parametrize("make, message", [
    (lambda: Forecaster(**TINY, calendar=["hour"]).fit(frame()),
     r"calendar features \['hour'\] need dates in ds, but ds holds integers"),
    (lambda: Forecaster(**TINY).fit(frame()).predict(frame(dates=True)),
     r"ds holds dates .* but the forecaster was fitted on integers \(freq 1\)"),
    (lambda: Forecaster(**TINY).fit(frame(dates=True)).predict(frame()),
     r"ds holds integers .* but the forecaster was fitted on dates \(freq h\)"),
    (lambda: Forecaster(**TINY, freq=0), r"freq 0: an integer step must be at least 1"),
    (lambda: Forecaster(**TINY, freq="fortnightly"), r"freq 'fortnightly' is not a pandas frequency"),
])
def test_one_line_errors(make, message):
    with pytest.raises(ConfigError, match=message) as e:
        make()
    assert "\n" not in str(e.value)


def test_cli_forecast_at_an_integer_origin(fitted, tmp_path, capsys):
    run = fitted.save(tmp_path / "run")
    data, out = tmp_path / "long.csv", tmp_path / "f.csv"
    frame().to_csv(data, index=False)
    assert main(["forecast", str(run), "--data", str(data), "--at", "80", "--out", str(out), "--quiet"]) == 0
    errors = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    written = pd.read_csv(out)
    assert written.query("unique_id == 's0'")["ds"].tolist() == list(range(81, 87))
    assert "s1" not in set(written["unique_id"])  # s1 starts at 100, after --at
    assert errors["mse"] > 0
    assert main(["forecast", str(run), "--data", str(data), "--at", "2022-01-01"]) == 2
    err = capsys.readouterr().err
    assert "is not a whole number (ds holds integers)" in err and "Traceback" not in err


# ---- wide tables: an integer date column, or none at all (date_column=None numbers the rows) -----------------

def wide(dates=False, n=80):
    t = np.arange(n)
    values = {"a": np.sin(2 * np.pi * t / 12), "b": np.cos(2 * np.pi * t / 12) + 0.01 * t}
    return pd.DataFrame({"date": pd.date_range("2022-01-01", periods=n, freq="h") if dates else 500 + t, **values})


def test_read_series_keeps_an_integer_time_index_or_numbers_the_rows():
    from xformer.data.series import read_series
    frame = read_series(wide())
    assert frame.index.name == "date" and frame.index.tolist() == list(range(500, 580))
    rows = read_series(wide().drop(columns="date"), date_column=None)
    assert rows.index.tolist() == list(range(80)) and list(rows.columns) == ["a", "b"]
    gap = wide()
    gap.loc[3, "a"] = np.nan
    filled = read_series(gap, missing="interpolate")
    assert filled["a"].iloc[3] == pytest.approx((gap["a"][2] + gap["a"][4]) / 2)
    with pytest.raises(ConfigError, match="or to null to number the rows 0, 1, 2") as e:
        read_series(wide().drop(columns="date"))
    assert "\n" not in str(e.value)


def test_wide_integer_dates_forecast_like_dated_rows():
    out = Forecaster(**TINY).fit(wide()).predict(wide())
    assert out.index.name == "date" and out.index.tolist() == list(range(580, 586))
    dated = Forecaster(**TINY).fit(wide(dates=True)).predict(wide(dates=True))
    np.testing.assert_array_equal(out.to_numpy(), dated.to_numpy())


def test_cli_train_and_forecast_a_file_without_dates(tmp_path, capsys):
    data = tmp_path / "values.csv"
    wide(n=300).drop(columns="date").to_csv(data, index=False)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""
model:
  architecture: encoder
  core: {{d_model: 8, n_layers: 1, n_heads: 2, d_ff: 16}}
  tokenizer: {{name: series_patches, args: {{patch_len: 8, stride: 4}}}}
  head: {{name: forecast}}
data: {{name: csv_series, args: {{path: {data}, date_column: null, input_len: 24, horizon: 6}}}}
train: {{steps: 4, batch_size: 16, eval_every: 4}}
""")
    run, out = tmp_path / "run", tmp_path / "f.csv"
    assert main(["train", str(recipe), "--out", str(run), "--quiet", "--threads", "1"]) == 0
    assert main(["forecast", str(run), "--data", str(data), "--at", "250", "--out", str(out), "--quiet"]) == 0
    written = pd.read_csv(out)
    assert list(written.columns) == ["step", "a", "b"] and written["step"].tolist() == list(range(251, 257))
    assert main(["forecast", str(run), "--data", str(data), "--at", "2022-01-01"]) == 2
    assert "is not a whole number" in capsys.readouterr().err
    assert main(["train", str(recipe), "data.args.split=ett", "--out", str(tmp_path / "r2"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "integer time steps have no days; set data.args.rows_per_day" in err and "Traceback" not in err


def test_whole_numbers_read_as_floats_are_steps_and_other_numbers_are_refused():
    floats = frame().astype({"ds": "float64"})  # as a CSV column with a gap comes back
    assert Forecaster(**TINY).fit(floats).predict(floats, h=1)["ds"].tolist() == [90, 170]
    half = floats.copy()
    half.loc[4, "ds"] = 3.5
    with pytest.raises(ConfigError, match=r"column 'ds' of the long-format frame: row 5 holds 3.5; time steps must "
                                          r"be whole numbers \(or give dates\)"):
        Forecaster(**TINY).fit(half)


def test_infinite_values_are_refused_in_one_line():
    from xformer.data.series import read_series
    long = frame()
    long.loc[7, "y"] = np.inf
    with pytest.raises(ConfigError, match=r"column 'y' holds an infinite value inf \(row 8, series 's0'\); y must be "
                                          r"finite numbers"):
        Forecaster(**TINY).fit(long)
    table = wide()
    table.loc[2, "b"] = -np.inf
    with pytest.raises(ConfigError, match=r"column 'b' of the series holds -inf at row 3; values must be finite"):
        read_series(table)
