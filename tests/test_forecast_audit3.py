"""Series defects found by a third user audit, each pinned: a forecaster opened from a training run saves a folder
that loads back to the same forecasts (its own network, not the Forecaster's default); a wide table with a
timestamp twice, or a header naming a column twice, is refused in one line by training, forecasting and the
Forecaster alike (pandas would reindex into a traceback, or read the second column as a made-up 'a.1'); and a
folder given where a file is expected is called a folder."""
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from xformer.cli import main
from xformer.config import ConfigError
from xformer.forecast import Forecaster

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

N = 160


def wide_frame(n: int = N) -> pd.DataFrame:
    t = np.arange(n)
    return pd.DataFrame({"date": pd.date_range("2022-01-01", periods=n, freq="h"),
                         "a": np.sin(2 * np.pi * t / 12) + 5, "b": np.cos(2 * np.pi * t / 12) + 0.01 * t})


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def wide_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("series") / "wide.csv"
    wide_frame().to_csv(path, index=False)
    return path


@pytest.mark.parametrize("model", [
    {"baseline": {"name": "dlinear"}},
    {"architecture": "encoder", "core": {"d_model": 8, "n_layers": 1, "n_heads": 2, "d_ff": 16},
     "tokenizer": {"name": "series_patches", "args": {"patch_len": 8, "stride": 4}}, "head": {"name": "forecast"}}])
def test_a_forecaster_from_a_training_run_saves_a_folder_that_loads_to_the_same_forecasts(tmp_path, wide_csv, model):
    recipe = {"model": model, "data": {"name": "csv_series", "args": {"path": str(wide_csv), "input_len": 24,
                                                                      "horizon": 6}},
              "train": {"steps": 3, "batch_size": 16, "lr": 1e-3, "seed": 0}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "r.yaml"), "--out", str(run), "--quiet", "--threads", "1"]) == 0
    torch.set_num_threads(1)
    forecaster = Forecaster.from_run(run)
    name = "dlinear" if "baseline" in model else "series_patches -> encoder -> forecast"
    assert repr(forecaster).startswith(f"Forecaster(network={name!r}, input_len=24, horizon=6")
    before = forecaster.predict(wide_frame())
    forecaster.save(tmp_path / "saved")
    saved = yaml.safe_load((tmp_path / "saved" / "config.yaml").read_text())
    assert saved["model"] == yaml.safe_load((run / "config.yaml").read_text())["model"]
    loaded = Forecaster.load(tmp_path / "saved")
    assert repr(loaded) == repr(forecaster)
    pd.testing.assert_frame_equal(loaded.predict(wide_frame()), before)


def test_a_timestamp_twice_in_a_wide_table_is_one_line_everywhere(tmp_path, wide_csv, capsys):
    frame = wide_frame()
    twice = pd.concat([frame, frame.iloc[[3]]]).sort_values("date", kind="stable")
    path = tmp_path / "twice.csv"
    twice.to_csv(path, index=False)
    expected = "has 2 rows at 2022-01-01 03:00:00 (rows 4, 5 of column 'date'); keep one row per date"
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        Forecaster(input_len=24, horizon=6, max_steps=2, device="cpu").fit(twice)
    recipe = {"model": {"baseline": {"name": "dlinear"}},
              "data": {"name": "csv_series", "args": {"path": str(path), "input_len": 24, "horizon": 6}},
              "train": {"steps": 2, "batch_size": 16}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    capsys.readouterr()
    assert main(["train", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert expected in one_line(capsys) and not (tmp_path / "run").exists()
    folder = tmp_path / "forecaster"
    torch.set_num_threads(1)
    Forecaster(input_len=24, horizon=6, patch_len=8, stride=4, d_model=8, n_layers=1, n_heads=2, max_steps=2,
               device="cpu").fit(frame).save(folder)
    capsys.readouterr()  # fit's progress
    for command in (["forecast", str(folder), "--data", str(path)],
                    ["backtest", str(folder), "--data", str(path), "--windows", "1"]):
        assert main(command) == 2
        assert expected in one_line(capsys)


def test_a_header_naming_a_column_twice_is_one_line(tmp_path, capsys):
    from xformer.data.series import read_raw_series

    path = tmp_path / "twice.csv"
    frame = wide_frame()
    frame.to_csv(path, index=False, header=["date", "a", "a"])
    recipe = {"model": {"baseline": {"name": "dlinear"}},
              "data": {"name": "csv_series", "args": {"path": str(path), "input_len": 24, "horizon": 6}},
              "train": {"steps": 2, "batch_size": 16}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert f"{path}: its header names column 'a' 2 times; give each column its own name" in one_line(capsys)
    with pytest.raises(ConfigError, match="its header names column 'a' 2 times"):
        Forecaster(input_len=24, horizon=6).fit(str(path))
    with pytest.raises(ConfigError, match="has two columns named 'a'; give each column its own name"):
        read_raw_series(frame.set_axis(["date", "a", "a"], axis=1), "date")


def test_a_folder_given_for_a_file_is_called_a_folder(tmp_path, capsys):
    assert main(["train", str(tmp_path)]) == 2
    assert f"config file {tmp_path} is a folder; give the path of a YAML file" in one_line(capsys)
    from xformer.predict_series import read_series

    with pytest.raises(ConfigError, match="is a folder; give .npz files"):
        read_series(tmp_path, {"input_len": 8, "n_channels": 1, "layout": None})
