"""Weights to and from PyTorch's own transformer: ``torch.nn.TransformerEncoderLayer`` /
``TransformerDecoderLayer``, ``TransformerEncoder`` / ``TransformerDecoder`` and ``nn.Transformer``.

torch.nn's layers are the textbook block (Vaswani et al. 2017), post-norm or pre-norm
(``norm_first``), with one fused input projection per attention; an xformer stack with
LayerNorm, biases, ReLU or GELU and plain multi-head attention computes the same function,
and its parameters map one to one:

    torch.nn (inside layer i)                    xformer (inside block i)
    self_attn.in_proj_weight / in_proj_bias      attn.qkv.weight / bias       rows [W_q; W_k; W_v] in both
    self_attn.out_proj                           attn.proj
    multihead_attn.in_proj_weight / _bias        cross_attn.q (rows :d) ; cross_attn.kv (rows d:)
    multihead_attn.out_proj                      cross_attn.proj
    linear1 / linear2                            mlp.fc1 / mlp.fc2
    norm1                                        res1.norm
    norm2                  (encoder layer)       res2.norm
    norm2 / norm3          (decoder layer)       res_cross.norm / res2.norm
    layers.{i}.* / norm.*  (TransformerEncoder, TransformerDecoder)    blocks.{i}.* / norm.*
    encoder.* / decoder.*  (nn.Transformer)      encoder.* / decoder.*  (EncoderDecoder)

A layer pairs with a block, a stack with a stack. A GPT-style ``Decoder`` (causal, no
cross-attention) is a ``TransformerEncoder`` run under a causal mask: ``to_torch_nn`` gives
one (call it with ``mask=nn.Transformer.generate_square_subsequent_mask(n), is_causal=True``),
and ``from_torch_nn(encoder, causal=True)`` reads one back. Masks differ in sign: xformer's
``padding_mask`` is True for real tokens, torch's ``src_key_padding_mask`` True for padding.

Dropout: torch.nn drops the attention weights (``self_attn.dropout``, set here to
``core.attn_dropout``), the feed-forward activation and both residual branches (``core.dropout``),
as xformer does; outputs are equal in eval mode, and in training mode up to the random masks.

What torch.nn cannot express is refused in one line (``ConfigError``) naming the feature:
rotary positions, RMSNorm, BatchNorm, SwiGLU, grouped-query attention, residual attention,
layer scale, stochastic depth, dropout after the attention projection, and layers without
biases (torch's ``bias=False`` also drops the LayerNorm biases that xformer always has).

    ref = nn.TransformerEncoderLayer(64, 4, 256, batch_first=True)
    load_torch_nn(encoder.blocks[0], ref)       # torch.nn weights into an existing xformer block
    stack = from_torch_nn(nn.TransformerEncoder(ref, 6))   # an xformer Encoder of the same network
    torch_encoder = to_torch_nn(stack)          # and back: an nn.TransformerEncoder
"""
from __future__ import annotations

import functools
import re

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ConfigError
from ..core import (CoreConfig, PreNormResidual, ResidualAttentionBlock, ResidualAttentionEncoder,
                    ResidualScoresAttention, SwiGLU, build)
from .hf_checkpoint import load_exactly

# xformer name inside a block -> torch.nn name inside a layer, for every block
_SELF = {"attn.qkv": "self_attn.in_proj_", "attn.proj": "self_attn.out_proj.", "mlp.fc1": "linear1.",
         "mlp.fc2": "linear2.", "res1.norm": "norm1."}
# ... and the rest, for blocks without / with cross-attention (cross_attn.q and .kv are concatenated)
_NO_CROSS = {"res2.norm": "norm2."}
_CROSS = {"cross_attn.proj": "multihead_attn.out_proj.", "res_cross.norm": "norm2.", "res2.norm": "norm3."}
_ACTIVATIONS = ("relu", "gelu", "gelu_tanh")
_BLOCK_KEY = re.compile(r"(blocks|layers)\.(\d+)\.(.*)")


def _refuse(what: str) -> ConfigError:
    return ConfigError(f"cannot convert to torch.nn: the model has {what}, which torch.nn's transformer layers "
                       "do not have")


