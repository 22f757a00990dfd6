"""Hugging Face PatchTSTForPrediction folders as xformer forecasters (xformer/interop/hf_patchtst.py): the same
forecast as transformers' own model on the same windows, the names both ways, the settings xformer cannot express
refused in one line, and a fine-tune from ``hf:FOLDER`` through ``xformer train``. Every checkpoint is built here
from a tiny config with random weights; nothing is downloaded."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from xformer.cli import main
from xformer.config import ConfigError
from xformer.interop.hf_patchtst import (patchtst_config_to_xformer, patchtst_state_dict_to_xformer,
                                         xformer_state_dict_to_patchtst)
from xformer.interop.pretrained import load_pretrained

transformers = pytest.importorskip("transformers")

TINY = {"num_input_channels": 3, "context_length": 64, "patch_length": 8, "patch_stride": 8, "d_model": 16,
        "num_hidden_layers": 2, "num_attention_heads": 4, "ffn_dim": 32, "prediction_length": 12,
        "pooling_type": None}


def hf_folder(folder: Path, kind: str = "PatchTSTForPrediction", **settings):
    """A random PatchTST of ``kind`` saved in ``folder``, in eval mode. Every float tensor but the positions is
    moved off its initial value (Hugging Face starts biases at 0 and BatchNorm statistics at 0 / 1, which
    would hide a misplaced one)."""
    model = getattr(transformers, kind)(transformers.PatchTSTConfig(**{**TINY, **settings}))
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point() and not name.endswith("position_enc"):
                tensor.add_(torch.rand_like(tensor) if name.endswith("running_var") else 0.1 * torch.randn_like(tensor))
    model.save_pretrained(folder)
    return model.eval()


def windows(n: int = 5, dtype=torch.float32) -> torch.Tensor:
    """Windows of the checkpoint's length and channels, off zero mean and unit scale (so the scaler matters)."""
    return (3 * torch.randn(n, TINY["context_length"], TINY["num_input_channels"]) + 2).to(dtype)


@pytest.mark.parametrize("settings", [
    {},  # Hugging Face's defaults: batchnorm, pre_norm, scaling std, sincos positions
    {"norm_type": "layernorm", "pre_norm": False, "scaling": None, "positional_encoding_type": "random",
     "patch_length": 16},
    {"norm_type": "batchnorm", "pre_norm": False, "scaling": "std", "positional_encoding_type": "random",
     "patch_length": 16, "activation_function": "relu"},
    {"norm_type": "layernorm", "pre_norm": True, "scaling": False, "positional_encoding_type": "sincos"},
    {"patch_length": 12, "patch_stride": 12},  # (64 - 12) % 12 = 4: the first 4 steps are in no patch, as ibm-granite's 512/12/12
], ids=["batchnorm-prenorm-std-sincos", "layernorm-postnorm-none-random-16/8", "batchnorm-postnorm-std-random-relu",
        "layernorm-prenorm-false-sincos", "12/12-skips-the-first-4-steps"])
def test_forecast_equals_transformers(tmp_path, settings):
    hf = hf_folder(tmp_path, **settings)
    model, vocab = load_pretrained(f"hf:{tmp_path}")
    assert not model.training and vocab is None
    tok = model.config.tokenizer.args
    assert tok["padding"] == "start" and tok["revin"] == (settings.get("scaling", "std") == "std")
    assert model.config.core.norm_first == settings.get("pre_norm", True) and not model.config.core.has_final_norm
    # the positions (sincos: a table Hugging Face freezes) are learned ones here: the same values, trainable
    table = hf.model.encoder.positional_encoder.position_enc
    assert torch.equal(model.tokenizer.positions.weight, table) and model.tokenizer.positions.weight.requires_grad
    x = windows()
    with torch.no_grad():
        expected = hf(past_values=x).prediction_outputs
        torch.testing.assert_close(model({"inputs": x})["prediction"], expected, atol=1e-5, rtol=0)


def test_forecast_equals_transformers_in_float64(tmp_path):
    hf = hf_folder(tmp_path).double()
    model = load_pretrained(f"hf:{tmp_path}")[0].double()
    x = windows(dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model({"inputs": x})["prediction"], hf(past_values=x).prediction_outputs,
                                   atol=1e-12, rtol=0)


def test_names_round_trip(tmp_path):
    """xformer -> Hugging Face names (which PatchTSTForPrediction loads strictly) -> xformer: the same tensors."""
    for settings in ({}, {"norm_type": "layernorm"}):
        hf = hf_folder(tmp_path / str(len(settings)), **settings)
        model = load_pretrained(f"hf:{tmp_path / str(len(settings))}")[0]
        ours = model.state_dict()
        theirs = xformer_state_dict_to_patchtst(ours)
        hf.load_state_dict(theirs, strict=True)
        assert theirs.keys() == hf.state_dict().keys()
        back = patchtst_state_dict_to_xformer(theirs)
        assert back.keys() == ours.keys() and all(torch.equal(back[k], ours[k]) for k in ours)
    with pytest.raises(ValueError, match="no name for core.norm.weight"):  # a final norm has no place there
        xformer_state_dict_to_patchtst({**ours, "core.norm.weight": torch.ones(16)})
    with pytest.raises(ValueError, match="no name for: model.encoder.layers.0.norm_sublayer2.weight"):
        patchtst_state_dict_to_xformer({**theirs, "model.encoder.layers.0.norm_sublayer2.weight": torch.ones(16)})


