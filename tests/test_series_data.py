"""Series data: ETT splits as the literature, train-only scaling, every test window, missing values, errors."""
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from xformer.baselines import build_baseline
from xformer.config import ConfigError
from xformer.data.registry import build_data
from xformer.data.series import forecast_errors, read_series, series_bundle, split_borders, synthetic_frame
from xformer.forecast.frames import load_frame

ETTH1 = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ETTh1.csv"
needs_etth1 = pytest.mark.skipif(not ETTH1.is_file(), reason=f"ETTh1.csv not found at {ETTH1} (reference data)")


def _frame(n=200, c=2, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"date": pd.date_range("2021-01-01", periods=n, freq="h"),
                         **{f"v{i}": rng.normal(size=n).cumsum() for i in range(c)}})


def test_ett_borders_hourly_and_minute():
    assert split_borders(17420, 336, "ett", 24) == [(0, 8640), (8304, 11520), (11184, 14400)]
    assert split_borders(69680, 96, "ett", 96) == [(0, 34560), (34464, 46080), (45984, 57600)]
    n = 1000  # Dataset_Custom: 70% train, 20% test, the rest validation, starting L early
    assert split_borders(n, 50, "ratio") == [(0, 700), (650, 800), (750, 1000)]
    with pytest.raises(ConfigError, match=r"needs 14400 rows.*data.name=csv_series data.args.split=ratio"):
        split_borders(1000, 50, "ett", 24)


def test_csv_series_takes_its_split_ratios(tmp_path):
    """A 50/25/25 split of 400 rows (an earlier forecast origin for a second validation fold); the scaler
    is fitted on the 200 training rows only; ratios that leave no validation rows are refused."""
    frame = _frame(400)
    frame.to_csv(tmp_path / "s.csv", index=False)
    bundle = build_data("csv_series", {"path": str(tmp_path / "s.csv"), "input_len": 20, "horizon": 5,
                                       "train_ratio": 0.5, "test_ratio": 0.25})
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (200 - 24, 120 - 24, 120 - 24)
    first_test = bundle.test[0]["inputs"][:, 0].numpy()  # test starts L rows before row 300
    train_values = frame["v0"].to_numpy()[:200]
    expected = (frame["v0"].to_numpy()[280:300] - train_values.mean()) / train_values.std()
    np.testing.assert_allclose(first_test, expected, rtol=1e-5)
    for ratios in [(0.8, 0.2), (0.0, 0.2), (0.5, 1.0), ("0.5", 0.25)]:
        with pytest.raises(ConfigError, match="leave rows for validation"):
            build_data("csv_series", {"path": str(tmp_path / "s.csv"), "input_len": 20, "horizon": 5,
                                      "train_ratio": ratios[0], "test_ratio": ratios[1]})


