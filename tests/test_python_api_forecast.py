"""The Forecaster used from a notebook: options of the wrong type refused in one line when given (so that what fit
accepts, save writes and load reads back), fit and load under a float64 default dtype and with grad turned off
globally, one-line refusals of what is not a frame or a folder, and a repr that shows the options."""
import re

import numpy as np
import pandas as pd
import pytest
import torch

from xformer.config import ConfigError
from xformer.forecast import Forecaster, evaluate
from xformer.train.config import TrainConfig
from xformer.train.run import train_run

from train_helpers import experiment

pytestmark = pytest.mark.usefixtures("collect_garbage_at_the_end")  # see conftest.py

TINY = dict(input_len=16, horizon=4, patch_len=8, stride=4, d_model=8, n_layers=1, n_heads=2, epochs=1,
            batch_size=32, device="cpu", seed=1)


def two_series(n: int = 80) -> pd.DataFrame:
    t = np.arange(n)
    return pd.concat([pd.DataFrame({"unique_id": uid, "ds": pd.date_range("2024-01-01", periods=n, freq="h"),
                                    "y": 5 + k * np.sin(2 * np.pi * t / 24) + 0.1 * np.cos(t)})
                      for k, uid in enumerate(("a", "b"), start=1)], ignore_index=True)


def refused(make, message: str, error=ConfigError) -> str:
    with pytest.raises(error, match=message) as e:
        make()
    assert "\n" not in str(e.value)
    return str(e.value)


@pytest.mark.parametrize("option, value, takes", [
    ("epochs", 1.5, "a whole number >= 1"), ("epochs", 3.0, "a whole number >= 1"),
    ("epochs", True, "a whole number >= 1"), ("epochs", "3", "a whole number >= 1"),
    ("seed", None, "a whole number >= 0"), ("seed", "a", "a whole number >= 0"), ("seed", 1.5, "a whole number >= 0"),
    ("d_model", 8.0, "a whole number >= 1"), ("n_heads", 2.0, "a whole number >= 1"),
    ("n_layers", 1.0, "a whole number >= 1"), ("d_ff", 16.5, r"a whole number >= 1 \(or None\)"),
    ("batch_size", 32.0, "a whole number >= 1"), ("batch_size", 32.5, "a whole number >= 1"),
    ("lr", "x", "a number"), ("clip", "1", r"a number \(or None\)"), ("dropout", True, "a number"),
    ("quantiles", 0.5, r"a list of levels in \(0, 1\)"), ("quantiles", ["0.5"], r"a list of levels in \(0, 1\)"),
    ("revin", 1, "True or False"),
])
def test_an_option_of_the_wrong_type_is_refused_when_given_naming_it_and_what_it_takes(option, value, takes):
    refused(lambda: Forecaster(**{**TINY, option: value}), "^" + re.escape(f"{option}={value!r}: give ") + takes)


def test_what_fit_accepts_save_writes_and_load_reads_back(tmp_path):
    """epochs=1.5 used to train 1.6 epochs and save a folder that load refused; now numbers of numpy types (from
    a frame or a grid) are taken as the Python numbers they are, and the folder loads."""
    df = two_series()
    f = Forecaster(**{**TINY, "epochs": np.int64(1), "seed": np.int32(2), "quantiles": (0.1, 0.5, 0.9)}).fit(df)
    assert f.config.quantiles == [0.1, 0.5, 0.9]
    loaded = Forecaster.load(f.save(tmp_path / "f"))
    assert loaded.config == f.config
    pd.testing.assert_frame_equal(loaded.predict(df), f.predict(df))


def test_train_config_refuses_counts_that_are_no_whole_numbers_and_rates_that_are_no_numbers():
    refused(lambda: TrainConfig(epochs=1.5), r"^train.epochs must be a whole number >= 1, got 1.5$")
    refused(lambda: TrainConfig(steps=True), r"^train.steps must be a whole number >= 1, got True$")
    refused(lambda: TrainConfig(steps=10, seed=None), r"^train.seed must be a whole number >= 0, got None$")
    refused(lambda: TrainConfig(steps=10, lr="x"), r"^train.lr must be a finite number > 0, got 'x'")
    refused(lambda: TrainConfig(steps=10, clip="1"), r"^train.clip must be > 0 \(or null\), got '1'$")
    assert TrainConfig(steps=np.int64(10), clip=float("inf")).steps == 10  # what was accepted stays accepted


@pytest.fixture
def float64_default():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def test_fit_and_load_under_a_float64_default_forecast_as_under_float32(tmp_path, float64_default):
    """The network is built and trained in float32, as its windows are, whatever default dtype the notebook set:
    the same forecast to the bit, and the default is left as the user set it."""
    df = two_series()
    options = {**TINY, "quantiles": [0.1, 0.5, 0.9], "calendar": ["hour"]}
    torch.set_default_dtype(torch.float32)
    expected = Forecaster(**options).fit(df).predict(df)
    torch.set_default_dtype(torch.float64)
    f = Forecaster(**options).fit(df)
    assert torch.get_default_dtype() == torch.float64
    pd.testing.assert_frame_equal(f.predict(df), expected, check_exact=True)
    loaded = Forecaster.load(f.save(tmp_path / "f"))
    assert next(loaded.model.parameters()).dtype == torch.float32
    pd.testing.assert_frame_equal(loaded.predict(df), expected, check_exact=True)
    for model in ("dlinear", "steps"):  # a baseline and the other tokenizer
        Forecaster(input_len=16, horizon=4, epochs=1, device="cpu", model=model).fit(df).predict(df)


def test_fit_and_train_run_train_with_grad_turned_off_globally(tmp_path):
    df = two_series()
    expected = Forecaster(**TINY).fit(df).predict(df)
    torch.set_grad_enabled(False)
    try:
        pd.testing.assert_frame_equal(Forecaster(**TINY).fit(df).predict(df), expected, check_exact=True)
        train_run(experiment(steps=2, eval_every=2, log_every=2, deterministic=False), tmp_path / "run")
        assert not torch.is_grad_enabled()  # the caller's setting, restored
    finally:
        torch.set_grad_enabled(True)


def test_an_empty_list_to_load_and_no_frame_to_evaluate_are_refused_in_one_line():
    refused(lambda: Forecaster.load([]), "^Forecaster.load got an empty list; give a folder written by Forecaster.save")
    refused(lambda: evaluate([1, 2]), r"^evaluate takes df as a pandas DataFrame .*got a list$")
    frame = pd.DataFrame({"unique_id": ["a"], "y": [1.0], "y_hat": [1.5]})
    refused(lambda: evaluate(frame, train_df=[1]), r"^train_df must be a pandas DataFrame .*or None, got a list$")


def test_repr_shows_the_model_the_options_given_and_whether_it_is_fitted():
    assert repr(Forecaster()) == "Forecaster(model='patchtst')"
    f = Forecaster(**TINY)
    assert repr(f) == ("Forecaster(model='patchtst', input_len=16, horizon=4, patch_len=8, stride=4, d_model=8, "
                       "n_layers=1, n_heads=2, epochs=1, batch_size=32, seed=1, device='cpu')")
    assert repr(f.fit(two_series())) == repr(Forecaster(**TINY)) + " fitted on 2 series"
