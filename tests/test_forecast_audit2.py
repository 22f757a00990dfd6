"""Forecasting defects found by a second user audit, each pinned: a classification run refused by the forecasting
commands, futr_df dates of another kind, a freq the dates are not on (and forecast dates that skipped a step), a
run evaluated on other data scaled as its own training data, no look-ahead across split borders when filling
gaps, backtests of covariate models with h < horizon, futr_df messages, and the benchmark's --out."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from xformer.cli import main
from xformer.config import ConfigError
from xformer.forecast import Forecaster
from xformer.forecast.frames import future_dates, parse_freq

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(input_len=24, horizon=6, patch_len=8, stride=4, d_model=8, n_layers=1, n_heads=2, epochs=1,
            batch_size=32, device="cpu")
CORE = {"d_model": 8, "n_layers": 1, "n_heads": 2, "d_ff": 16}
N = 120


def values(k: int, n: int = N) -> np.ndarray:
    t = np.arange(n)
    return (k + 1) * np.sin(2 * np.pi * t / 12 + k) + 5 * k + 0.1 * np.random.default_rng(k).standard_normal(n)


def long_frame(dates=None, n: int = N) -> pd.DataFrame:
    dates = pd.date_range("2022-01-01", periods=n, freq="h") if dates is None else dates
    return pd.concat([pd.DataFrame({"unique_id": f"s{k}", "ds": dates, "y": values(k, n), "price": values(k + 2, n)})
                      for k in range(2)], ignore_index=True)


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def train_run(tmp_path, recipe: dict, name: str) -> Path:
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(recipe))
    run = tmp_path / name
    assert main(["train", str(tmp_path / f"{name}.yaml"), "--out", str(run), "--quiet", "--threads", "1"]) == 0
    return run


# ---- 1. a series classification run is not a forecaster -----------------------------------------------------
def test_a_series_classification_run_is_refused_by_the_forecasting_commands(tmp_path, capsys):
    recipe = {"model": {"architecture": "encoder", "core": CORE,
                        "tokenizer": {"name": "series_patches", "args": {"patch_len": 8, "stride": 4, "revin": False}},
                        "head": {"name": "classification", "args": {"pool": "mean"}}},
              "data": {"name": "series_classification", "args": {"val_fraction": 0.1}},
              "train": {"steps": 2, "batch_size": 16, "eval_every": 2}}
    run = train_run(tmp_path, recipe, "classify")
    assert (run / "series_scaler.json").is_file()  # what made it look like a forecasting run
    message = f"{run} is not a forecasting run (its head is classification); give the run folder of a forecaster"
    with pytest.raises(ConfigError) as e:
        Forecaster.from_run(run)
    assert str(e.value) == message
    long_frame().to_csv(tmp_path / "data.csv", index=False)
    capsys.readouterr()
    for command in (["forecast", str(run), "--data", str(tmp_path / "data.csv")],
                    ["backtest", str(run), "--data", str(tmp_path / "data.csv"), "--windows", "1"]):
        assert main(command) == 2
        assert one_line(capsys) == f"xformer: error: {message}\n"


# ---- 2, 6, 7. future-known covariates -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def futr_model():
    torch.manual_seed(0)
    df = long_frame()
    history = df.groupby("unique_id").head(N - 6).reset_index(drop=True)
    futr = df.groupby("unique_id").tail(6)[["unique_id", "ds", "price"]].reset_index(drop=True)
    torch.set_num_threads(1)
    return Forecaster(**TINY, futr_exog=["price"]).fit(history), history, futr, df


@pytest.mark.parametrize("change, futr_kind", [
    (lambda ds: ds.dt.tz_localize("UTC"), "dates in time zone UTC"),
    (lambda ds: pd.Series(np.arange(len(ds)) + 1000, index=ds.index), "whole-number steps"),
])
def test_futr_df_dates_of_another_kind_are_refused_in_one_line(futr_model, tmp_path, capsys, change, futr_kind):
    f, history, futr, _ = futr_model
    other = futr.assign(ds=change(futr["ds"]))
    with pytest.raises(ConfigError, match=f"futr_df's ds holds {futr_kind} .* but the data's ds holds dates without "
                                          r"a time zone .*; write futr_df's ds as the data's") as e:
        f.predict(history, futr_df=other)
    assert "\n" not in str(e.value)
    run = f.save(tmp_path / "run")
    history.to_csv(tmp_path / "history.csv", index=False)
    other.to_csv(tmp_path / "futr.csv", index=False)
    data, futr_file = str(tmp_path / "history.csv"), str(tmp_path / "futr.csv")
    assert main(["forecast", str(run), "--data", data, "--futr", futr_file]) == 2
    assert f"--futr {futr_file}'s ds holds {futr_kind}" in one_line(capsys)  # the command names its option


def test_futr_df_dates_in_another_time_zone_are_the_same_instants(futr_model):
    f, history, futr, _ = futr_model
    zoned = history.assign(ds=history["ds"].dt.tz_localize("UTC"))
    berlin = futr.assign(ds=futr["ds"].dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin"))
    expected = f.predict(zoned, futr_df=futr.assign(ds=futr["ds"].dt.tz_localize("UTC")))
    pd.testing.assert_frame_equal(f.predict(zoned, futr_df=berlin), expected)


def test_backtest_with_future_known_covariates_needs_h_equal_to_the_horizon(futr_model, tmp_path, capsys):
    f, _, _, df = futr_model
    with pytest.raises(ConfigError, match=r"with future-known covariates \(\['price'\]\) h must equal the horizon 6: "
                                          "the model reads them up to the horizon's end") as e:
        f.cross_validation(df, n_windows=2, h=3, fit=False)
    assert "futr_df" not in str(e.value) and "--futr" not in str(e.value)
    assert len(f.cross_validation(df, n_windows=2, h=6, fit=False)) == 2 * 2 * 6
    run = f.save(tmp_path / "run")
    df.to_csv(tmp_path / "data.csv", index=False)
    assert main(["backtest", str(run), "--data", str(tmp_path / "data.csv"), "--windows", "2", "--h", "3"]) == 2
    assert "h must equal the horizon 6" in one_line(capsys)


def test_futr_df_messages_name_what_futr_df_needs(futr_model):
    f, history, futr, _ = futr_model
    with pytest.raises(ConfigError) as e:
        f.predict(history, futr_df=futr.drop(columns="unique_id"))
    assert str(e.value) == ("futr_df has no column 'unique_id'; it needs unique_id, ds and the covariate columns "
                            "['price'] (it has ['ds', 'price'])")
    with pytest.raises(ConfigError) as e:
        f.predict(history, futr_df=futr.assign(ds=futr["ds"].astype(str).where(futr.index != 2, "soon")))
    assert "row 3 holds 'soon', which is not a date" in str(e.value) and "date_column" not in str(e.value)


# ---- 3, 9. frequencies ----------------------------------------------------------------------------------
def one_series(dates) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": "a", "ds": dates, "y": np.sin(np.arange(len(dates)) / 3)})


@pytest.mark.parametrize("dates, freq, suggested", [
    (pd.date_range("2020-01-06", periods=60, freq="W-MON"), "W", "'W-MON'"),  # Mondays; W is W-SUN
    (pd.date_range("2000-01-31", periods=60, freq="ME"), "MS", "'ME'"),  # month ends, not month starts
    (pd.date_range("2000-01-01", periods=60, freq="h"), "D", "'h'"),  # hourly rows
    (pd.date_range("2000-01-01", periods=60, freq="2h"), "h", "'2h'"),  # every other hour
    (pd.Index(np.arange(60) * 5 + 100), 1, "5"),  # integer steps of 5
])
def test_a_freq_the_dates_are_not_on_is_refused_at_fit_naming_the_suggested_one(dates, freq, suggested):
    with pytest.raises(ConfigError, match=f"freq .* does not fit series 'a': .*; its (dates|steps) suggest freq "
                                          f"{suggested}: pass that, or leave freq out to infer it") as e:
        Forecaster(**TINY, freq=freq).fit(one_series(dates))
    assert "\n" not in str(e.value)


def test_a_freq_the_dates_are_on_is_kept_and_forecasts_continue_every_step():
    mondays = pd.date_range("2020-01-06", periods=60, freq="W-MON")
    f = Forecaster(**TINY, freq="W-MON").fit(one_series(mondays))
    assert list(f.predict(one_series(mondays))["ds"]) == [mondays[-1] + pd.Timedelta(weeks=k) for k in range(1, 7)]
    gaps = one_series(mondays).drop(index=[10, 11, 30])  # missing rows: timestamps of the grid, filled by the policy
    with pytest.raises(ConfigError, match="series 'a' lacks 3 timestamps of freq W-MON"):
        Forecaster(**TINY, freq="W-MON").fit(gaps)
    assert len(Forecaster(**TINY, freq="W-MON", missing="interpolate").fit(gaps).predict(gaps)) == 6
    steps = one_series(pd.Index(np.arange(60) * 5 + 100))
    assert list(Forecaster(**TINY, freq=5).fit(steps).predict(steps)["ds"]) == [395 + 5 * k for k in range(1, 7)]


def test_an_explicit_freq_at_load_is_checked_against_the_data(tmp_path):
    hourly = one_series(pd.date_range("2000-01-01", periods=60, freq="h"))
    run = Forecaster(**TINY).fit(hourly).save(tmp_path / "run")
    with pytest.raises(ConfigError, match="freq D does not fit series 'a'.*suggest freq 'h'"):
        Forecaster.load(run, freq="D").predict(hourly)
    with pytest.raises(ConfigError, match="freq h does not fit series 'a'.*suggest freq 'D'"):
        Forecaster.load(run).predict(one_series(pd.date_range("2000-01-01", periods=60, freq="D")))


@pytest.mark.parametrize("last, freq", [
    (pd.Timestamp("2020-03-02"), "W-MON"), (pd.Timestamp("2020-03-01"), "MS"), (pd.Timestamp("2020-02-29"), "ME"),
    (pd.Timestamp("2020-03-02 05:00", tz="UTC"), "h"), (pd.Timestamp("2020-03-06"), "B"),
    (pd.Timestamp("2020-03-02"), "W-SUN"), (pd.Timestamp("2020-01-15"), "MS"),  # off the anchor: no step skipped
])
def test_future_dates_are_last_plus_k_steps(last, freq):
    offset = parse_freq(freq)
    assert list(future_dates(last, offset, 4)) == [last + k * offset for k in range(1, 5)]


# ---- 4. a run evaluated on other data: scaled by that data's training rows, or (scaler=run) as the run's -----
def test_evaluate_on_other_data_scales_it_with_the_runs_statistics_when_asked(tmp_path):
    from xformer.data.series import split_borders
    from xformer.train.run import evaluate_run, load_run_model

    t = np.arange(300)
    frame = pd.DataFrame({"date": pd.date_range("2021-01-01", periods=300, freq="h"),
                          "load": np.sin(2 * np.pi * t / 24) + 0.1 * np.random.default_rng(0).standard_normal(300),
                          "temp": np.cos(2 * np.pi * t / 24)})
    frame.to_csv(tmp_path / "a.csv", index=False)
    recipe = {"model": {"architecture": "encoder", "core": CORE,
                        # without RevIN (which takes each window's level out and puts it back) a shift is an error
                        "tokenizer": {"name": "series_patches", "args": {"patch_len": 8, "stride": 4, "revin": False}},
                        "head": {"name": "forecast"}},
              "data": {"name": "csv_series", "args": {"path": str(tmp_path / "a.csv"), "input_len": 24, "horizon": 8}},
              "train": {"steps": 4, "batch_size": 16, "eval_every": 4}}
    run = train_run(tmp_path, recipe, "series")
    frame.to_csv(tmp_path / "same.csv", index=False)
    shifted = frame.assign(load=frame["load"] + 3.0, temp=frame["temp"] - 2.0)
    shifted.to_csv(tmp_path / "shifted.csv", index=False)
    own = evaluate_run(run, data_overrides=[f"data.args.path={tmp_path / 'same.csv'}", "data.args.scaler=run"])
    other = evaluate_run(run, data_overrides=[f"data.args.path={tmp_path / 'shifted.csv'}", "data.args.scaler=run"])
    assert other["test_mse"] > own["test_mse"] + 0.5  # the level shift is seen, not standardised away
    # by default each data set is standardised by its own training rows (the literature's protocol): a constant
    # shift of every column is then standardised away, exactly
    default = evaluate_run(run, data_overrides=[f"data.args.path={tmp_path / 'shifted.csv'}"])
    unshifted = evaluate_run(run, data_overrides=[f"data.args.path={tmp_path / 'same.csv'}"])
    assert default["test_mse"] == pytest.approx(unshifted["test_mse"], rel=1e-5)

    stats = json.loads((run / "series_scaler.json").read_text())
    z = (shifted[["load", "temp"]].to_numpy() - np.array(stats["mean"])) / np.array(stats["scale"])
    start, end = split_borders(len(z), 24)[2]
    _, model = load_run_model(run)
    windows = np.stack([z[i:i + 32] for i in range(start, end - 32 + 1)])
    with torch.no_grad():
        prediction = model({"inputs": torch.as_tensor(windows[:, :24], dtype=torch.float32)})["prediction"].numpy()
    errors = prediction - windows[:, 24:]
    assert other["test_mse"] == pytest.approx(float(np.mean(errors ** 2)), rel=1e-4)
    assert other["test_mae"] == pytest.approx(float(np.mean(np.abs(errors))), rel=1e-4)


def test_the_scaler_data_argument_is_checked_in_one_line():
    from xformer.data.series import csv_series

    with pytest.raises(ConfigError, match=r"data.args.scaler must be \{mean: \[...\], scale: \[...\]\}, 3 finite "
                                          "numbers each"):
        csv_series(input_len=24, horizon=8, scaler={"mean": [0.0, 1.0], "scale": [1.0, 1.0]})
    with pytest.raises(ConfigError, match="scales above 0"):
        csv_series(input_len=24, horizon=8, scaler={"mean": [0.0] * 3, "scale": [1.0, 0.0, 1.0]})
    given = csv_series(input_len=24, horizon=8, scaler={"mean": [1.0, 2.0, 3.0], "scale": [2.0, 2.0, 2.0]})
    assert given.scaler.mean_.tolist() == [1.0, 2.0, 3.0] and given.scaler.scale_.tolist() == [2.0, 2.0, 2.0]


# ---- 5. gaps filled without look-ahead across split borders -------------------------------------------------
def gap_across(frame: pd.DataFrame, border: int, column) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``frame`` with rows border - 3 .. border + 1 of ``column`` missing, and the same with every value of the
    frame after that gap changed: what lies before ``border`` is the same in both."""
    gap = frame.copy()
    gap.loc[gap.index[border - 3:border + 2], column] = np.nan
    later = gap.copy()
    later.loc[later.index[border + 2:], column] = later.loc[later.index[border + 2:], column] + 50.0
    return gap, later


