"""What the earlier audits of forecasting left (tests/test_forecast_leftovers.py): the commands named --static and
--futr files by Python's argument names (static_df, futr_df) and backtest's too many windows by h= and step; a
forecaster loaded with another freq and saved again lost its freq of fit; and a run of xformer train loaded with a
wrong --freq could not name the freq it was trained at."""
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from xformer.cli import main
from xformer.config import ConfigError
from xformer.forecast import Forecaster

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

TINY = dict(input_len=16, horizon=4, patch_len=4, stride=4, d_model=8, n_layers=1, n_heads=2, epochs=1,
            max_steps=2, batch_size=16, device="cpu", seed=0, progress=False)


def hourly(n: int = 40) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"unique_id": key, "ds": pd.date_range("2020-01-01", periods=n, freq="h"),
                                    "y": np.sin(np.arange(n) / 3) + i, "temp": np.cos(np.arange(n) / 5)})
                      for i, key in enumerate("ab")], ignore_index=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Saved forecasters fitted on hourly series (one with a future-known and a static covariate), the series as a
    long CSV, and their static covariates."""
    root = tmp_path_factory.mktemp("leftovers2")
    frame = hourly()
    static = pd.DataFrame({"unique_id": ["a", "b"], "size": [1.0, 2.0]})
    Forecaster(**TINY).fit(frame[["unique_id", "ds", "y"]]).save(root / "plain")
    Forecaster(**TINY, futr_exog=["temp"], stat_exog=["size"]).fit(frame, static_df=static).save(root / "cov")
    frame.to_csv(root / "long.csv", index=False)
    static.rename(columns={"unique_id": "id"}).to_csv(root / "no_id.csv", index=False)
    future = hourly(44).iloc[40:44].assign(unique_id="z")  # series a's 4 steps after 40  # ids the data lacks
    future.to_csv(root / "futr_z.csv", index=False)
    return root


# ---- 1. --static and --futr named as the options and their files ------------------------------------------------
@pytest.mark.parametrize("command", [["forecast"], ["backtest", "--windows", "1"]])
def test_a_static_file_is_named_as_the_option(files, cli_error, command):
    line = cli_error([command[0], files / "cov", "--data", files / "long.csv", *command[1:], "--static",
                      files / "no_id.csv"], f"--static {files / 'no_id.csv'} has no column 'unique_id'")
    assert "static_df" not in line, line


def test_a_futr_file_is_named_as_the_option(files, cli_error):
    data = files / "short.csv"
    hourly().groupby("unique_id").head(36).to_csv(data, index=False)
    line = cli_error(["forecast", files / "cov", "--data", data, "--futr", files / "futr_z.csv"],
                     f"--futr {files / 'futr_z.csv'}", "name none of the series")
    assert "futr_df" not in line, line


# ---- 2. backtest's windows in its own options -------------------------------------------------------------------
def test_too_many_windows_are_refused_in_the_commands_options(files, cli_error):
    line = cli_error(["backtest", files / "plain", "--data", files / "long.csv", "--windows", "30"],
                     "--windows 30", "--h 4", "--step 4", "give --windows 6 or fewer", "a smaller --step")
    assert "h=" not in line and "n_windows" not in line, line


def test_too_many_windows_in_python_keep_the_arguments_names(files):
    with pytest.raises(ConfigError, match=r"n_windows=30 window\(s\) of h=4 steps, step=4 apart.*give n_windows=6 "
                                          r"or fewer \(xformer backtest: --windows 6\), a smaller step"):
        Forecaster.load(files / "plain").cross_validation(hourly(), n_windows=30, fit=False)


# ---- 3. a forecaster loaded with another freq and saved again ---------------------------------------------------
def test_saving_a_forecaster_loaded_with_another_freq_keeps_its_freq_of_fit(files, tmp_path):
    again = Forecaster.load(files / "plain", freq="D").save(tmp_path / "again")
    state = json.loads((again / "forecaster.json").read_text())
    assert (state["freq"], state["config"]["freq"]) == ("h", "D")  # fitted, and the one it forecasts at
    with pytest.raises(ConfigError, match=r"fitted on freq h and saved with freq D: load it with freq='h' "
                                          r"\(xformer forecast/backtest: --freq h\) to forecast at h, or give data at "
                                          r"freq D"):
        Forecaster.load(again).predict(hourly())
    assert len(Forecaster.load(again, freq="h").predict(hourly())) == 8
    daily = hourly().assign(ds=lambda d: d.groupby("unique_id").cumcount().map(
        lambda k: pd.Timestamp("2020-01-01") + pd.Timedelta(days=k)))
    assert len(Forecaster.load(again).predict(daily)) == 8
    assert json.loads((Forecaster.load(again).save(tmp_path / "third") / "forecaster.json").read_text())["freq"] == "h"


# ---- 4. a run of xformer train loaded with a wrong freq ---------------------------------------------------------
def test_a_training_run_records_its_freq_and_names_it_when_loaded_with_another(tmp_path, cli_error):
    n = 120
    wide = pd.DataFrame({"date": pd.date_range("2022-01-01", periods=n, freq="h"), "a": np.sin(np.arange(n) / 2)})
    wide.to_csv(tmp_path / "wide.csv", index=False)
    recipe = {"model": {"baseline": {"name": "dlinear"}},
              "data": {"name": "csv_series", "args": {"path": str(tmp_path / "wide.csv"), "input_len": 16,
                                                      "horizon": 4}},
              "train": {"steps": 1, "batch_size": 8, "seed": 0}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "r.yaml"), "--out", str(run), "--quiet", "--threads", "1"]) == 0
    assert json.loads((run / "series_scaler.json").read_text())["freq"] == "h"
    with pytest.raises(ConfigError, match=r"fitted on freq h and loaded with freq D.*leave freq out of load"):
        Forecaster.load(run, freq="D").predict(wide)
    cli_error(["forecast", run, "--data", tmp_path / "wide.csv", "--freq", "D"], "fitted on freq h", "drop --freq")
    assert len(Forecaster.load(run).predict(wide)) == 4
