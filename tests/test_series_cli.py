"""Series runs from the command line: the DLinear recipe through `xformer train`, and `xformer forecast`."""
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from xformer.cli import main
from xformer.data.series import synthetic_frame

TASKS = Path(__file__).resolve().parents[1] / "tasks"
L, H = 48, 12
SMALL = [f"data.args.input_len={L}", f"data.args.horizon={H}", "train.epochs=2", "train.batch_size=32",
         "train.eval_every=11", "train.early_stopping.patience=null", "train.device=cpu"]


@pytest.fixture(scope="module")
def series_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("series") / "series.csv"
    synthetic_frame(n_rows=600, n_channels=2).to_csv(path, index=False)
    return path


def _train(recipe: str, run: Path, csv: Path, *overrides: str) -> dict:
    args = ["train", str(TASKS / recipe), "data.name=csv_series", f"data.args.path={csv}", *SMALL, *overrides,
            "--out", str(run)]
    assert main(args) == 0
    return json.loads((run / "metrics.json").read_text())


@pytest.fixture(scope="module")
def dlinear_run(tmp_path_factory, series_csv) -> Path:
    run = tmp_path_factory.mktemp("runs") / "dlinear"
    _train("dlinear_etth1.yaml", run, series_csv)
    return run


@pytest.fixture(scope="module")
def quantile_run(tmp_path_factory, series_csv) -> Path:
    run = tmp_path_factory.mktemp("runs") / "patchtst_q"
    _train("patchtst_etth1_96.yaml", run, series_csv, "model.tokenizer.args.patch_len=8",
           "model.tokenizer.args.stride=8", "model.head.args.quantiles=[0.1,0.5,0.9]", "train.lr=1e-3")
    return run


