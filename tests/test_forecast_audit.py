"""Forecasting defects found by a user audit, each pinned: warnings printed once by the commands, gaps filled
without look-ahead, runs of xformer train not silently replaced by fit, --at in the data's time zone, wide
columns of text or of nothing, MASE's in-sample rows, files separated by ';' or tabs, a saved pandas index."""
import datetime
import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest

from xformer.cli import main
from xformer.config import ConfigError
from xformer.forecast import Forecaster, evaluate
from xformer.metrics_forecast import naive_scale

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

TINY = dict(input_len=24, horizon=6, patch_len=8, stride=4, d_model=8, n_layers=1, n_heads=2, epochs=1,
            batch_size=32, device="cpu")
N = 120  # rows per series


def values(k: int, n: int = N) -> np.ndarray:
    t = np.arange(n)
    return (k + 1) * np.sin(2 * np.pi * t / 12 + k) + 5 * k + 0.1 * np.random.default_rng(k).standard_normal(n)


def long_frame(dates=None) -> pd.DataFrame:
    dates = pd.date_range("2022-01-01", periods=N, freq="h") if dates is None else dates
    return pd.concat([pd.DataFrame({"unique_id": f"s{k}", "ds": dates, "y": values(k), "x": values(k + 2)})
                      for k in range(2)], ignore_index=True)


def wide_frame() -> pd.DataFrame:
    return pd.DataFrame({"date": pd.date_range("2022-01-01", periods=N, freq="h"), "a": values(0), "b": values(1)})


