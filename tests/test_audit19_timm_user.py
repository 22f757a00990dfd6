"""A timm user's habits, as the nineteenth audit (D) tried them: the best checkpoint chosen by top-1 without
naming the direction, and a digits run's timm export fed image files larger than the digits' 8x8."""
import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from xformer.config import ConfigError, from_dict
from xformer.train.config import EarlyStopping, ExperimentConfig
from xformer.train.run import train_run

CORE = {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "norm_eps": 1e-6}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def digits_vit(**train) -> ExperimentConfig:
    """A tiny ViT on scikit-learn's digits (timm-exportable: LayerNorm eps 1e-6)."""
    return from_dict(ExperimentConfig, {
        "model": {"architecture": "encoder", "core": CORE,
                  "tokenizer": {"name": "image_patches", "args": {"patch_size": 2}},
                  "head": {"name": "classification"}},
        "data": {"name": "digits"},
        "train": {"steps": 40, "batch_size": 32, "lr": 3e-3, "schedule": "constant", "eval_every": 8,
                  "log_every": 8, "keep_last": 1, "device": "cpu", **train}})


def val_accuracies(run) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {row["step"]: row["val_accuracy"] for row in rows if "val_accuracy" in row}


# ---- 1. the direction of the early-stopping metric follows its name ----------------------------------------

@pytest.mark.parametrize("metric", ["val_accuracy", "val_top5_accuracy", "val_token_accuracy", "val_mlm_accuracy",
                                    "val_nsp_accuracy", "val_macro_f1", "val_exact_match", "val_mcc", "val_auc",
                                    "val_r2", "val_bleu", "val_pearson_corr"])
def test_a_metric_where_higher_is_better_is_maximised(metric):
    assert EarlyStopping(metric=metric).mode == "max"


@pytest.mark.parametrize("metric", ["val_loss", "val_mse", "val_mae", "val_mse_original", "val_smape",
                                    "val_perplexity", "val_bits_per_token", "val_bits_per_character"])
def test_a_metric_where_lower_is_better_is_minimised(metric):
    assert EarlyStopping(metric=metric).mode == "min"


def test_an_explicit_mode_is_kept():
    assert EarlyStopping(metric="val_accuracy", mode="min").mode == "min"
    assert EarlyStopping(metric="val_loss", mode="max").mode == "max"


def test_another_mode_is_refused_naming_the_choices():
    with pytest.raises(ConfigError, match=r"train\.early_stopping\.mode: 'maximum' is not one of 'min', 'max'"):
        from_dict(ExperimentConfig, {"train": {"steps": 1, "early_stopping": {"mode": "maximum"}}})


def test_the_docs_name_the_default_best_checkpoint():
    """timm keeps the checkpoint of highest top-1; xformer's default differs, and the docs say so."""
    from pathlib import Path

    assert (EarlyStopping().metric, EarlyStopping().mode) == ("val_loss", "min")
    docs = Path(__file__).resolve().parents[1] / "docs"
    for page in ("training.md", "vision.md"):
        text = " ".join((docs / page).read_text().split())
        assert "lowest `val_loss`" in text and "train.early_stopping.metric=val_accuracy" in text, page


def test_val_accuracy_without_a_mode_keeps_the_checkpoint_of_highest_accuracy(tmp_path):
    run = tmp_path / "run"
    metrics = train_run(digits_vit(early_stopping={"metric": "val_accuracy"}), run)
    accuracy = val_accuracies(run)
    assert len(set(accuracy.values())) > 1, accuracy  # else any rule would pick the first evaluation
    best = max(accuracy, key=lambda step: (accuracy[step], -step))  # the first of the highest
    assert metrics["best_step"] == best, accuracy
    assert metrics["val_accuracy"] == accuracy[best]
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["best"] == f"step_{best:08d}"
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["early_stopping"]["mode"] == "max"


def test_a_saved_run_of_mode_min_resumes_as_it_was_saved(tmp_path):
    """Runs saved before the mode followed the metric hold ``mode: min`` for val_accuracy: they resume from
    their config.yaml, and from a recipe that leaves the mode out, minimising still (a resume continues exactly)."""
    run = tmp_path / "run"
    train_run(digits_vit(steps=16, early_stopping={"metric": "val_accuracy", "mode": "min"}), run)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["early_stopping"]["mode"] == "min"
    saved["train"]["steps"] = 24
    train_run(from_dict(ExperimentConfig, saved), run, resume=True)  # `xformer train --resume RUN train.steps=24`
    metrics = train_run(digits_vit(early_stopping={"metric": "val_accuracy"}), run, resume=True)  # the recipe
    assert metrics["steps"] == 40
    accuracy = val_accuracies(run)
    assert len(set(accuracy.values())) > 1, accuracy
    assert metrics["best_step"] == min(accuracy, key=lambda step: (accuracy[step], step)), accuracy
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["early_stopping"]["mode"] == "min"


# ---- 4. the timm export of a digits run resizes image files as the run does ----------------------------------

@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("digits") / "digits"
    train_run(digits_vit(steps=1, eval_every=1), run)
    return run


def exported_transform(run, folder):
    """timm's own evaluation transform for the run's timm export, as validate.py / inference.py build it."""
    timm = pytest.importorskip("timm")
    from timm.data import create_transform, resolve_data_config

    from xformer.interop.export import export_model
    from xformer.train.run import load_run_model

    folder.mkdir()
    export_model(load_run_model(run)[1], "timm", folder, run)
    model = timm.create_model(f"local-dir:{folder}", pretrained=True)
    return create_transform(**resolve_data_config({}, model=model))


@pytest.mark.parametrize("name, args, interpolation", [
    ("digits", {}, "box"),  # a larger file averaged to 8x8: PIL's box filter
    ("digits", {"image_size": 16}, "bilinear"),  # then upsampled: right for 8x8 files
    ("image_folder", {"image_size": 32}, "bilinear"), ("mnist", {}, "bilinear"), ("cifar10", {}, "bilinear")])
def test_the_exported_interpolation_is_the_run_s(name, args, interpolation):
    from xformer.data.images import default_preprocess
    from xformer.interop.export import timm_interpolation

    spec = default_preprocess(name, args)
    assert timm_interpolation(spec, spec["image_size"]) == interpolation


@pytest.mark.parametrize("side", [8, 16, 24, 32])
def test_timm_s_transform_of_the_export_equals_predict_s_on_a_digits_file_of_any_whole_multiple(digits_run,
                                                                                                tmp_path, side):
    from xformer.predict import image_classifier_info, load_image

    transform = exported_transform(digits_run, tmp_path / "timm")
    pixels = np.random.default_rng(side).integers(0, 256, (side, side), dtype=np.uint8)  # a scan of a digit
    Image.fromarray(pixels).save(tmp_path / "digit.png")
    spec, _ = image_classifier_info(digits_run)
    ours = load_image(tmp_path / "digit.png", spec)
    with Image.open(tmp_path / "digit.png") as image:
        theirs = transform(image.convert("L"))
    assert ours.shape == theirs.shape == (1, 8, 8)
    # the same area averages, but PIL resizes in two passes (rows, then columns) and rounds each to 8 bits where
    # xformer keeps floats: at most half a grey level per pass (with the bilinear filter: up to 0.16)
    assert (ours - theirs).abs().max().item() <= 1 / 255 + 1e-6
