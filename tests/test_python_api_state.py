"""The library from one Python process (a notebook): a plot or a run leaves the caller's matplotlib backend, open
figures and torch's deterministic mode as they were; a model config built in Python refuses a wrong architecture or
part type in one line; the ensemble functions take one run folder as a run, not as a sequence of letters."""
import json
import os

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from xformer import CoreConfig, ModelConfig, PartConfig, build_model
from xformer.analysis.attention_maps import save_attention_grid
from xformer.compare.plots import plot_attention_measures, plot_learning_curves
from xformer.config import ConfigError
from xformer.data.series_report import save_forecast_report
from xformer.forecast import Forecaster
from xformer.metrics_classification import classification_report, plot_confusion_matrix
from xformer.train.ensemble import evaluate_ensemble, load_ensemble, load_ensemble_model
from xformer.train.metrics import plot_learning_curve
from xformer.train.rng import deterministic_algorithms
from xformer.train.run import evaluate_run, train_run
from xformer.train.trainer import Trainer

import train_helpers

VIT = dict(architecture="encoder", core=CoreConfig(d_model=16, n_layers=1, n_heads=2),
           tokenizer=PartConfig("image_patches", {"image_size": 8, "patch_size": 2, "channels": 1}),
           head=PartConfig("classification", {"n_classes": 3}))


@pytest.fixture
def notebook_backend():
    """A backend that is not Agg (as a notebook's inline one is) and one figure of the caller's open; afterwards
    the backend the test session had."""
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    figure = plt.figure()
    yield
    plt.close(figure)
    matplotlib.use(before)


def assert_untouched() -> None:
    assert matplotlib.get_backend() == "svg"
    assert len(plt.get_fignums()) == 1  # the caller's figure, no other left registered with pyplot


def learning_curve(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.write_text("".join(json.dumps({"step": s, "train_loss": 1 / s, **({"val_loss": 2 / s} if s % 2 else {})})
                           + "\n" for s in range(1, 6)))
    plot_learning_curve(log, tmp_path / "learning_curve.png")


def confusion_matrix(tmp_path):
    report = classification_report(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1]), 3, ["a", "b", "c"])
    plot_confusion_matrix(report, tmp_path / "confusion.png")


def forecast_report(tmp_path):
    save_forecast_report(tmp_path, {"mse": 1.0, "mae": 0.8, "mse_per_step": [0.5, 1.5], "mae_per_step": [0.6, 1.0]})


def attention_grid(tmp_path):
    save_attention_grid(build_model(ModelConfig(**VIT)), torch.rand(1, 8, 8), tmp_path / "attention.png")


def forecast_plot(tmp_path):
    t = np.arange(96)
    df = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2020-01-01", periods=96, freq="h"),
                       "y": np.sin(2 * np.pi * t / 12)})
    forecaster = Forecaster(input_len=24, horizon=6, patch_len=8, stride=4, d_model=8, n_layers=1, n_heads=2,
                            epochs=1, batch_size=32, device="cpu").fit(df)
    forecaster.plot(df, tmp_path / "forecast.png")