def test_dlinear_recipe_trains_from_the_cli_and_evaluates_alike(dlinear_run, capsys):
    metrics = json.loads((dlinear_run / "metrics.json").read_text())
    assert {"val_mse", "test_mse", "test_mae", "test_mse_original"} <= set(metrics)
    config = (dlinear_run / "config.yaml").read_text()
    assert "baseline:" in config and "n_channels: 2" in config and f"horizon: {H}" in config  # filled by the data
    capsys.readouterr()
    assert main(["evaluate", str(dlinear_run)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["test_mse"] == pytest.approx(metrics["test_mse"], rel=1e-6)
    # DLinear fits this seasonal series far better than repeating the last value (test MSE ~1.5 here)
    assert metrics["test_mse"] < 0.5
    report = json.loads((dlinear_run / "test_forecast_errors.json").read_text())  # the run folder's report
    assert len(report["mse_per_step"]) == H and report["mse"] == pytest.approx(metrics["test_mse"], rel=1e-6)
    assert np.mean(report["mse_per_step"]) == pytest.approx(report["mse"], rel=1e-9)
    assert (dlinear_run / "test_errors_per_step.png").stat().st_size > 5_000


def test_forecast_writes_the_model_forecast_on_the_data_scale(dlinear_run, series_csv, tmp_path):
    out = tmp_path / "forecast.csv"
    assert main(["forecast", str(dlinear_run), "--data", str(series_csv), "--out", str(out)]) == 0
    forecast = pd.read_csv(out, index_col="date", parse_dates=True)
    frame = pd.read_csv(series_csv, index_col="date", parse_dates=True)
    assert list(forecast.columns) == ["x0", "x1"] and len(forecast) == H
    assert (forecast.index == pd.date_range(frame.index[-1], periods=H + 1, freq="h")[1:]).all()
    # the same numbers by hand: scale with the run's training statistics, run the model, unscale
    from xformer.train.run import load_run_model

    stats = json.loads((dlinear_run / "series_scaler.json").read_text())
    mean, scale = np.array(stats["mean"]), np.array(stats["scale"])
    _, model = load_run_model(dlinear_run)
    x = torch.tensor((frame.to_numpy()[-L:] - mean) / scale, dtype=torch.float32)
    with torch.no_grad():
        expected = model({"inputs": x[None]})["prediction"][0].double().numpy() * scale + mean
    np.testing.assert_allclose(forecast.to_numpy(), expected, rtol=1e-5, atol=1e-5)


def test_forecast_at_a_past_date_prints_errors_and_plots_truth(quantile_run, series_csv, tmp_path, capsys):
    frame = pd.read_csv(series_csv, index_col="date", parse_dates=True)
    at = frame.index[500]
    out, png = tmp_path / "f.csv", tmp_path / "f.png"
    assert main(["forecast", str(quantile_run), "--data", str(series_csv), "--at", str(at), "--out", str(out),
                 "--plot", str(png)]) == 0
    forecast = pd.read_csv(out, index_col="date", parse_dates=True)
    assert forecast.index[0] == frame.index[501] and len(forecast) == H
    assert list(forecast.columns) == ["x0", "x1", "x0_q0.1", "x1_q0.1", "x0_q0.9", "x1_q0.9"]  # the median once
    assert (forecast["x0_q0.1"] <= forecast["x0"]).all() and (forecast["x0"] <= forecast["x0_q0.9"]).all()
    errors = json.loads(capsys.readouterr().err.strip().splitlines()[-2])
    truth = frame.loc[forecast.index, ["x0", "x1"]].to_numpy()
    assert errors["steps_with_truth"] == H
    assert errors["mse"] == pytest.approx(np.mean((truth - forecast[["x0", "x1"]].to_numpy()) ** 2), rel=1e-4)
    scale = np.array(json.loads((quantile_run / "series_scaler.json").read_text())["scale"])
    assert errors["mse_standardised"] == pytest.approx(
        np.mean(((truth - forecast[["x0", "x1"]].to_numpy()) / scale) ** 2), rel=1e-4)
    assert png.stat().st_size > 10_000
    # the last window: the same errors, under the same names, as backtest prints for it
    assert main(["forecast", str(quantile_run), "--data", str(series_csv), "--at", str(frame.index[-H - 1])]) == 0
    at_last = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert main(["backtest", str(quantile_run), "--data", str(series_csv), "--windows", "1"]) == 0
    backtest = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert at_last["mse"] == pytest.approx(backtest["mse"], rel=1e-4)
    assert at_last["mae"] == pytest.approx(backtest["mae"], rel=1e-4)


def test_forecast_to_stdout_and_its_one_line_errors(dlinear_run, series_csv, tmp_path, capsys):
    assert main(["forecast", str(dlinear_run), "--data", str(series_csv)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "date,x0,x1" and len(lines) == H + 1
    cases = [(["--at", "1999-01-01"], "outside"), (["--at", "tomorrow-ish"], "not a date"),
             (["--at", str(pd.read_csv(series_csv)["date"][10])], "give a longer history")]
    for extra, message in cases:
        assert main(["forecast", str(dlinear_run), "--data", str(series_csv), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    other = tmp_path / "other.csv"
    synthetic_frame(n_rows=100, n_channels=3).to_csv(other, index=False)
    pd.read_csv(other).rename(columns={"x1": "y"}).to_csv(other, index=False)
    assert main(["forecast", str(dlinear_run), "--data", str(other)]) == 2
    assert "unknown column(s) ['x1']" in capsys.readouterr().err
    not_series = tmp_path / "run"
    not_series.mkdir()
    (not_series / "config.yaml").write_text("model: {}\n")
    assert main(["forecast", str(not_series), "--data", str(series_csv)]) == 2
    assert "not a forecasting run" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zip"])
def test_compressed_csv_is_read_and_written_as_pandas_does(dlinear_run, series_csv, tmp_path, capsys, suffix):
    """pandas reads and writes .csv.gz and its kin by the name; so do --data and --out (before, --data was
    refused as holding NUL bytes and --out wrote plain text under a .gz name)."""
    packed = tmp_path / f"series.csv{suffix}"
    pd.read_csv(series_csv).to_csv(packed, index=False)  # pandas compresses by the name
    assert main(["forecast", str(dlinear_run), "--data", str(series_csv)]) == 0
    plain = capsys.readouterr().out
    assert main(["forecast", str(dlinear_run), "--data", str(packed)]) == 0
    assert capsys.readouterr().out == plain
    out = tmp_path / f"forecast.csv{suffix}"
    assert main(["forecast", str(dlinear_run), "--data", str(packed), "--out", str(out)]) == 0
    assert pd.read_csv(out).to_csv(index=False) == plain  # a file pandas decompresses, holding the same table
    first = out.read_bytes()
    out.unlink()
    assert main(["forecast", str(dlinear_run), "--data", str(packed), "--out", str(out)]) == 0
    assert out.read_bytes() == first  # no time stamp in the file: the same forecast, the same bytes


def test_a_file_not_compressed_as_its_name_says_is_one_line(dlinear_run, tmp_path, capsys):
    (tmp_path / "text.csv.gz").write_text("date,x0\n", encoding="utf-8")
    two = tmp_path / "two.csv.zip"
    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("a.csv", "date,x0\n")
        archive.writestr("b.csv", "date,x0\n")
    for path, message in [(tmp_path / "text.csv.gz", "text.csv.gz cannot be decompressed as gzip (Not a gzipped"),
                          (two, "two.csv.zip holds 2 files; give a zip archive of one file")]:
        assert main(["forecast", str(dlinear_run), "--data", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err
