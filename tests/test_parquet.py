"""Parquet series files (public forecasting panels are often Parquet): read wherever a CSV is read (the
Forecaster, forecast / backtest --data, a recipe's data.args.path), written for a .parquet --out / --metrics,
and refused in one line without an engine or when damaged."""
import json
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from xformer.cli import main
from xformer.config import ConfigError
from xformer.data.series import read_series, synthetic_frame
from xformer.data.tables import read_table
from xformer.forecast import Forecaster

TINY = dict(input_len=24, horizon=6, patch_len=8, stride=4, d_model=8, n_layers=1, n_heads=2, epochs=1,
            batch_size=32, device="cpu")


def long_frame(ids=("001", "NA")) -> pd.DataFrame:
    """Two series of other lengths and starts; ids a CSV reader would mangle by default (1, a missing value)."""
    parts = []
    for k, (uid, n, start) in enumerate(zip(ids, (90, 70), ("2022-01-01", "2022-01-01 09:00"))):
        t = np.arange(n)
        y = (k + 1) * np.sin(2 * np.pi * t / 12 + k) + 3 * k + 0.1 * np.random.default_rng(k).standard_normal(n)
        parts.append(pd.DataFrame({"unique_id": uid, "ds": pd.date_range(start, periods=n, freq="h"), "y": y}))
    return pd.concat(parts, ignore_index=True)