# ---- 1. the commands print every warning once, after recording it ------------------------------------------
def test_command_warnings_are_printed_once_even_when_the_command_fails():
    """Re-showing a warning inside catch_warnings(record=True) appended it to the list being printed: a loop
    that filled the memory. So the command runs in a child process, capped in memory and time, whose output
    must be exactly one plain line per warning, then the command's own error."""
    script = textwrap.dedent("""
        import resource, warnings
        from xformer.config import ConfigError
        from xformer.forecast.frames import printing_short_series, report_short

        def command():
            warnings.warn("x", RuntimeWarning)
            warnings.warn("x", RuntimeWarning)
            report_short(["s9"], 30, "training")
            report_short(["s9"], 30, "training")
            raise ConfigError("the command's own error")

        with open("/proc/self/status") as f:
            size = next(int(line.split()[1]) for line in f if line.startswith("VmSize:")) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size + 2 ** 30, resource.getrlimit(resource.RLIMIT_AS)[1]))
        filters = list(warnings.filters)
        try:
            printing_short_series(command)
        except ConfigError as e:
            print(f"raised: {e}")
        print(f"filters restored: {warnings.filters == filters}")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.splitlines() == [
        "xformer: warning: x", "xformer: warning: 1 series shorter than 30 rows left out of training: 's9'"]
    assert done.stdout.splitlines() == ["raised: the command's own error", "filters restored: True"]


# ---- 2. gaps are filled from the rows up to each origin only ------------------------------------------------
def gap_before_and_change_after(frame: pd.DataFrame, origin, columns) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``frame`` with the 4 rows up to ``origin`` missing in ``columns``, and the same with 100 added to every
    value after ``origin``: what the origin may see is the same in both."""
    time = frame["ds"] if "ds" in frame.columns else frame["date"]
    gap = frame.copy()
    gap.loc[(time > origin - pd.Timedelta(hours=4)) & (time <= origin), columns] = np.nan
    changed = gap.copy()
    changed.loc[time > origin, columns] += 100.0
    return gap, changed


def test_cross_validation_fills_each_window_only_from_rows_up_to_its_cutoff(tmp_path):
    cutoff = long_frame()["ds"].iloc[N - 7]  # n_windows=1, h=6: the window is the last 6 rows
    a, b = gap_before_and_change_after(long_frame(), cutoff, ["y", "x"])
    f = Forecaster(**TINY, missing="interpolate", hist_exog=["x"])
    cv_a = f.cross_validation(a, n_windows=1)  # fit=True: training, scaling and forecast from rows <= cutoff
    f.fit(a[a["ds"] <= cutoff])  # the backtest's model: cross_validation leaves f as it was
    cv_b = Forecaster(f.config).cross_validation(b, n_windows=1)
    assert (cv_a["cutoff"] == cutoff).all() and np.isfinite(cv_a["y_hat"]).all()
    np.testing.assert_allclose(cv_b["y"], cv_a["y"] + 100.0)  # the windows' truth did change
    np.testing.assert_array_equal(cv_a["y_hat"], cv_b["y_hat"])
    same = [f.cross_validation(frame, n_windows=1, fit=False)["y_hat"] for frame in (a, b)]  # fit=False
    np.testing.assert_array_equal(*same)
    # xformer backtest: the same windows from files
    path = f.save(tmp_path / "run")
    for name, frame in (("a", a), ("b", b)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        assert main(["backtest", str(path), "--data", str(tmp_path / f"{name}.csv"), "--windows", "1",
                     "--out", str(tmp_path / f"cv_{name}.csv"), "--quiet"]) == 0
    np.testing.assert_array_equal(pd.read_csv(tmp_path / "cv_a.csv")["y_hat"],
                                  pd.read_csv(tmp_path / "cv_b.csv")["y_hat"])


@pytest.mark.parametrize("layout", ["long", "wide"])
def test_forecast_at_a_past_origin_fills_the_history_from_rows_up_to_it(layout, tmp_path, capsys):
    frame = long_frame() if layout == "long" else wide_frame()
    time = frame["ds"] if layout == "long" else frame["date"]
    origin = time.iloc[N - 31]
    a, b = gap_before_and_change_after(frame, origin, ["y", "x"] if layout == "long" else ["a", "b"])
    settings = dict(**TINY, missing="interpolate", **({"hist_exog": ["x"]} if layout == "long" else {}))
    f = Forecaster(**settings).fit(a[time <= origin - pd.Timedelta(hours=8)])
    run = f.save(tmp_path / "run")
    written = []
    for name, data in (("a", a), ("b", b)):
        data.to_csv(tmp_path / f"{name}.csv", index=False)
        out = tmp_path / f"f_{name}.csv"
        assert main(["forecast", str(run), "--data", str(tmp_path / f"{name}.csv"), "--at", str(origin),
                     "--out", str(out), "--quiet"]) == 0
        written.append(pd.read_csv(out))
    scores = [line for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert len(scores) == 2 and json.loads(scores[-1])["mse"] > 0  # scored against the later rows
    pd.testing.assert_frame_equal(written[0], written[1])
    assert np.isfinite(written[0].select_dtypes("number").to_numpy()).all()
    # in Python: predict on the history cut at the origin, the rows after it given or not
    cut = f.predict(a[time <= origin])
    np.testing.assert_allclose(written[0].select_dtypes("number").to_numpy(),
                               cut.select_dtypes("number").to_numpy(), rtol=1e-7)


# ---- 3. a run of xformer train keeps its model -------------------------------------------------------------
def test_a_run_of_xformer_train_is_not_replaced_by_fit(tmp_path, capsys):
    data = tmp_path / "wide.csv"
    wide_frame().to_csv(data, index=False)
    recipe = tmp_path / "dlinear.yaml"
    recipe.write_text(f"""
model: {{baseline: {{name: dlinear, args: {{kernel_size: 5}}}}}}
data: {{name: csv_series, args: {{path: {data}, input_len: 24, horizon: 6}}}}
train: {{steps: 4, batch_size: 16, eval_every: 4, device: cpu}}
""")
    assert main(["train", str(recipe), "--out", str(tmp_path / "run"), "--quiet", "--threads", "1"]) == 0
    f = Forecaster.from_run(tmp_path / "run")
    model = f.model
    for attempt in (lambda: f.fit(data), lambda: f.cross_validation(data, n_windows=2)):
        with pytest.raises(ConfigError, match=r"trained model of an xformer train run .*pass fit=False to backtest "
                                              r"the run as it is") as e:
            attempt()
        assert "\n" not in str(e.value)
    assert f.model is model and type(model).__name__ == "DLinear" and f.columns == ["a", "b"]
    cv = f.cross_validation(data, n_windows=2, fit=False)  # the run's own model, as trained
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = f.predict(wide_frame().iloc[:N - 6])
    np.testing.assert_allclose(cv[cv["ds"] > cv["cutoff"].max()].sort_values(["unique_id", "ds"])["y_hat"],
                               direct[["a", "b"]].to_numpy().T.ravel(), rtol=1e-6)


# ---- 4. --at in the data's time zone -----------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["long", "wide"])
def test_forecast_at_reads_a_naive_date_in_the_time_zone_of_the_data(layout, tmp_path, capsys):
    local = pd.date_range("2016-07-10", periods=N, freq="h", tz=datetime.timezone(datetime.timedelta(hours=2)))
    frame = long_frame(local)[["unique_id", "ds", "y"]] if layout == "long" else wide_frame().assign(date=local)
    column = "ds" if layout == "long" else "date"
    path = tmp_path / "data.csv"
    frame.assign(**{column: frame[column].astype(str)}).to_csv(path, index=False)
    assert "+02:00" in path.read_text().splitlines()[1]
    run = Forecaster(**TINY).fit(path).save(tmp_path / "run")
    outputs = []
    for at in ("2016-07-13 01:00", "2016-07-12 23:00Z", "2016-07-13 02:00+03:00"):  # one instant, three ways
        out = tmp_path / f"f{len(outputs)}.csv"
        assert main(["forecast", str(run), "--data", str(path), "--at", at, "--out", str(out), "--quiet"]) == 0
        outputs.append(pd.read_csv(out))
    first = outputs[0].iloc[0, 1] if layout == "long" else outputs[0].iloc[0, 0]
    assert first == "2016-07-13 02:00:00+02:00"  # the step after --at, read as local time
    for other in outputs[1:]:
        pd.testing.assert_frame_equal(other, outputs[0])
    naive = tmp_path / "naive.csv"
    frame.assign(**{column: frame[column].dt.tz_localize(None)}).to_csv(naive, index=False)
    capsys.readouterr()
    assert main(["forecast", str(run), "--data", str(naive), "--at", "2016-07-12 23:00Z"]) == 2
    err = capsys.readouterr().err
    assert "names a time zone but the dates hold none" in err and "Traceback" not in err


# ---- 5. wide columns of text or of nothing -----------------------------------------------------------------
@pytest.mark.parametrize("missing", ["error", "ffill", "interpolate"])
def test_wide_columns_without_values_or_with_text_are_refused_in_one_line(missing, tmp_path):
    fitted = Forecaster(**TINY).fit(wide_frame())
    empty = wide_frame().assign(c=np.nan)
    text = wide_frame().assign(station="A")
    for frame, message in ((empty, r"column 'c' of the series holds no value at all; drop it"),
                           (text, r"column 'station' of the series holds non-numeric value 'A' at row 1; values must "
                                  r"be numbers.*columns=\[")):
        for attempt in (lambda: Forecaster(**TINY, missing=missing).fit(frame), lambda: fitted.predict(frame)):
            with pytest.raises(ConfigError, match=message) as e:
                attempt()
            assert "\n" not in str(e.value) and "ffill" not in str(e.value)
    one = wide_frame().astype({"a": object})
    one.loc[5, "a"] = "n/a"  # one text cell among numbers is not a missing value to fill either
    with pytest.raises(ConfigError, match=r"column 'a' of the series holds non-numeric value 'n/a' at row 6"):
        Forecaster(**TINY, missing="ffill").fit(one)


# ---- 6. MASE's in-sample rows: in time order, dates as the reader parses them, gaps left out ----------------
def test_evaluate_takes_the_in_sample_rows_in_time_order_with_gaps_left_out():
    df = long_frame()[["unique_id", "ds", "y"]]
    cv = Forecaster(**TINY).cross_validation(df, n_windows=2)
    table = evaluate(cv, train_df=df, season=12)
    pd.testing.assert_frame_equal(evaluate(cv, train_df=df.sample(frac=1, random_state=0), season=12), table)
    history = df[(df["unique_id"] == "s0") & (df["ds"] <= cv["cutoff"].min())]["y"].to_numpy()
    assert table.loc["s0", "mase"] == pytest.approx(table.loc["s0", "mae"] / naive_scale(history, 12))
    # a missing y leaves out the two differences it is part of; the others keep their seasonal pairs
    gap = df.copy()
    gap.loc[30, "y"] = np.nan
    x = history.copy()
    x[30] = np.nan
    d = np.abs(x[12:] - x[:-12])
    scale = np.mean(d[~np.isnan(d)])
    assert np.isnan(d).sum() == 2
    assert evaluate(cv, train_df=gap, season=12).loc["s0", "mase"] == pytest.approx(table.loc["s0", "mae"] / scale)
    # dates written with changing UTC offsets (local time across a daylight-saving change) are read as UTC
    berlin = pd.date_range("2022-03-25", periods=N, freq="h", tz="Europe/Berlin")
    local = pd.DataFrame({"unique_id": "s0", "ds": berlin.astype(str), "y": values(0)})
    cv_local = Forecaster(**TINY).cross_validation(local, n_windows=1)
    utc = evaluate(cv_local, train_df=local.assign(ds=berlin.tz_convert("UTC")))
    pd.testing.assert_frame_equal(evaluate(cv_local, train_df=local.sample(frac=1, random_state=1)), utc)


# ---- 7, 8. files separated by ';' or tabs, and a saved pandas index ----------------------------------------
@pytest.mark.parametrize("sep, said", [(";", "';'"), ("\t", "tabs")])
def test_files_separated_by_semicolons_or_tabs_are_named_so(sep, said, tmp_path, capsys):
    from xformer.data.series import read_series
    path = tmp_path / "data.csv"
    long_frame().to_csv(path, index=False, sep=sep)
    for attempt in (lambda: Forecaster(**TINY).fit(path), lambda: read_series(path)):
        with pytest.raises(ConfigError, match=f"seems to be separated by {said} .*give a comma-separated CSV") as e:
            attempt()
        assert "\n" not in str(e.value) and "no date column" not in str(e.value)
    wide_frame().to_csv(tmp_path / "ok.csv", index=False)
    run = Forecaster(**TINY).fit(tmp_path / "ok.csv").save(tmp_path / "run")
    capsys.readouterr()
    assert main(["forecast", str(run), "--data", str(path)]) == 2
    assert f"seems to be separated by {said}" in capsys.readouterr().err


def test_the_index_a_dataframe_writes_is_not_a_series(tmp_path):
    from xformer.data.series import read_series
    with_index, without = tmp_path / "with_index.csv", tmp_path / "without.csv"
    wide_frame().to_csv(with_index)  # first column: unnamed, 0, 1, 2, ...
    wide_frame().to_csv(without, index=False)
    assert pd.read_csv(with_index).columns[0] == "Unnamed: 0"
    assert list(read_series(with_index).columns) == ["a", "b"]
    f = Forecaster(**TINY).fit(with_index)
    pd.testing.assert_frame_equal(f.predict(with_index), Forecaster(**TINY).fit(without).predict(without))
    assert f.stats.keys() == {"a", "b"}
    long_path = tmp_path / "long.csv"
    long_frame().to_csv(long_path)  # long files ignore it as any other column
    assert sorted(Forecaster(**TINY).fit(long_path).stats) == ["s0", "s1"]


# ---- 9. the smaller ones -----------------------------------------------------------------------------------
def test_forecast_options_are_checked_before_anything_is_written(tmp_path, capsys):
    df = pd.concat([long_frame()[["unique_id", "ds", "y"]],
                    pd.DataFrame({"unique_id": "late", "ds": pd.date_range("2022-01-04", periods=40, freq="h"),
                                  "y": 1.0})], ignore_index=True)
    data, out, plot = tmp_path / "long.csv", tmp_path / "f.csv", tmp_path / "f.png"
    df.to_csv(data, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = Forecaster(**TINY).fit(df).save(tmp_path / "run")
    command = ["forecast", str(run), "--data", str(data), "--out", str(out)]
    capsys.readouterr()
    assert main([*command, "--series", "s0"]) == 2
    assert "--series chooses the series to plot, and there is no --plot" in capsys.readouterr().err
    assert main([*command, "--plot", str(plot), "--series", "nope"]) == 2
    assert "--series nope: no such series" in capsys.readouterr().err
    assert not out.exists() and not plot.exists()
    assert main([*command, "--at", "2022-01-03 12:00", "--quiet"]) == 0
    assert "xformer: warning: 1 series starts after --at, not forecast: late" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"quantiles \[0.1, 0.1, 0.5\] name a level more than once"):
        Forecaster(**TINY, quantiles=[0.1, 0.1, 0.5])