def compare_plots(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text('{"step": 1, "train_loss": 2.0}\n{"step": 2, "val_loss": 1.5}\n')
    measures = [{"layer": 0, "head": h, "entropy": 1.0, "uniform_entropy": 2.0, "distance_unit": 1.5,
                 "uniform_distance_unit": 2.5, "unit": "patches"} for h in range(2)]
    results = {"domains": {"images": {"models": [{"name": "ViT", "kind": "transformer", "run_dir": "run"}],
                                      "attention_measures": measures}}}
    plot_learning_curves(results, tmp_path)
    plot_attention_measures(results, tmp_path)


@pytest.mark.parametrize("draw", [learning_curve, confusion_matrix, forecast_report, attention_grid, forecast_plot,
                                  compare_plots])
def test_plots_leave_the_callers_backend_and_figures(draw, tmp_path, notebook_backend):
    draw(tmp_path)
    assert_untouched()
    assert list(tmp_path.glob("*.png")) and all(p.stat().st_size > 1000 for p in tmp_path.glob("*.png"))


@pytest.fixture(scope="module")
def deterministic_run(tmp_path_factory):
    """A tiny run with train.deterministic (its folder, and the deterministic mode seen while it trained) from a
    process with the mode off, cuDNN benchmarking on and no CUBLAS_WORKSPACE_CONFIG, which it must find again."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
             os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None))
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.benchmark = True
    run, seen = tmp_path_factory.mktemp("deterministic") / "run", []
    fit = Trainer.fit
    def fit_seeing_the_mode(self, *args, **kwargs):
        seen.append(torch.are_deterministic_algorithms_enabled())
        return fit(self, *args, **kwargs)

    Trainer.fit = fit_seeing_the_mode
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        train_run(train_helpers.experiment(steps=4, eval_every=2, log_every=2, deterministic=True), run)
        after = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
                 os.environ.get("CUBLAS_WORKSPACE_CONFIG"), matplotlib.get_backend())
    finally:
        Trainer.fit = fit
        matplotlib.use(before)
        torch.use_deterministic_algorithms(saved[0])
        torch.backends.cudnn.benchmark = saved[1]
        if saved[2] is not None:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved[2]
    return run, seen, after


def test_train_run_is_deterministic_inside_and_restores_the_process_settings(deterministic_run):
    run, seen, after = deterministic_run
    assert seen == [True]
    assert after == (False, True, None, "svg")  # learning_curve.png did not switch the backend either
    assert (run / "learning_curve.png").is_file()


def test_evaluate_run_restores_the_process_settings(deterministic_run):
    assert not torch.are_deterministic_algorithms_enabled()
    evaluate_run(deterministic_run[0])
    assert not torch.are_deterministic_algorithms_enabled() and "CUBLAS_WORKSPACE_CONFIG" not in os.environ


def test_deterministic_mode_is_restored_after_ctrl_c_and_kept_when_the_process_had_it():
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with pytest.raises(KeyboardInterrupt):
            with deterministic_algorithms(True):
                assert not torch.is_deterministic_algorithms_warn_only_enabled()
                raise KeyboardInterrupt
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
        with deterministic_algorithms(False):  # off in the recipe: the process's own mode, untouched
            assert torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_a_model_config_built_in_python_refuses_in_one_line():
    with pytest.raises(ConfigError, match=r"^unknown architecture 'encodr'; did you mean encoder") as e:
        ModelConfig(**{**VIT, "architecture": "encodr"})
    with pytest.raises(ConfigError, match=r"tokenizer='image_patches': give a PartConfig .*"
                                          r"PartConfig\('image_patches', \{\.\.\.its args\}\)") as e2:
        ModelConfig(**{**VIT, "tokenizer": "image_patches"})
    with pytest.raises(ConfigError, match=r"core=16: give a CoreConfig") as e3:
        ModelConfig(**{**VIT, "core": 16})
    with pytest.raises(ConfigError, match=r"unknown config key 'core.d_modl'; did you mean d_model") as e4:
        ModelConfig(**{**VIT, "core": {"d_modl": 16}})
    assert all("\n" not in str(x.value) for x in (e, e2, e3, e4))


def test_parts_given_as_mappings_are_read_as_a_recipe_reads_them():
    config = ModelConfig(**{**VIT, "core": {"d_model": 16, "n_layers": 1, "n_heads": 2},
                            "head": {"name": "classification", "args": {"n_classes": 3}}})
    assert config.core == VIT["core"] and config.head == VIT["head"]
    assert build_model(config).num_parameters() == build_model(ModelConfig(**VIT)).num_parameters()


def test_the_ensemble_functions_take_one_run_folder_as_one_run(deterministic_run):
    run = deterministic_run[0]
    alone = evaluate_run(run)
    for one in (str(run), run):
        assert evaluate_ensemble(one) == alone
        assert type(load_ensemble_model(one)[1]).__name__ == "Model"
    assert type(load_ensemble(str(run))[1]).__name__ == "Model"
    with pytest.raises(ConfigError, match="no run folder given"):
        evaluate_ensemble([])
