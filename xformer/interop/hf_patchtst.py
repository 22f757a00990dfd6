"""PatchTST weights from Hugging Face ``transformers`` (``PatchTSTForPrediction``), and its names both ways.

A ``PatchTSTForPrediction`` that shares its embedding and projection across channels, and has no class token,
no channel attention and an MSE head is exactly an xformer ``encoder`` fed by ``series_patches`` (padding start)
and finished by ``forecast`` (``pool``: Hugging Face's ``pooling_type``, null -> flatten, mean, max):

    x'  = (x - mu) / sqrt(var + minimum_scale)      scaling "std": RevIN without affine, eps = minimum_scale (1e-5);
                                                    scaling null: no RevIN
    p   = unfold(x', patch_length, patch_stride)    padding start: N = (L - P) // S + 1 patches per channel
    z   = W_P p + W_pos                              tokenizer.proj, tokenizer.positions (learned)
    z   = blocks(z)                                  pre_norm -> core.norm_first; no final norm in either
    y   = W flatten(z) + b;  y * sigma + mu          head forecast; both flatten a channel's (N, d) as n*d + j
    y   = W mean_n(z) + b (or max_n)                 pooling_type mean / max (PatchTSTConfig's default: mean)

Hugging Face's patchify leaves out the first ``(L - P) % S`` steps (its ``sequence_start``), so that the last
patch ends at the last step: xformer's ``padding: start`` does the same (the scaler reads the whole window in both).

Names, Hugging Face (``model.`` prefix inside PatchTSTForPrediction) -> xformer:

    model.encoder.embedder.input_embedding              tokenizer.proj
    model.encoder.positional_encoder.position_enc       tokenizer.positions.weight
    model.encoder.layers.{i}.                           core.blocks.{i}.
        self_attn.q_proj / k_proj / v_proj                  attn.qkv                rows [q; k; v]
        self_attn.out_proj                                  attn.proj
        norm_sublayer1[.batchnorm] / norm_sublayer3[.batchnorm]   res1.norm / res2.norm (BatchNorm statistics too)
        ff.0 / ff.3                                         mlp.fc1 / mlp.fc2
    head.projection                                     head.proj               (H, N*d) or (H, d): no permutation

``positional_encoding_type: sincos`` is a table Hugging Face freezes (``requires_grad=False``; centred and
scaled to a tenth of its spread); it is loaded into xformer's learned positions, so the forecast is the same,
but fine-tuning trains it. Dropout rates are not weights (a fine-tune takes the recipe's): ``path_dropout`` ->
``core.dropout`` (which xformer also applies inside the feed-forward, where Hugging Face uses ``ff_dropout``),
``attention_dropout`` -> ``core.attn_dropout``, ``positional_dropout`` -> the tokenizer's; eval mode is equal.
``head_dropout`` is not carried over: Hugging Face drops the flattened (pooled) features before ``head.projection``,
xformer's forecast head (PatchTST's ``Flatten_Head``) drops the forecasts after it, another regulariser.

No weight depends on ``num_input_channels`` (the embedding and the projection are shared, RevIN has no affine,
BatchNorm normalises d_model): a fine-tune builds the model for the data's series (``n_channels``), as
``from_pretrained(FOLDER, num_input_channels=k)`` does. The data's windows must be ``context_length`` steps
(the positions, the head's columns) and forecast ``prediction_length`` (the head's rows).

What xformer cannot express is refused in one line (``ConfigError`` naming the setting): ``channel_attention``,
``share_embedding: false``, ``use_cls_token``, ``scaling: mean`` (or true), a ``minimum_scale`` other than
1e-5, ``bias: false`` (Hugging Face keeps its attention biases then), activations other than GELU / ReLU; and
heads other than one shared projection: ``share_projection: false``, a ``pooling_type`` other than null / mean /
max, a distribution head (``loss`` other than mse) and checkpoints other than ``PatchTSTForPrediction`` (pretraining,
classification, regression, a bare ``PatchTSTModel``), whose refusal names the transformers call that keeps
the encoder under a fresh forecast head (``_fresh_head``). The encoder's settings are checked first.
"""
from __future__ import annotations

import re

