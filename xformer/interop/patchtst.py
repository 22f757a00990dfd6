"""PatchTST weights to and from the reference implementation's structure (Nie et al. 2023).

The reference, ``PatchTST_supervised`` of github.com/yuqinie98/PatchTST
(``models/PatchTST.py`` wrapping ``layers/PatchTST_backbone.py``), names its parts as below;
xformer's PatchTST is an ``encoder`` fed by ``series_patches`` and finished by ``forecast``:

    reference (``model.`` prefix)                     xformer
    revin_layer.affine_weight / affine_bias (C,)       tokenizer.revin.weight / bias     (RevIN affine=True)
    backbone.W_P            Linear(patch_len, d)       tokenizer.proj
    backbone.W_pos          (N, d)                     tokenizer.positions.weight        (learned positions)
    backbone.encoder.layers.{i}.                       core.blocks.{i}.
        self_attn.W_Q / W_K / W_V                          attn.qkv                      rows [W_Q; W_K; W_V]
        self_attn.to_out.0                                 attn.proj
        self_attn.sdp_attn.scale = d_k^-1/2 (frozen)       (a constant in xformer)
        norm_attn.1 / norm_ffn.1                           res1.norm / res2.norm         (BatchNorm1d inside
                                                                                          Transpose-BN-Transpose;
                                                                                          LayerNorm: norm_attn)
        ff.0 / ff.3                                        mlp.fc1 / mlp.fc2
    head.linear             (H, d*N)                   head.proj  (H, N*d)

The one layout change is the head's: the reference flattens each channel's tokens as (d, N)
(column j*N + n), xformer as (N, d) (column n*d + j), so ``head.linear.weight`` is
``head.proj.weight`` with its columns permuted. The reference's BatchNorm buffers (running
mean and variance) travel with the weights.

An ``Encoder`` alone converts to the names of the reference's ``TSTEncoder`` (``layers.{i}.``).
``layout="flat"`` names each encoder layer with the attention's parameters directly in it and
bare norms (``layers.{i}.W_Q``, ``to_out.0``, ``norm_attn``, ``ff.0``), the structure
``tests/test_series_models.py`` writes out as its reference.

What the reference cannot express is refused in one line (``ConfigError``): rotary positions,
grouped-query attention, layer scale, SwiGLU / tanh-GELU, RMSNorm, layers without biases,
pre-norm blocks (the reference's ``pre_norm=True`` computes Norm(x) + F(Norm(x)), which is not
xformer's x + F(Norm(x))), a final norm, positions other than learned, quantile forecasts;
and, reading a checkpoint, series decomposition, per-channel heads and a learned attention
scale (``lsa``).

    state = to_patchtst_state_dict(model)     # loads into the reference's Model (strict=True)
    load_patchtst(model, torch.load(...))     # a reference checkpoint into an xformer model built alike

Dropout rates are not weights: build the xformer model with the reference's (``dropout`` for
its ``dropout``, ``attn_proj_dropout`` = ``dropout`` for ``to_out``'s, ``attn_dropout``).
Hugging Face's ``PatchTSTForPrediction`` is a different structure (no residual attention, no end
padding, its own scaler); its folders are read by ``hf_patchtst.py`` (``init_from: hf:FOLDER``).
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from ..config import ConfigError
from ..core import Decoder
from ..errors import a_or_an
from ..tokenizers.positions import LearnedPositions
from .hf_checkpoint import load_exactly
from .torch_nn import config_of

Layout = Literal["patchtst", "flat"]


def _refuse(what: str) -> ConfigError:
    return ConfigError(f"cannot convert to PatchTST: the model has {what}, which the reference PatchTST does not have")


def _check_core(core: nn.Module) -> None:
    if isinstance(core, Decoder) or not hasattr(core, "blocks"):
        raise _refuse(f"{a_or_an(type(core).__name__)} core (PatchTST's is an encoder)")
    cfg = config_of(core)
    checks = [
        (not cfg.rope, "rotary positions (core.rope)"),
        (cfg.n_kv_heads == cfg.n_heads, "grouped-query attention (core.n_kv_heads)"),
        (cfg.layer_scale is None, "layer scale (core.layer_scale)"),
        (cfg.activation in ("gelu", "relu"), f"activation {cfg.activation!r} (core.activation)"),
        (cfg.norm in ("batchnorm", "layernorm"), f"norm {cfg.norm!r} (core.norm)"),
        (cfg.qkv_bias and cfg.bias, "layers without biases (core.qkv_bias / core.bias: false)"),
        (not cfg.norm_first, "pre-norm blocks (core.norm_first: true; the reference's pre_norm=True computes "
                             "Norm(x) + F(Norm(x)), not x + F(Norm(x)))"),
        (not cfg.has_final_norm, "a final norm (core.final_norm; PatchTST's encoder ends with its last layer)"),
    ]
    for ok, what in checks:
        if not ok:
            raise _refuse(what)


def _layer_names(layout: Layout, batchnorm: bool) -> dict[str, str]:
    """xformer module inside a block -> reference module inside an encoder layer (qkv is split apart)."""
    attn = "self_attn." if layout == "patchtst" else ""
    bn = ".1" if layout == "patchtst" and batchnorm else ""  # nn.Sequential(Transpose, BatchNorm1d, Transpose)
    return {"attn.proj": f"{attn}to_out.0", "mlp.fc1": "ff.0", "mlp.fc2": "ff.3",
            "res1.norm": f"norm_attn{bn}", "res2.norm": f"norm_ffn{bn}"}


def _qkv_names(layout: Layout) -> list[str]:
    attn = "self_attn." if layout == "patchtst" else ""
    return [f"{attn}W_{x}" for x in "QKV"]


def _blocks(state: dict[str, Tensor], prefix: str) -> dict[int, dict[str, Tensor]]:
    out: dict[int, dict[str, Tensor]] = {}
    for k, v in state.items():
        if k.startswith(prefix):
            i, rest = k[len(prefix):].split(".", 1)
            out.setdefault(int(i), {})[rest] = v
    return out


def _rename(key: str, names: dict[str, str]) -> str | None:
    module, _, param = key.rpartition(".")
    return f"{names[module]}.{param}" if module in names else None


def _encoder_to_patchtst(state: dict[str, Tensor], head_dim: int, layout: Layout) -> dict[str, Tensor]:
    """``blocks.{i}.*`` of an xformer encoder -> ``layers.{i}.*`` of the reference TSTEncoder."""
    out = {}
    for i, block in sorted(_blocks(state, "blocks.").items()):
        names = _layer_names(layout, batchnorm="res1.norm.running_mean" in block)
        for k, v in block.items():
            if k.startswith("attn.qkv."):
                for name, part in zip(_qkv_names(layout), v.chunk(3)):
                    out[f"layers.{i}.{name}.{k.rsplit('.', 1)[1]}"] = part.clone()
            elif (theirs := _rename(k, names)) is not None:
                out[f"layers.{i}.{theirs}"] = v
            else:
                raise ConfigError(f"cannot convert to PatchTST: no reference name for core.blocks.{i}.{k}")
        if layout == "patchtst":
            out[f"layers.{i}.self_attn.sdp_attn.scale"] = torch.tensor(head_dim ** -0.5)
    return out


def _encoder_from_patchtst(state: dict[str, Tensor], head_dim: int, layout: Layout) -> dict[str, Tensor]:
    """The inverse of :func:`_encoder_to_patchtst`."""
    out = {}
    for i, layer in sorted(_blocks(state, "layers.").items()):
        batchnorm = any(k.endswith("running_mean") for k in layer)
        names = {v: k for k, v in _layer_names(layout, batchnorm).items()}
        q, k_, v_ = _qkv_names(layout)
        for p in ("weight", "bias"):
            out[f"blocks.{i}.attn.qkv.{p}"] = torch.cat([layer.pop(f"{n}.{p}") for n in (q, k_, v_)])
        scale = layer.pop("self_attn.sdp_attn.scale", None)
        if scale is not None and abs(float(scale) - head_dim ** -0.5) > 1e-6:
            raise ConfigError(f"cannot convert from PatchTST: layer {i} has a learned attention scale "
                              f"{float(scale):.6g} (lsa=True) instead of 1/sqrt(d_k); xformer's is fixed")
        for k, v in layer.items():
            ours = _rename(k, names)
            if ours is None:
                raise ConfigError(f"cannot convert from PatchTST: no xformer name for the layer weight {k!r}")
            out[f"blocks.{i}.{ours}"] = v
    return out


def _check_model(model: nn.Module) -> tuple[int, int]:
    """Refuse a Model the reference cannot express; return (n_tokens, d_model)."""
    tok, head = model.tokenizer, model.head
    if not (hasattr(tok, "patch_len") and getattr(tok, "channel_independent", False)):
        raise _refuse(f"{a_or_an(type(tok).__name__)} tokenizer (PatchTST's is series_patches)")
    if not isinstance(tok.positions, LearnedPositions):
        raise _refuse(f"positions other than learned ({type(tok.positions).__name__}; PatchTST's W_pos is a "
                      "learned table)")
    if getattr(head, "n_q", 1) != 1 or not hasattr(head, "proj"):
        raise _refuse("a quantile or non-forecast head (PatchTST's Flatten_Head gives one value per step)")
    _check_core(model.core)
    return tok.n_tokens, tok.proj.out_features


def to_patchtst_state_dict(module: nn.Module, layout: Layout = "patchtst") -> dict[str, Tensor]:
    """The reference's names for an xformer PatchTST ``Model`` (``model.`` prefix: loads into the
    reference's ``Model``) or for its encoder alone (the reference's ``TSTEncoder``)."""
    if not hasattr(module, "tokenizer"):
        _check_core(module)
        return _encoder_to_patchtst(module.state_dict(), module.blocks[0].attn.head_dim, layout)
    n, d = _check_model(module)
    state = module.state_dict()
    out = {f"backbone.encoder.{k}": v for k, v in _encoder_to_patchtst(
        {k[len("core."):]: v for k, v in state.items() if k.startswith("core.")},
        module.core.blocks[0].attn.head_dim, layout).items()}
    out["backbone.W_P.weight"], out["backbone.W_P.bias"] = state["tokenizer.proj.weight"], state["tokenizer.proj.bias"]
    out["backbone.W_pos"] = state["tokenizer.positions.weight"]
    if "tokenizer.revin.weight" in state:
        out["revin_layer.affine_weight"] = state["tokenizer.revin.weight"]
        out["revin_layer.affine_bias"] = state["tokenizer.revin.bias"]
    w = state["head.proj.weight"]  # (H, N*d), column n*d + j  ->  (H, d*N), column j*N + n
    out["head.linear.weight"] = w.view(-1, n, d).transpose(1, 2).reshape(w.shape[0], d * n).contiguous()
    out["head.linear.bias"] = state["head.proj.bias"]
    return {f"model.{k}": v for k, v in out.items()}


def from_patchtst_state_dict(state: dict[str, Tensor], module: nn.Module,
                             layout: Layout = "patchtst") -> dict[str, Tensor]:
    """A reference state dict (a ``Model``'s, with or without its ``model.`` prefix, or a ``TSTEncoder``'s)
    -> the names of ``module``, an xformer Model or Encoder built with the same hyperparameters."""
    if not hasattr(module, "tokenizer"):
        _check_core(module)
        return _encoder_from_patchtst(dict(state), module.blocks[0].attn.head_dim, layout)
    n, d = _check_model(module)
    state = {k.removeprefix("model."): v for k, v in state.items()}
    for marker, what in (("model_trend.", "series decomposition (decomposition=1)"),
                         ("head.linears.", "a head per channel (individual=1)"),
                         ("head.1.", "a pretraining head")):
        if any(k.startswith(marker) for k in state):
            raise ConfigError(f"cannot convert from PatchTST: the checkpoint has {what}, which xformer's "
                              "PatchTST does not have")
    encoder = {k[len("backbone.encoder."):]: v for k, v in state.items() if k.startswith("backbone.encoder.")}
    out = {f"core.{k}": v for k, v in
           _encoder_from_patchtst(encoder, module.core.blocks[0].attn.head_dim, layout).items()}
    names = {"backbone.W_P.weight": "tokenizer.proj.weight", "backbone.W_P.bias": "tokenizer.proj.bias",
             "backbone.W_pos": "tokenizer.positions.weight", "revin_layer.affine_weight": "tokenizer.revin.weight",
             "revin_layer.affine_bias": "tokenizer.revin.bias", "head.linear.bias": "head.proj.bias"}
    for k, v in state.items():
        if k in names:
            out[names[k]] = v
        elif k == "head.linear.weight":  # (H, d*N) -> (H, N*d)
            out["head.proj.weight"] = v.view(-1, d, n).transpose(1, 2).reshape(v.shape[0], n * d).contiguous()
        elif not k.startswith("backbone.encoder."):
            raise ConfigError(f"cannot convert from PatchTST: no xformer name for the weight {k!r}")
    return out


def load_patchtst(module: nn.Module, state: dict[str, Tensor], layout: Layout = "patchtst") -> None:
    """Load a reference PatchTST state dict into ``module`` (every weight and buffer, checked both ways)."""
    load_exactly(module, from_patchtst_state_dict(state, module, layout))


__all__ = ["to_patchtst_state_dict", "from_patchtst_state_dict", "load_patchtst"]