@pytest.mark.parametrize("settings, words", [
    ({"channel_attention": True}, ["channel_attention"]),
    ({"share_embedding": False}, ["share_embedding"]),
    ({"share_projection": False}, ["share_projection"]),
    ({"use_cls_token": True}, ["use_cls_token"]),
    ({"pooling_type": "mean"}, ["pooling_type 'mean'", "pooling_type: null"]),
    ({"pooling_type": "max"}, ["pooling_type 'max'"]),
    ({"scaling": "mean"}, ["scaling 'mean'"]),
    ({"scaling": True}, ["scaling True"]),
    ({"minimum_scale": 1e-3}, ["minimum_scale"]),
    ({"loss": "nll"}, ["loss 'nll'", "quantiles"]),
    ({"bias": False}, ["bias: false"]),
    ({"activation_function": "silu"}, ["activation_function 'silu'"]),
])
def test_settings_xformer_cannot_express_are_refused(settings, words):
    with pytest.raises(ConfigError) as refused:
        patchtst_config_to_xformer({"model_type": "patchtst", **TINY, **settings})
    message = str(refused.value)
    assert "\n" not in message and all(word in message for word in words), message


@pytest.mark.parametrize("kind", ["PatchTSTForPretraining", "PatchTSTForClassification", "PatchTSTForRegression"])
def test_other_patchtst_checkpoints_are_refused(tmp_path, kind):
    hf_folder(tmp_path, kind, pooling_type="mean")
    with pytest.raises(ConfigError) as refused:
        load_pretrained(f"hf:{tmp_path}")
    message = str(refused.value)
    assert "\n" not in message and kind in message and "PatchTSTForPrediction.from_pretrained" in message, message


# ---------------------------------------------------------------- fine-tuning through xformer train


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """A layernorm checkpoint (training would move BatchNorm statistics whatever the learning rate), a CSV of
    3 series and a recipe that takes its model from the checkpoint."""
    root = tmp_path_factory.mktemp("hf_patchtst")
    torch.manual_seed(0)
    hf = hf_folder(root / "ckpt", norm_type="layernorm")
    t = np.arange(400)
    frame = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=len(t), freq="h"),
                          **{f"s{c}": np.sin(t / (5 + 3 * c)) + 0.1 * np.cos(t / 7) * c for c in range(3)}})
    frame.to_csv(root / "series.csv", index=False)
    recipe = {"model": {"architecture": "encoder", "head": {"name": "forecast"}},
              "data": {"name": "csv_series", "args": {"path": str(root / "series.csv"), "input_len": 64,
                                                      "horizon": 12}},
              "train": {"steps": 2, "batch_size": 4, "lr": 1e-9, "warmup_steps": 0, "eval_every": 2,
                        "log_every": 1}}
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return root, hf


def test_fine_tunes_from_hf_folder(series, capsys):
    """At lr 1e-9 two steps move no weight by more than ~2e-9: the run's model is the checkpoint's as loaded."""
    from xformer.train.run import load_run_model

    root, hf = series
    run = root / "run"
    assert main(["train", str(root / "recipe.yaml"), "--init-from", f"hf:{root / 'ckpt'}", "--out", str(run),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"init_from hf:{root / 'ckpt'}: loaded" in out and "left fresh: none" in out
    assert "not used from the checkpoint: none" in out
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["tokenizer"]["args"]["padding"] == "start"
    assert "test_mse" in json.loads((run / "metrics.json").read_text())
    model = load_run_model(run)[1]
    x = windows()
    with torch.no_grad():
        torch.testing.assert_close(model({"inputs": x})["prediction"], hf(past_values=x).prediction_outputs,
                                   atol=1e-5, rtol=0)


@pytest.mark.parametrize("override, words", [
    ("data.args.horizon=24", ["prediction_length=12", "data.args.horizon=12"]),
    ("data.args.input_len=32", ["context_length=64", "data.args.input_len=64"]),
    ("data.args.columns=[s0,s1]", ["2 series", "num_input_channels=3", "data.args.columns"]),
    ("model.head.name=classification", ["forecast"]),
    ("data.name=text_lm", ["series windows", "csv_series"]),
])
def test_data_that_does_not_fit_is_refused(series, capsys, tmp_path, override, words):
    root, _ = series
    run = tmp_path / "run"
    assert main(["train", str(root / "recipe.yaml"), override, "--init-from", f"hf:{root / 'ckpt'}",
                 "--out", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("xformer: error:") and "\n" not in err and all(w in err for w in words), err
    assert not run.exists()
