"""Hugging Face PatchTSTForPrediction folders as xformer forecasters (xformer/interop/hf_patchtst.py): the same
forecast as transformers' own model on the same windows, the names both ways, the settings xformer cannot express
refused in one line, and a fine-tune from ``hf:FOLDER`` through ``xformer train`` (on any number of series). Every
checkpoint is built here from a tiny config with random weights; nothing is downloaded."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from xformer.cli import main
from xformer.config import ConfigError
from xformer.interop.hf_patchtst import patchtst_state_dict_to_xformer, xformer_state_dict_to_patchtst
from xformer.interop.pretrained import load_pretrained, load_source, resolve_model
from xformer.models import ModelConfig, PartConfig

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
    {"pooling_type": "mean"},  # PatchTSTConfig's default head: the patches averaged, then (H, d)
    {"pooling_type": "max", "norm_type": "layernorm", "patch_length": 16},
], ids=["batchnorm-prenorm-std-sincos", "layernorm-postnorm-none-random-16/8", "batchnorm-postnorm-std-random-relu",
        "layernorm-prenorm-false-sincos", "12/12-skips-the-first-4-steps", "mean-pooling", "max-pooling"])
def test_forecast_equals_transformers(tmp_path, settings):
    hf = hf_folder(tmp_path, **settings)
    model, vocab = load_pretrained(f"hf:{tmp_path}")
    assert not model.training and vocab is None
    tok = model.config.tokenizer.args
    assert tok["padding"] == "start" and tok["revin"] == (settings.get("scaling", "std") == "std")
    assert model.config.core.norm_first == settings.get("pre_norm", True) and not model.config.core.has_final_norm
    pool = settings.get("pooling_type")
    assert model.config.head.args["pool"] == (pool or "flatten")
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
    for i, settings in enumerate(({}, {"norm_type": "layernorm"}, {"pooling_type": "mean"})):
        hf = hf_folder(tmp_path / str(i), **settings)
        model = load_pretrained(f"hf:{tmp_path / str(i)}")[0]
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


def follow_advice(message: str, folder: Path, new: Path) -> None:
    """Run the transformers call a refusal names, as written, on ``folder`` and save the model in ``new``."""
    call = re.search(r"transformers\.PatchTSTForPrediction\.from_pretrained\(FOLDER, ([^)]*)\)", message)
    assert call, message
    kwargs = {key: ast.literal_eval(value) for key, value in (pair.split("=") for pair in call[1].split(", "))}
    transformers.PatchTSTForPrediction.from_pretrained(folder, **kwargs).save_pretrained(new)


# (settings, words the refusal must hold, whether it names a transformers call that keeps the encoder)
REFUSED = [
    ({"channel_attention": True}, ["channel_attention"], False),
    ({"share_embedding": False}, ["share_embedding"], False),
    ({"share_projection": False}, ["share_projection: false", "share_projection=True"], True),
    ({"use_cls_token": True}, ["use_cls_token"], False),
    ({"pooling_type": "median"}, ["pooling_type 'median'", "null, mean or max"], False),
    ({"scaling": "mean"}, ["scaling 'mean'"], False),
    ({"scaling": True}, ["scaling True"], False),
    ({"minimum_scale": 1e-3}, ["minimum_scale"], False),
    ({"loss": "nll"}, ["loss 'nll'", "loss='mse'", "quantiles"], True),
    ({"loss": "nll", "distribution_output": "normal"}, ["loss 'nll'", "normal"], True),
    ({"bias": False}, ["bias: false"], False),
    ({"activation_function": "silu"}, ["activation_function 'silu'"], False),
]


@pytest.mark.parametrize("settings, words, fresh_head", REFUSED, ids=[
    "-".join(f"{k}={v}" for k, v in settings.items()) for settings, _, _ in REFUSED])
def test_settings_xformer_cannot_express_are_refused(tmp_path, settings, words, fresh_head):
    """Saved as folders (the head's tensors differ too: per-channel projections, a distribution head): the refusal
    names the setting, and a setting of the head alone names the transformers call that keeps the encoder under a
    fresh forecast head, which xformer then reads."""
    hf_folder(tmp_path / "ckpt", **settings)
    with pytest.raises(ConfigError) as refused:
        load_pretrained(f"hf:{tmp_path / 'ckpt'}")
    message = str(refused.value)
    assert "\n" not in message and all(word in message for word in words), message
    assert "not a PatchTSTForPrediction" not in message, message
    assert ("from_pretrained" in message) == fresh_head, message
    if fresh_head:
        follow_advice(message, tmp_path / "ckpt", tmp_path / "resaved")
        assert load_pretrained(f"hf:{tmp_path / 'resaved'}")[0].config.head.args["horizon"] == TINY["prediction_length"]


@pytest.mark.parametrize("kind", ["PatchTSTForPretraining", "PatchTSTForClassification", "PatchTSTForRegression",
                                  "PatchTSTModel"])
def test_other_patchtst_checkpoints_are_refused(tmp_path, kind):
    """They are named, with the transformers call that puts their encoder under a forecast head, which works."""
    hf_folder(tmp_path / "ckpt", kind, pooling_type="mean")
    with pytest.raises(ConfigError) as refused:
        load_pretrained(f"hf:{tmp_path / 'ckpt'}")
    message = str(refused.value)
    assert "\n" not in message and kind in message and "PatchTSTForPrediction.from_pretrained" in message, message
    follow_advice(message, tmp_path / "ckpt", tmp_path / "resaved")
    load_pretrained(f"hf:{tmp_path / 'resaved'}")


def test_an_encoder_xformer_cannot_express_is_refused_before_the_class(tmp_path):
    """A pretraining checkpoint with channel attention: re-saving it as a PatchTSTForPrediction would not help,
    so the refusal names channel_attention."""
    hf_folder(tmp_path, "PatchTSTForPretraining", channel_attention=True)
    with pytest.raises(ConfigError, match="channel_attention: true") as refused:
        load_pretrained(f"hf:{tmp_path}")
    assert "PatchTSTForPretraining" not in str(refused.value)


def test_weights_without_a_forecast_head_are_refused(tmp_path):
    """A config.json that names no class over a pretraining checkpoint's weights: the refusal
    says the weights lack the forecast head, not that the folder is another class, and its call works."""
    hf_folder(tmp_path / "ckpt", "PatchTSTForPretraining")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps({**config, "architectures": None}))
    with pytest.raises(ConfigError) as refused:
        load_pretrained(f"hf:{tmp_path / 'ckpt'}")
    message = str(refused.value)
    assert "no forecast head" in message and "not a PatchTSTForPrediction" not in message, message
    follow_advice(message, tmp_path / "ckpt", tmp_path / "resaved")
    load_pretrained(f"hf:{tmp_path / 'resaved'}")


def test_head_dropout_is_not_carried_into_the_forecast_head(tmp_path):
    """transformers drops the flattened features before head.projection, xformer's forecast head (PatchTST's
    Flatten_Head) drops the forecasts after its projection: head_dropout would be another regulariser there, so the
    model takes none (the recipe's model.head.args.dropout when it gives one). LayerNorm and no other dropout: in
    train mode the model forecasts as transformers' in eval mode."""
    hf = hf_folder(tmp_path, norm_type="layernorm", head_dropout=0.5)
    model = load_pretrained(f"hf:{tmp_path}")[0].train()
    x = windows()
    with torch.no_grad():
        torch.testing.assert_close(model({"inputs": x})["prediction"], hf(past_values=x).prediction_outputs,
                                   atol=1e-5, rtol=0)
    source = load_source(f"hf:{tmp_path}")
    for given, dropout in (({}, None), ({"dropout": 0.3}, 0.3)):
        head = resolve_model(ModelConfig("encoder", head=PartConfig("forecast", given)), source).head
        assert head.args.get("dropout") == dropout, head


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


def test_fine_tunes_from_a_mean_pooling_checkpoint(series, capsys, tmp_path):
    """PatchTSTConfig's default head (pooling_type mean) fine-tunes too: its (H, d) projection is loaded whole."""
    from xformer.train.run import load_run_model

    root, _ = series
    hf = hf_folder(tmp_path / "ckpt", norm_type="layernorm", pooling_type="mean")
    assert main(["train", str(root / "recipe.yaml"), "--init-from", f"hf:{tmp_path / 'ckpt'}", "--out",
                 str(tmp_path / "run"), "--quiet"]) == 0
    assert "left fresh: none" in capsys.readouterr().out
    model = load_run_model(tmp_path / "run")[1]
    assert model.config.head.args["pool"] == "mean"
    x = windows()
    with torch.no_grad():
        torch.testing.assert_close(model({"inputs": x})["prediction"], hf(past_values=x).prediction_outputs,
                                   atol=1e-5, rtol=0)


@pytest.mark.parametrize("override, words", [
    ("data.args.horizon=24", ["prediction_length=12", "data.args.horizon=12"]),
    ("data.args.input_len=32", ["context_length=64", "data.args.input_len=64"]),
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


@pytest.mark.parametrize("checkpoint_channels, columns", [(3, ["s0", "s1"]), (2, ["s0", "s1", "s2"])],
                         ids=["3-channel-checkpoint-on-2-series", "2-channel-checkpoint-on-3-series"])
def test_fine_tunes_on_another_number_of_series(series, capsys, tmp_path, checkpoint_channels, columns):
    """No weight depends on num_input_channels (one embedding and one projection shared by the channels, RevIN
    without affine, BatchNorm over d_model): the model is built for the data's series, and forecasts them as
    transformers' from_pretrained(FOLDER, num_input_channels=k) does (Hugging Face's blog moves a 321-series
    Electricity model to ETTh1's 7 so)."""
    from xformer.train.run import load_run_model

    root, _ = series
    folder = root / "ckpt"
    if checkpoint_channels != TINY["num_input_channels"]:
        torch.manual_seed(1)
        hf_folder(folder := tmp_path / "ckpt", norm_type="layernorm", num_input_channels=checkpoint_channels)
    run = tmp_path / "run"
    assert main(["train", str(root / "recipe.yaml"), f"data.args.columns=[{','.join(columns)}]", "--init-from",
                 f"hf:{folder}", "--out", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "left fresh: none" in out and "not used from the checkpoint: none" in out, out
    saved = yaml.safe_load((run / "config.yaml").read_text())["model"]["tokenizer"]["args"]
    assert saved["n_channels"] == len(columns)
    hf = transformers.PatchTSTForPrediction.from_pretrained(folder, num_input_channels=len(columns)).eval()
    x = windows()[..., :len(columns)]
    with torch.no_grad():
        torch.testing.assert_close(load_run_model(run)[1]({"inputs": x})["prediction"],
                                   hf(past_values=x).prediction_outputs, atol=1e-5, rtol=0)