import torch
from torch import Tensor

from ..core import CoreConfig
from ..errors import ConfigError
from ..models import ModelConfig, PartConfig

_ACTIVATIONS = {"gelu": "gelu", "relu": "relu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}
_REVIN_EPS = 1e-5  # RevIN's eps (xformer/tokenizers/series.py): Hugging Face's std scaler's minimum_scale
# (Hugging Face module inside encoder layer i, xformer module inside block i); the norms get ".batchnorm" inside
_LAYER = [("self_attn.out_proj", "attn.proj"), ("ff.0", "mlp.fc1"), ("ff.3", "mlp.fc2"),
          ("norm_sublayer1", "res1.norm"), ("norm_sublayer3", "res2.norm")]
_QKV = ("q_proj", "k_proj", "v_proj")
_EMBED, _POSITIONS = "model.encoder.embedder.input_embedding", "model.encoder.positional_encoder.position_enc"
_FORECAST_HEAD = {"share_projection": True, "loss": "mse"}  # the head xformer reads
_HF_DEFAULTS = {"share_projection": True, "loss": "mse"}  # PatchTSTConfig's
_POOLS = {None: "flatten", "mean": "mean", "max": "max"}  # pooling_type -> the forecast head's pool


def _refuse(source: str, what: str, fix: str) -> ConfigError:
    return ConfigError(f"{source}: {what}, which xformer's PatchTST cannot express; {fix}")


def _fresh_head(config: dict) -> str:
    """The transformers call that keeps the checkpoint's encoder under a fresh forecast head that xformer reads:
    the head's settings that differ set to xformer's, a head tensor of another shape left out."""
    changed = [f"{key}={value!r}" for key, value in _FORECAST_HEAD.items()
               if config.get(key, _HF_DEFAULTS[key]) != value]
    return ("load it with transformers.PatchTSTForPrediction.from_pretrained(FOLDER, "
            f"{', '.join(changed + ['ignore_mismatched_sizes=True'])}), whose forecast head starts fresh, and "
            "save_pretrained that")


def patchtst_config_to_xformer(config: dict, source: str = "PatchTST config") -> ModelConfig:
    """A ``PatchTSTConfig`` (its config.json dict) -> the xformer ModelConfig of the same forecaster."""
    get = config.get
    unsupported = [
        (get("channel_attention", False), "channel_attention: true (attention across channels)",
         "use a checkpoint without it (xformer's channels are independent)"),
        (not get("share_embedding", True), "share_embedding: false (a patch embedding per channel)",
         "use a checkpoint with share_embedding: true"),
        (not get("share_projection", True), "share_projection: false (a forecast head per channel)",
         _fresh_head(config)),
        (get("use_cls_token", False), "use_cls_token: true", "use a checkpoint without a class token"),
        (get("pooling_type", "mean") not in _POOLS, f"pooling_type {get('pooling_type')!r}",
         "use a checkpoint with pooling_type null, mean or max"),
        (get("scaling", "std") is True or get("scaling", "std") == "mean", f"scaling {get('scaling')!r} (the "
         "mean-absolute scaler)", "use a checkpoint with scaling 'std' (RevIN) or null"),
        (get("scaling", "std") == "std" and get("minimum_scale", _REVIN_EPS) != _REVIN_EPS,
         f"minimum_scale {get('minimum_scale')!r}", f"use a checkpoint with the default {_REVIN_EPS}"),
        (get("loss", "mse") != "mse", f"loss {get('loss')!r} (a {get('distribution_output')} distribution head)",
         f"{_fresh_head(config)} (then fine-tune it, with xformer's quantile head if you like: "
         "model.head.args.quantiles)"),
        (not get("bias", True), "bias: false (feed-forward layers without biases but attention with them)",
         "use a checkpoint with bias: true"),
        (get("activation_function", "gelu") not in _ACTIVATIONS, f"activation_function "
         f"{get('activation_function')!r}", f"use one of {', '.join(_ACTIVATIONS)}"),
        (get("norm_type", "batchnorm") not in ("batchnorm", "layernorm"), f"norm_type {get('norm_type')!r}",
         "use batchnorm or layernorm"),
    ]
    for bad, what, fix in unsupported:
        if bad:
            raise _refuse(source, what, fix)
    length, patch, stride = get("context_length", 32), get("patch_length", 1), get("patch_stride", 1)
    core = CoreConfig(d_model=get("d_model", 128), n_layers=get("num_hidden_layers", 3),
                      n_heads=get("num_attention_heads", 4), d_ff=get("ffn_dim", 512),
                      activation=_ACTIVATIONS[get("activation_function", "gelu")],
                      norm=get("norm_type", "batchnorm"), norm_eps=get("norm_eps", 1e-5),
                      norm_first=bool(get("pre_norm", True)), final_norm=False, residual_attention=False,
                      qkv_bias=True, bias=True, dropout=get("path_dropout", 0.0),
                      attn_dropout=get("attention_dropout", 0.0), init="torch")
    tokenizer = PartConfig("series_patches", {
        "n_channels": get("num_input_channels", 1), "input_len": length, "patch_len": patch, "stride": stride,
        "padding": "start", "positions": "learned", "dropout": get("positional_dropout", 0.0),
        "revin": get("scaling", "std") == "std", "affine": False, "subtract_last": False})
    # no head_dropout: Hugging Face drops the features before head.projection, xformer's head the forecasts after
    pool = _POOLS[get("pooling_type", "mean")]
    head = PartConfig("forecast", {"horizon": get("prediction_length", 24), "pool": pool})
    return ModelConfig("encoder", core, tokenizer, head)


# ---------------------------------------------------------------- state dicts


def _layers(state: dict[str, Tensor], prefix: str) -> dict[int, dict[str, Tensor]]:
    """{i: {name inside layer i: tensor}} of the keys ``prefix{i}.name``."""
    out: dict[int, dict[str, Tensor]] = {}
    for key, value in state.items():
        if match := re.match(rf"{re.escape(prefix)}(\d+)\.(.+)$", key):
            out.setdefault(int(match[1]), {})[match[2]] = value
    return out


def patchtst_state_dict_to_xformer(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A ``PatchTSTForPrediction`` state dict -> xformer names; an unknown tensor is refused (ValueError)."""
    out = {"tokenizer.proj.weight": state[f"{_EMBED}.weight"], "tokenizer.proj.bias": state[f"{_EMBED}.bias"],
           "tokenizer.positions.weight": state[_POSITIONS],
           "head.proj.weight": state["head.projection.weight"], "head.proj.bias": state["head.projection.bias"]}
    used = {f"{_EMBED}.weight", f"{_EMBED}.bias", _POSITIONS, "head.projection.weight", "head.projection.bias"}
    prefix = "model.encoder.layers."
    for i, layer in sorted(_layers(state, prefix).items()):
        for p in ("weight", "bias"):
            out[f"core.blocks.{i}.attn.qkv.{p}"] = torch.cat([layer[f"self_attn.{n}.{p}"] for n in _QKV])
            used.update(f"{prefix}{i}.self_attn.{n}.{p}" for n in _QKV)
        for name, value in layer.items():
            for theirs, ours in _LAYER:
                if name.startswith(f"{theirs}."):
                    out[f"core.blocks.{i}.{ours}.{name[len(theirs) + 1:].removeprefix('batchnorm.')}"] = value
                    used.add(f"{prefix}{i}.{name}")
    unknown = sorted(set(state) - used)
    if unknown:
        raise ValueError(f"has tensors xformer has no name for: {', '.join(unknown[:3])}")
    return out


def xformer_state_dict_to_patchtst(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The inverse of :func:`patchtst_state_dict_to_xformer`: a state dict ``PatchTSTForPrediction`` loads; a
    tensor it has no place for (a final norm, RevIN's affine weights, layer scale...) is refused (ValueError)."""
    outside = {"tokenizer.proj.weight": f"{_EMBED}.weight", "tokenizer.proj.bias": f"{_EMBED}.bias",
               "tokenizer.positions.weight": _POSITIONS,
               "head.proj.weight": "head.projection.weight", "head.proj.bias": "head.projection.bias"}
    out = {theirs: state[ours] for ours, theirs in outside.items()}
    unknown = [k for k in state if k not in outside and not k.startswith("core.blocks.")]
    for i, block in sorted(_layers(state, "core.blocks.").items()):
        batchnorm = "res1.norm.running_mean" in block
        for p in ("weight", "bias"):
            for name, part in zip(_QKV, block[f"attn.qkv.{p}"].chunk(3)):
                out[f"model.encoder.layers.{i}.self_attn.{name}.{p}"] = part.clone()
        for name, value in block.items():
            places = [(theirs, ours) for theirs, ours in _LAYER if name.startswith(f"{ours}.")]
            if places:
                theirs, ours = places[0]
                inner = "batchnorm." if batchnorm and theirs.startswith("norm_") else ""
                out[f"model.encoder.layers.{i}.{theirs}.{inner}{name[len(ours) + 1:]}"] = value
            elif not name.startswith("attn.qkv."):
                unknown.append(f"core.blocks.{i}.{name}")
    if unknown:
        raise ValueError(f"PatchTSTForPrediction has no name for {', '.join(unknown[:3])}")
    return out


def patchtst_checkpoint(config: dict, state: dict[str, Tensor], source: str) -> tuple[ModelConfig, dict[str, Tensor]]:
    """(ModelConfig, weights under xformer's names) of a ``PatchTSTForPrediction`` folder's config and state."""
    kinds = [k for k in config.get("architectures") or [] if k != "PatchTSTForPrediction"]
    if kinds:  # the encoder's settings first: a fresh forecast head would not change them
        patchtst_config_to_xformer({**config, **_FORECAST_HEAD}, source)
        raise ConfigError(f"{source}: the checkpoint is {kinds[0]}; xformer reads PatchTSTForPrediction checkpoints "
                          f"(forecasting): {_fresh_head(config)}")
    model = patchtst_config_to_xformer(config, source)  # before the head's tensors: share_projection, loss by name
    projection = state.get("head.projection.weight")
    if projection is None or projection.dim() != 2 or any(k.startswith("head.linear") for k in state):
        raise ConfigError(f"{source}: the weights hold no forecast head (head.projection of a "
                          f"PatchTSTForPrediction); {_fresh_head(config)}")
    weights = patchtst_state_dict_to_xformer(state)
    n_tokens = (model.tokenizer.args["input_len"] - model.tokenizer.args["patch_len"]) // \
        model.tokenizer.args["stride"] + 1
    flatten = model.head.args["pool"] == "flatten"
    expected = (model.head.args["horizon"], (n_tokens if flatten else 1) * model.core.d_model)
    if tuple(projection.shape) != expected:
        raise ConfigError(f"{source}: head.projection.weight is {tuple(projection.shape)}, not the {expected} of "
                          f"(prediction_length, {'patches * ' if flatten else ''}d_model) in config.json; save "
                          "config and weights together")
    return model, weights


def check_series_fits(source: str, checkpoint: ModelConfig, implied: dict) -> None:
    """The data's windows (``DataBundle.model_args``) must be the checkpoint's length (its positions and the head's
    columns) and horizon (the head's rows); any number of series fits (no weight depends on it)."""
    given, horizon = implied.get("tokenizer", {}), implied.get("head", {}).get("horizon")
    if "input_len" not in given or horizon is None:
        raise ConfigError(f"init_from {source}: a PatchTST forecaster reads series windows; use a forecasting "
                          "dataset (csv_series, ett)")
    theirs = checkpoint.tokenizer.args
    if given["input_len"] != theirs["input_len"]:
        raise ConfigError(f"init_from {source}: the data's windows are {given['input_len']} steps but the checkpoint "
                          f"reads context_length={theirs['input_len']}; set data.args.input_len={theirs['input_len']}")
    if horizon != checkpoint.head.args["horizon"]:
        raise ConfigError(f"init_from {source}: the data forecasts {horizon} steps but the checkpoint predicts "
                          f"prediction_length={checkpoint.head.args['horizon']}; set "
                          f"data.args.horizon={checkpoint.head.args['horizon']}")


__all__ = ["patchtst_config_to_xformer", "patchtst_state_dict_to_xformer", "xformer_state_dict_to_patchtst",
           "patchtst_checkpoint", "check_series_fits"]
