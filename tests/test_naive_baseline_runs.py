"""The baselines without parameters (last_value, seasonal_naive) as recipes: `xformer train` runs them (its
steps only run them forward), and `xformer forecast` / `evaluate` read their run folders like any other."""
import json

import pandas as pd
import pytest
import yaml

from xformer.cli import main
from xformer.data.series import synthetic_frame

L, H, PERIOD = 48, 12, 24


@pytest.fixture(scope="module")
def series_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("naive") / "series.csv"
    synthetic_frame(n_rows=400, n_channels=2).to_csv(path, index=False)
    return path


def train(tmp_path, csv, baseline: dict) -> dict:
    recipe = {"model": {"baseline": baseline},
              "data": {"name": "csv_series", "args": {"path": str(csv), "input_len": L, "horizon": H}},
              "train": {"steps": 1, "eval_every": 1, "batch_size": 16}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", str(tmp_path / "recipe.yaml"), "--out", str(tmp_path / "run"), "--quiet",
                 "--threads", "1"]) == 0
    return json.loads((tmp_path / "run" / "metrics.json").read_text())


@pytest.mark.parametrize("baseline, lag", [({"name": "last_value"}, None),
                                           ({"name": "seasonal_naive", "args": {"period": PERIOD}}, PERIOD)])
def test_a_baseline_without_parameters_trains_and_forecasts(series_csv, tmp_path, capsys, baseline, lag):
    metrics = train(tmp_path, series_csv, baseline)
    assert metrics["steps"] == 1 and metrics["test_mse"] > 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run")]) == 0
    assert json.loads(capsys.readouterr().out)["test_mse"] == pytest.approx(metrics["test_mse"], rel=1e-6)
    assert main(["forecast", str(tmp_path / "run"), "--data", str(series_csv), "--out",
                 str(tmp_path / "forecast.csv")]) == 0
    history = pd.read_csv(series_csv).drop(columns="date")
    forecast = pd.read_csv(tmp_path / "forecast.csv").drop(columns="date")
    assert len(forecast) == H
    for step in range(H):  # the last value, or the value one period before the forecast step
        expected = history.iloc[-1] if lag is None else history.iloc[len(history) - lag + step % lag]
        pd.testing.assert_series_equal(forecast.iloc[step], expected, check_names=False, rtol=1e-5)