@needs_etth1
def test_etth1_windows_and_train_only_scaler():
    bundle = build_data("ett", {"path": str(ETTH1), "input_len": 336, "horizon": 96})
    assert len(bundle.train) == 8640 - 336 - 96 + 1
    assert len(bundle.val) == len(bundle.test) == 14400 - (11520 - 336) - 336 - 96 + 1 == 2785
    raw = pd.read_csv(ETTH1).drop(columns="date").to_numpy()
    np.testing.assert_allclose(bundle.scaler.mean_, raw[:8640].mean(0), rtol=1e-10)
    np.testing.assert_allclose(bundle.scaler.scale_, raw[:8640].std(0), rtol=1e-10)
    assert not np.allclose(bundle.scaler.mean_, raw[:14400].mean(0), rtol=1e-3)
    first, last = bundle.test[0], bundle.test[len(bundle.test) - 1]
    scaled = (raw - raw[:8640].mean(0)) / raw[:8640].std(0)
    np.testing.assert_allclose(first["inputs"].numpy(), scaled[11184:11520], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(first["targets"].numpy(), scaled[11520:11616], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(last["targets"].numpy(), scaled[14304:14400], rtol=1e-5, atol=1e-5)
    assert bundle.model_args == {"tokenizer": {"n_channels": 7, "input_len": 336}, "head": {"horizon": 96}}


@needs_etth1
def test_etth1_repeat_baseline_matches_published():
    """'Repeat' (last value) on ETTh1-96 is 1.295 / 0.713 in the DLinear paper (Table 2)."""
    bundle = build_data("ett", {"path": str(ETTH1), "input_len": 336, "horizon": 96})
    last_value = build_baseline("last_value", n_channels=7, input_len=336, horizon=96)
    errors = bundle.evaluate(last_value, DataLoader(bundle.test, batch_size=1000))
    assert errors["mse"] == pytest.approx(1.295, abs=1e-3) and errors["mae"] == pytest.approx(0.713, abs=1e-3)


def test_scaler_fitted_on_train_rows_only():
    frame = read_series(_frame(300))
    frame.iloc[210:] += 1000.0  # a level shift after the training rows must not move the scaler
    bundle = series_bundle(frame, input_len=10, horizon=5, split="ratio")
    np.testing.assert_allclose(bundle.scaler.mean_, frame.iloc[:210].mean().to_numpy())


def test_evaluate_matches_numpy_and_covers_every_window():
    frame = read_series(_frame(300, c=3))
    bundle = series_bundle(frame, input_len=12, horizon=4, split="ratio")
    model = build_baseline("last_value", n_channels=3, input_len=12, horizon=4)
    errors = forecast_errors(model, DataLoader(bundle.test, batch_size=7))  # 7 does not divide the windows
    x = np.stack([bundle.test[i]["inputs"].numpy() for i in range(len(bundle.test))])
    y = np.stack([bundle.test[i]["targets"].numpy() for i in range(len(bundle.test))])
    err = y - x[:, -1:, :]
    assert len(bundle.test) == 60 + 12 - 12 - 4 + 1
    assert errors["mse"] == pytest.approx((err ** 2).mean(), rel=1e-6)
    assert errors["mae"] == pytest.approx(np.abs(err).mean(), rel=1e-6)
    np.testing.assert_allclose(errors["mse_per_step"], (err ** 2).mean(axis=(0, 2)), rtol=1e-6)
    full = bundle.evaluate(model, DataLoader(bundle.test, batch_size=7))
    err_original = err * bundle.scaler.scale_
    assert full["mse_original"] == pytest.approx((err_original ** 2).mean(), rel=1e-6)
    assert full["mae_original"] == pytest.approx(np.abs(err_original).mean(), rel=1e-6)
    assert set(full) == {"mse", "mae", "mse_original", "mae_original"}


def test_missing_values_policy():
    df = _frame(50)
    df.loc[[0, 10, 11], "v1"] = np.nan
    with pytest.raises(ConfigError, match=r"column 'v1' \(3 of 50 rows\).*missing='ffill'.*data.args.missing=interpolate"):
        read_series(df)
    filled = read_series(df, missing="ffill")
    assert filled["v1"].iloc[10] == filled["v1"].iloc[11] == df["v1"].iloc[9]
    assert filled["v1"].iloc[0] == df["v1"].iloc[1]  # leading gap carried back
    inter = read_series(df, missing="interpolate")
    assert inter["v1"].iloc[10] == pytest.approx(df["v1"].iloc[9] + (df["v1"].iloc[12] - df["v1"].iloc[9]) / 3)
    assert not inter.isna().any().any()
    with pytest.raises(ConfigError, match="unknown missing='zero'"):
        read_series(_frame(10), missing="zero")


@pytest.mark.parametrize("missing", ["interpolate", "ffill"])
def test_training_windows_never_read_past_their_origin_through_a_filled_gap(missing):
    """A gap reaching a window's origin is filled from the rows before it only: changing every value from the
    origin on leaves that window's inputs as they were (interpolating over the whole table would not: the gap's
    values would lean towards the first value after it). Inside the inputs, between two observations, and in
    windows the gap does not reach, the fill is the whole table's."""
    from xformer.data.series import read_raw_series

    L, H, origin = 12, 4, 160  # origin: a row of the test split (ratio split of 200 rows: test from row 160)
    df = _frame(200).set_index("date")
    df.iloc[origin - 3:origin, 0] = np.nan  # a gap up to the origin, in channel 0 only
    df.iloc[origin - 9:origin - 7, 1] = np.nan  # a gap inside the inputs, in channel 1
    later = df.copy()
    later.iloc[origin:] += 100.0
    test_start = split_borders(len(df), L, "ratio")[2][0]
    item = origin - L - test_start  # the test window whose inputs end at row origin - 1

    def window(frame):
        data = series_bundle(read_raw_series(frame.reset_index(), missing=missing), L, H, missing=missing,
                             scale=False)
        return data.test[item]

    ours, theirs = window(df), window(later)
    torch.testing.assert_close(ours["inputs"], theirs["inputs"], rtol=0, atol=0)
    assert not torch.equal(ours["targets"], theirs["targets"])
    last_seen = df.iloc[origin - 4, 0]  # the gap carries the last observation forward
    assert torch.allclose(ours["inputs"][-3:, 0], torch.tensor(last_seen, dtype=torch.float32))
    whole = torch.tensor(read_series(df.reset_index(), missing=missing).to_numpy(), dtype=torch.float32)
    torch.testing.assert_close(ours["inputs"][:, 1], whole[origin - L:origin, 1])  # the inner gap as before


def test_user_errors_are_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="series file not found"):
        read_series(tmp_path / "nope.csv")
    with pytest.raises(ConfigError, match="is a folder; give the path of a CSV or Parquet file"):
        read_series(tmp_path)
    os.mkfifo(tmp_path / "piped.csv")  # what <(zcat s.csv.gz) names: read twice, it would hang or lose the data
    for read in (read_series, load_frame):
        with pytest.raises(ConfigError, match="piped.csv is a pipe or a device, which can be read only once; save"):
            read(tmp_path / "piped.csv")
    path = tmp_path / "s.csv"
    _frame(30).rename(columns={"date": "time"}).to_csv(path, index=False)
    with pytest.raises(ConfigError, match="no date column 'date'.*set date_column") as e:
        read_series(path)
    assert "\n" not in str(e.value)
    assert list(read_series(path, date_column="time").columns) == ["v0", "v1"]
    with pytest.raises(ConfigError, match=r"unknown column\(s\) \['OT'\]"):
        read_series(path, date_column="time", columns=["OT"])
    with pytest.raises(ConfigError, match="too short"):
        series_bundle(read_series(_frame(40)), input_len=30, horizon=10)


def test_default_data_is_the_generated_series():
    bundle = build_data("csv_series", {"input_len": 48, "horizon": 24})
    assert bundle.model_args["tokenizer"] == {"n_channels": 3, "input_len": 48}
    item = bundle.train[0]
    assert item["inputs"].shape == (48, 3) and item["targets"].shape == (24, 3)
    assert item["inputs"].dtype == torch.float32
    assert len(synthetic_frame()) == 4000