def test_series_training_rows_are_filled_from_the_training_rows_only():
    from xformer.data.series import read_raw_series, series_bundle, split_borders

    frame = pd.DataFrame({"date": pd.date_range("2021-01-01", periods=400, freq="h"), "x": values(0, 400),
                          "w": values(1, 400)})
    (_, train_end), (_, val_end), _ = split_borders(400, 24)
    for border, split in ((train_end, "train"), (val_end, "val")):
        bundles = [series_bundle(read_raw_series(f, missing="interpolate"), 24, 8, missing="interpolate")
                   for f in gap_across(frame, border, ["x", "w"])]
        if split == "train":  # the scaler is fitted on the training rows: it must not see the validation rows
            np.testing.assert_array_equal(bundles[0].scaler.mean_, bundles[1].scaler.mean_)
            np.testing.assert_array_equal(bundles[0].scaler.scale_, bundles[1].scaler.scale_)
        first, second = (getattr(b, split) for b in bundles)
        assert len(first) == len(second)
        for i in range(len(first)):  # inputs and targets, the last targets before the border included
            for key in ("inputs", "targets"):
                torch.testing.assert_close(first[i][key], second[i][key], rtol=0, atol=0)


def test_forecaster_fit_and_backtest_fill_the_training_part_from_its_own_rows():
    df = long_frame(n=150)[["unique_id", "ds", "y"]]
    s0 = df.index[df["unique_id"] == "s0"]
    kw = dict(TINY, missing="interpolate")

    def fitted(frame):  # val_size=24: the training part of every series is its first 126 rows
        torch.manual_seed(0)
        return Forecaster(**kw).fit(frame, val_size=24)

    gap, later = (pd.concat([f, df[df["unique_id"] != "s0"]]) for f in gap_across(df.loc[s0], 126, "y"))
    a, b = fitted(gap), fitted(later)
    assert a.stats == b.stats
    for k, v in a.model.state_dict().items():  # one epoch, no early stopping: the weights follow the training items
        torch.testing.assert_close(v, b.model.state_dict()[k], rtol=0, atol=0)
    # cross_validation(fit=True, val_size=24): one window of 6 at the end; the training part ends 30 rows before
    gap, later = (pd.concat([f, df[df["unique_id"] != "s0"]]) for f in gap_across(df.loc[s0], 150 - 30, "y"))
    stats = []
    for frame in (gap, later):
        f = Forecaster(**kw)
        f.cross_validation(frame, n_windows=1, fit=True, val_size=24)
        stats.append(f.stats)
    assert stats[0] == stats[1]


# ---- 8. the benchmark's --out ------------------------------------------------------------------------------
def test_the_etth1_benchmark_refuses_an_existing_out_unless_overwrite(tmp_path):
    out = tmp_path / "recorded.json"
    out.write_text('{"recorded": true}\n')
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "etth1_backtest.py"), "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (f"etth1_backtest.py: error: --out {out} already exists; give a new file name, or add "
                           "--overwrite to replace it\n")
    assert out.read_text() == '{"recorded": true}\n'