def _sub(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _prefixed(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {prefix + k: v for k, v in state.items()}


# ---------------------------------------------------------------- what the weights show


def _check_block_weights(state: dict[str, Tensor]) -> None:
    """Refuse the features that a block's own weights reveal (its state dict, names inside the block)."""
    if any(k.endswith("scale.gamma") for k in state):
        raise _refuse("layer scale (core.layer_scale)")
    if any(k.endswith("running_mean") for k in state):
        raise _refuse("BatchNorm (core.norm: batchnorm)")
    if "res1.norm.weight" in state and "res1.norm.bias" not in state:
        raise _refuse("RMSNorm (core.norm: rmsnorm)")
    qkv = state["attn.qkv.weight"]
    kv = state.get("cross_attn.kv.weight")
    if qkv.shape[0] != 3 * qkv.shape[1] or (kv is not None and kv.shape[0] != 2 * kv.shape[1]):
        raise _refuse("grouped-query attention (core.n_kv_heads)")
    if state["mlp.fc1.weight"].shape[0] == 2 * state["mlp.fc2.weight"].shape[1]:
        raise _refuse("a SwiGLU feed-forward (core.activation: swiglu)")
    if not all(f"{n}.bias" in state for n in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")):
        raise _refuse("layers without biases (core.qkv_bias / core.bias: false)")


def check_torch_nn(config: CoreConfig) -> None:
    """Raise ConfigError naming the first setting of ``config`` that torch.nn's layers cannot express."""
    checks = [
        (not config.rope, "rotary positions (core.rope)"),
        (config.norm == "layernorm", f"{'RMSNorm' if config.norm == 'rmsnorm' else 'BatchNorm'} "
                                     f"(core.norm: {config.norm})"),
        (config.activation != "swiglu", "a SwiGLU feed-forward (core.activation: swiglu)"),
        (config.activation in _ACTIVATIONS, f"activation {config.activation!r}"),
        (config.n_kv_heads in (None, config.n_heads), "grouped-query attention (core.n_kv_heads)"),
        (not config.residual_attention, "residual attention (core.residual_attention)"),
        (config.layer_scale is None, "layer scale (core.layer_scale)"),
        (config.drop_path == 0, "stochastic depth (core.drop_path)"),
        (config.attn_proj_dropout == 0, "dropout after the attention projection (core.attn_proj_dropout)"),
        (config.qkv_bias and config.bias, "layers without biases (core.qkv_bias / core.bias: false)"),
    ]
    for ok, what in checks:
        if not ok:
            raise _refuse(what)


# ---------------------------------------------------------------- state dicts


def _block_to_torch(state: dict[str, Tensor]) -> dict[str, Tensor]:
    if "attn.qkv.weight" not in state:
        raise ConfigError("cannot convert to torch.nn: expected the weights of an xformer block, stack or "
                          f"EncoderDecoder (attn.qkv.*, blocks.<i>.*, encoder.*), got {next(iter(state), 'none')!r} "
                          "(a Model's core is model.core)")
    _check_block_weights(state)
    cross = "cross_attn.q.weight" in state
    names = {**_SELF, **(_CROSS if cross else _NO_CROSS)}
    out = {}
    for ours, theirs in names.items():
        for p in ("weight", "bias"):
            out[theirs + p] = state[f"{ours}.{p}"]
    if cross:
        for p in ("weight", "bias"):
            out[f"multihead_attn.in_proj_{p}"] = torch.cat([state[f"cross_attn.q.{p}"], state[f"cross_attn.kv.{p}"]])
    used = {f"{n}.{p}" for n in list(names) + (["cross_attn.q", "cross_attn.kv"] if cross else [])
            for p in ("weight", "bias")}
    extra = sorted(set(state) - used)
    if extra:
        raise ConfigError(f"cannot convert to torch.nn: no torch.nn name for the block weight {extra[0]!r}")
    return out


def _layer_from_torch(state: dict[str, Tensor]) -> dict[str, Tensor]:
    if "self_attn.in_proj_weight" not in state:
        raise ConfigError("cannot convert from torch.nn: the attention has separate q/k/v projections "
                          "(kdim/vdim different from d_model), which xformer's fused qkv does not have")
    if "linear1.bias" not in state or "norm1.bias" not in state:
        raise ConfigError("cannot convert from torch.nn: the layers were built with bias=False, which also drops "
                          "the LayerNorm biases that xformer always has")
    cross = "multihead_attn.in_proj_weight" in state
    names = {**_SELF, **(_CROSS if cross else _NO_CROSS)}
    out = {f"{ours}.{p}": state[theirs + p] for ours, theirs in names.items() for p in ("weight", "bias")}
    if cross:
        d = state["multihead_attn.in_proj_weight"].shape[1]
        for p in ("weight", "bias"):
            w = state[f"multihead_attn.in_proj_{p}"]
            out[f"cross_attn.q.{p}"], out[f"cross_attn.kv.{p}"] = w[:d], w[d:]
    return out


def _stack(state: dict[str, Tensor], block_prefix: str, layer_prefix: str, convert) -> dict[str, Tensor]:
    """Convert every block/layer of a stack with ``convert``; the final norm keeps its name."""
    per_block: dict[int, dict[str, Tensor]] = {}
    out = {}
    for k, v in state.items():
        m = _BLOCK_KEY.fullmatch(k)
        if m and m.group(1) == block_prefix:
            per_block.setdefault(int(m.group(2)), {})[m.group(3)] = v
        elif k in ("norm.weight", "norm.bias"):
            out[k] = v
        else:
            raise ConfigError(f"cannot convert the weight {k!r}: not part of a {block_prefix} stack")
    for i, block in sorted(per_block.items()):
        out.update(_prefixed(convert(block), f"{layer_prefix}.{i}."))
    return out


def to_torch_nn_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """xformer names -> torch.nn names, for a block, a stack (Encoder / Decoder) or an EncoderDecoder.

    The result loads with ``strict=True`` into the matching TransformerEncoderLayer /
    TransformerDecoderLayer, TransformerEncoder / TransformerDecoder, or nn.Transformer."""
    if any(k.startswith("encoder.") for k in state):
        return {**_prefixed(to_torch_nn_state_dict(_sub(state, "encoder.")), "encoder."),
                **_prefixed(to_torch_nn_state_dict(_sub(state, "decoder.")), "decoder.")}
    if any(k.startswith("blocks.") for k in state):
        return _stack(state, "blocks", "layers", _block_to_torch)
    return _block_to_torch(state)


def from_torch_nn_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """torch.nn names -> xformer names: the inverse of :func:`to_torch_nn_state_dict`."""
    if any(k.startswith("encoder.") for k in state):
        return {**_prefixed(from_torch_nn_state_dict(_sub(state, "encoder.")), "encoder."),
                **_prefixed(from_torch_nn_state_dict(_sub(state, "decoder.")), "decoder.")}
    if any(k.startswith("layers.") for k in state):
        return _stack(state, "layers", "blocks", _layer_from_torch)
    return _layer_from_torch(state)


# ---------------------------------------------------------------- configs


def _activation(name: str):
    """The ``activation`` argument torch.nn's layers take for an xformer activation."""
    # tanh-GELU as a plain callable: torch's fast path would take an nn.GELU module for exact GELU
    return functools.partial(F.gelu, approximate="tanh") if name == "gelu_tanh" else name


def _activation_name(act) -> str:
    if act is F.relu or isinstance(act, nn.ReLU):
        return "relu"
    if act is F.gelu or (isinstance(act, nn.GELU) and act.approximate == "none"):
        return "gelu"
    if (isinstance(act, nn.GELU) and act.approximate == "tanh") or (
            isinstance(act, functools.partial) and act.func is F.gelu and act.keywords == {"approximate": "tanh"}):
        return "gelu_tanh"
    raise ConfigError(f"cannot convert from torch.nn: activation {act!r}; xformer has relu, gelu and tanh-GELU")


def _first_layer(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.Transformer):
        return module.encoder.layers[0]
    if isinstance(module, (nn.TransformerEncoder, nn.TransformerDecoder)):
        return module.layers[0]
    if isinstance(module, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
        return module
    raise ConfigError(f"cannot convert {type(module).__name__} from torch.nn: expected a Transformer, "
                      "TransformerEncoder/Decoder or TransformerEncoderLayer/DecoderLayer")


def config_from_torch_nn(module: nn.Module) -> CoreConfig:
    """The CoreConfig of the same network as a torch.nn transformer module (its first layer speaks for all)."""
    layer = _first_layer(module)
    if isinstance(module, nn.Transformer):
        n_layers, n_decoder_layers = len(module.encoder.layers), len(module.decoder.layers)
        final_norm = module.encoder.norm is not None
        if final_norm != (module.decoder.norm is not None):
            raise ConfigError("cannot convert from torch.nn: the encoder has a final norm and the decoder not, "
                              "or the other way round; xformer's have one on both or neither")
    elif isinstance(module, (nn.TransformerEncoder, nn.TransformerDecoder)):
        n_layers, n_decoder_layers, final_norm = len(module.layers), None, module.norm is not None
    else:
        n_layers, n_decoder_layers, final_norm = 1, None, False
    if layer.linear1.bias is None:
        raise ConfigError("cannot convert from torch.nn: the layers were built with bias=False, which also drops "
                          "the LayerNorm biases that xformer always has")
    attn = layer.self_attn
    return CoreConfig(d_model=attn.embed_dim, n_layers=n_layers, n_heads=attn.num_heads,
                      d_ff=layer.linear1.out_features, activation=_activation_name(layer.activation),
                      norm_eps=layer.norm1.eps, norm_first=layer.norm_first, final_norm=final_norm,
                      dropout=layer.dropout.p, attn_dropout=attn.dropout, init="torch",
                      n_decoder_layers=n_decoder_layers)


def _norm_kind(norm: nn.Module) -> str:
    if isinstance(norm, nn.LayerNorm):
        return "layernorm"
    return "rmsnorm" if isinstance(norm, nn.RMSNorm) else "batchnorm"


def config_of(module: nn.Module) -> CoreConfig:
    """The CoreConfig an xformer block, stack or EncoderDecoder was built with, as far as torch.nn cares:
    read from its parts (the first block speaks for all), so that it can be checked and rebuilt."""
    stack = getattr(module, "encoder", module)
    blocks = getattr(stack, "blocks", None)
    block = blocks[0] if blocks is not None else module
    attn, mlp, res = block.attn, block.mlp, block.res1
    residual_attention = isinstance(stack, ResidualAttentionEncoder) or isinstance(
        block, ResidualAttentionBlock) or isinstance(attn, ResidualScoresAttention)
    if isinstance(mlp, SwiGLU):
        activation = "swiglu"
    else:
        try:
            activation = _activation_name(mlp.act)
        except ConfigError:
            activation = type(mlp.act).__name__
    final_norm = blocks is not None and not isinstance(stack.norm, nn.Identity)
    scale = getattr(res, "scale", nn.Identity())
    drop_path = max(getattr(b.res1.drop_path, "drop_prob", 0.0) for b in (blocks or [block]))  # grows
    return CoreConfig(
        d_model=attn.proj.out_features, n_layers=len(blocks) if blocks is not None else 1, n_heads=attn.n_heads,
        n_kv_heads=attn.n_kv_heads, d_ff=mlp.fc2.in_features, activation=activation, norm=_norm_kind(res.norm),
        norm_eps=res.norm.eps, norm_first=isinstance(res, PreNormResidual), final_norm=final_norm,
        qkv_bias=attn.qkv.bias is not None, bias=attn.proj.bias is not None and mlp.fc1.bias is not None,
        dropout=res.dropout.p, attn_dropout=attn.dropout, attn_proj_dropout=attn.proj_drop.p,
        residual_attention=residual_attention, drop_path=drop_path,
        layer_scale=None if isinstance(scale, nn.Identity) else float(scale.gamma.detach().flatten()[0]),
        rope=attn.rope is not None, init="torch")


def _torch_layer_args(config: CoreConfig) -> dict:
    return dict(d_model=config.d_model, nhead=config.n_heads, dim_feedforward=config.hidden_dim,
                dropout=config.dropout, activation=_activation(config.activation), layer_norm_eps=config.norm_eps,
                batch_first=True, norm_first=config.norm_first)


# ---------------------------------------------------------------- modules


def _stack_kind(state: dict[str, Tensor]) -> tuple[str, int, bool]:
    """('stack' | 'block', number of blocks, has cross-attention) from xformer state-dict names."""
    blocks = {int(m.group(2)) for k in state if (m := _BLOCK_KEY.fullmatch(k)) and m.group(1) == "blocks"}
    cross = any(".cross_attn." in f".{k}" for k in state)
    return ("stack" if blocks else "block"), max(blocks, default=0) + 1, cross


def _torch_module(config: CoreConfig, state: dict[str, Tensor]) -> nn.Module:
    """The torch.nn layer or stack whose names match the xformer block or stack of ``state``."""
    kind, n_layers, cross = _stack_kind(state)
    layer = (nn.TransformerDecoderLayer if cross else nn.TransformerEncoderLayer)(**_torch_layer_args(config))
    if kind == "block":
        return layer
    norm = nn.LayerNorm(config.d_model, config.norm_eps) if "norm.weight" in state else None
    if cross:
        return nn.TransformerDecoder(layer, n_layers, norm=norm)
    return nn.TransformerEncoder(layer, n_layers, norm=norm, enable_nested_tensor=False)


def to_torch_nn(module: nn.Module) -> nn.Module:
    """The torch.nn module with the architecture and weights of an xformer block, stack or EncoderDecoder.

    EncoderDecoder -> ``nn.Transformer``; Encoder, or Decoder without cross-attention ->
    ``TransformerEncoder``; Decoder with cross-attention -> ``TransformerDecoder``; a block ->
    ``TransformerEncoderLayer`` / ``TransformerDecoderLayer``. Batch-first, in the module's training mode."""
    config = config_of(module)
    check_torch_nn(config)
    state = module.state_dict()
    if any(k.startswith("encoder.") for k in state):
        theirs = nn.Transformer(custom_encoder=_torch_module(config, _sub(state, "encoder.")),
                                custom_decoder=_torch_module(config, _sub(state, "decoder.")),
                                **_torch_layer_args(config))
    else:
        theirs = _torch_module(config, state)
    load_exactly(theirs, to_torch_nn_state_dict(state))
    for m in theirs.modules():
        if isinstance(m, nn.MultiheadAttention):
            m.dropout = config.attn_dropout
    return theirs.train(module.training)


def load_torch_nn(ours: nn.Module, theirs: nn.Module) -> None:
    """Copy the weights of a torch.nn layer / stack / Transformer into the matching xformer
    block / stack / EncoderDecoder ``ours``: every parameter, checked both ways, and the settings
    that weights do not carry (heads, activation, pre/post-norm, eps) checked to agree."""
    config, expected = config_of(ours), config_from_torch_nn(theirs)
    check_torch_nn(config)
    for field in ("d_model", "n_heads", "hidden_dim", "activation", "norm_first", "norm_eps"):
        if getattr(config, field) != getattr(expected, field):
            raise ConfigError(f"cannot load torch.nn weights: the torch.nn module has {field}="
                              f"{getattr(expected, field)!r}, the xformer one {field}={getattr(config, field)!r}; "
                              "build the xformer one from config_from_torch_nn(module)")
    load_exactly(ours, from_torch_nn_state_dict(theirs.state_dict()))


def from_torch_nn(module: nn.Module, causal: bool = False) -> nn.Module:
    """The xformer module with the architecture and weights of a torch.nn transformer module.

    ``nn.Transformer`` -> EncoderDecoder; ``TransformerDecoder`` -> Decoder with cross-attention;
    ``TransformerEncoder`` -> Encoder, or with ``causal=True`` a GPT-style Decoder (for an encoder
    that was run under a causal mask); a layer -> the block of that stack. Same training mode."""
    config = config_from_torch_nn(module)
    if isinstance(module, nn.Transformer):
        ours = build.encoder_decoder(config)
    elif isinstance(_first_layer(module), nn.TransformerDecoderLayer):
        ours = build.decoder(config, cross=True)
    else:
        ours = build.decoder(config) if causal else build.encoder(config)
    if isinstance(module, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
        ours = ours.blocks[0]
    load_exactly(ours, from_torch_nn_state_dict(module.state_dict()))
    return ours.train(module.training)


__all__ = ["check_torch_nn", "config_from_torch_nn", "config_of", "to_torch_nn_state_dict",
           "from_torch_nn_state_dict", "to_torch_nn", "from_torch_nn", "load_torch_nn"]