def quietly(call, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(*args, **kwargs)


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    root = tmp_path_factory.mktemp("parquet")
    df = long_frame()
    df.to_parquet(root / "long.parquet", index=False)
    df.to_csv(root / "long.csv", index=False)
    fitted = Forecaster(**TINY, quantiles=[0.1, 0.5, 0.9]).fit(df)
    return root, df, fitted, fitted.save(root / "run")


def test_a_parquet_file_is_read_as_the_frame_it_holds(panel):
    root, df, fitted, _ = panel
    read = read_table(root / "long.parquet")
    assert list(read["unique_id"].unique()) == ["001", "NA"]  # stored as text: no number, no missing id
    pd.testing.assert_frame_equal(read, df, check_dtype=False)
    pd.testing.assert_frame_equal(quietly(fitted.predict, root / "long.parquet"), quietly(fitted.predict, df))
    from_file = Forecaster(**TINY, quantiles=[0.1, 0.5, 0.9]).fit(str(root / "long.parquet"))
    pd.testing.assert_frame_equal(quietly(from_file.predict, df), quietly(fitted.predict, df))


def test_forecast_and_backtest_read_parquet_and_write_it_exactly(panel, capsys):
    root, df, fitted, run = panel
    assert main(["forecast", str(run), "--data", str(root / "long.parquet"), "--out", str(root / "f.parquet"),
                 "--quiet"]) == 0
    written = pd.read_parquet(root / "f.parquet")
    pd.testing.assert_frame_equal(written, quietly(fitted.predict, df), check_dtype=False)  # not rounded
    for data, out in (("long.parquet", "from_parquet.csv"), ("long.csv", "from_csv.csv")):
        assert main(["forecast", str(run), "--data", str(root / data), "--out", str(root / out), "--quiet"]) == 0
    assert (root / "from_parquet.csv").read_bytes() == (root / "from_csv.csv").read_bytes()

    assert main(["backtest", str(run), "--data", str(root / "long.parquet"), "--windows", "2", "--out",
                 str(root / "cv.parquet"), "--metrics", str(root / "m.parquet"), "--quiet"]) == 0
    overall = json.loads(capsys.readouterr().out)
    cv = pd.read_parquet(root / "cv.parquet")
    expected = quietly(fitted.cross_validation, df, n_windows=2, fit=False)
    pd.testing.assert_frame_equal(cv, expected, check_dtype=False)
    metrics = pd.read_parquet(root / "m.parquet")
    assert list(metrics["unique_id"]) == ["001", "NA", "overall"]  # the index, written as a column
    assert metrics.set_index("unique_id").loc["overall", "mse"] == pytest.approx(overall["mse"], rel=1e-5)
    assert overall["mse"] == pytest.approx(np.mean((cv["y"] - cv["y_hat"]) ** 2), rel=1e-5)
    assert main(["backtest", str(run), "--data", str(root / "long.csv"), "--windows", "2", "--metrics",
                 str(root / "m.csv"), "--quiet"]) == 0
    from_csv = pd.read_csv(root / "m.csv", dtype={"unique_id": str}, keep_default_na=False)
    np.testing.assert_allclose(from_csv["mse"], metrics["mse"], rtol=1e-5)  # the CSV rounds to 6 digits


def test_a_named_index_is_read_as_a_column_and_row_numbers_are_not(tmp_path):
    df = long_frame(ids=("a", "b"))
    df.set_index("unique_id").to_parquet(tmp_path / "by_id.parquet")  # ids kept in the frame's index when written
    pd.testing.assert_frame_equal(read_table(tmp_path / "by_id.parquet"), df, check_dtype=False)
    df.iloc[5:].to_parquet(tmp_path / "sliced.parquet")  # row numbers 5, 6, ...: an index, not a column
    read = read_table(tmp_path / "sliced.parquet")
    assert list(read.columns) == ["unique_id", "ds", "y"] and read.index[0] == 5
    wide = synthetic_frame(n_rows=50, n_channels=2)
    wide.set_index("date").to_parquet(tmp_path / "wide.parquet")  # a wide table indexed by its dates
    wide.to_csv(tmp_path / "wide.csv", index=False)
    pd.testing.assert_frame_equal(read_series(tmp_path / "wide.parquet"), read_series(tmp_path / "wide.csv"),
                                  check_freq=False, check_index_type=False)


def test_whole_number_ids_are_read_as_numbers_and_a_parquet_file_named_csv_as_parquet(tmp_path):
    df = long_frame(ids=(7, 12))
    df.to_parquet(tmp_path / "series.csv", index=False)  # the contents decide, not the name
    read = read_table(tmp_path / "series.csv")
    assert read["unique_id"].tolist() == [7] * 90 + [12] * 70 and pd.api.types.is_integer_dtype(read["unique_id"])
    forecaster = Forecaster(**TINY).fit(tmp_path / "series.csv")
    forecast = quietly(forecaster.predict, tmp_path / "series.csv")
    pd.testing.assert_frame_equal(forecast, quietly(forecaster.predict, df))  # as the frame's ids: named as text
    assert list(forecast["unique_id"].unique()) == ["7", "12"] and len(forecast) == 2 * TINY["horizon"]


def test_a_recipe_trains_on_a_parquet_file_as_on_its_csv(tmp_path, capsys):
    wide = synthetic_frame(n_rows=300, n_channels=2)
    wide.to_csv(tmp_path / "s.csv", index=False)
    wide.to_parquet(tmp_path / "s.parquet", index=False)
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[1] / "tasks" / "dlinear_etth1.yaml"
    metrics = {}
    for suffix in ("csv", "parquet"):
        run = tmp_path / f"run_{suffix}"
        assert main(["train", str(recipe), "data.name=csv_series", f"data.args.path={tmp_path / f's.{suffix}'}",
                     "data.args.input_len=48", "data.args.horizon=12", "train.epochs=1", "train.batch_size=32",
                     "train.device=cpu", "--out", str(run), "--quiet"]) == 0
        metrics[suffix] = {k: v for k, v in json.loads((run / "metrics.json").read_text()).items()
                           if "second" not in k and "per_s" not in k}
    assert metrics["parquet"] == metrics["csv"] and "test_mse" in metrics["csv"]
    assert main(["forecast", str(tmp_path / "run_parquet"), "--data", str(tmp_path / "s.parquet"), "--out",
                 str(tmp_path / "f.parquet"), "--quiet"]) == 0
    assert main(["forecast", str(tmp_path / "run_csv"), "--data", str(tmp_path / "s.csv"), "--out",
                 str(tmp_path / "f.csv"), "--quiet"]) == 0
    exact, rounded = pd.read_parquet(tmp_path / "f.parquet"), pd.read_csv(tmp_path / "f.csv", parse_dates=["date"])
    assert list(exact.columns) == ["date", "x0", "x1"] and (exact["date"] == rounded["date"]).all()
    np.testing.assert_allclose(exact[["x0", "x1"]], rounded[["x0", "x1"]], rtol=1e-7)


def test_without_an_engine_parquet_is_refused_in_one_line_before_any_work(panel, monkeypatch, capsys):
    root, _, _, run = panel
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now fails, as where it is not installed
    monkeypatch.setitem(sys.modules, "fastparquet", None)
    fix = 'install it with: pip install "xformer[parquet]"'
    with pytest.raises(ConfigError, match=r"long\.parquet as Parquet needs the pyarrow package"):
        read_table(root / "long.parquet")
    for argv, out in ((["forecast", str(run), "--data", str(root / "long.parquet")], None),
                      (["forecast", str(run), "--data", str(root / "long.csv"), "--out", str(root / "no.parquet")],
                       root / "no.parquet"),
                      (["backtest", str(run), "--data", str(root / "long.csv"), "--windows", "1", "--metrics",
                        str(root / "no_m.parquet")], root / "no_m.parquet")):
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert fix in err and err.count("\n") == 1 and "Traceback" not in err, err
        assert out is None or not out.exists()


def test_a_damaged_parquet_file_is_one_line(panel, tmp_path, capsys):
    root, _, _, run = panel
    whole = (root / "long.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(whole[:len(whole) // 2])  # a copy cut short
    (tmp_path / "noise.parquet").write_bytes(b"PAR1" + bytes(range(256)) * 4)
    for name in ("cut.parquet", "noise.parquet"):
        with pytest.raises(ConfigError, match=r"cannot be read as Parquet \(.+\); give a Parquet file"):
            read_table(tmp_path / name)
        capsys.readouterr()
        assert main(["forecast", str(run), "--data", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert "cannot be read as Parquet" in err and err.count("\n") == 1 and "Traceback" not in err
