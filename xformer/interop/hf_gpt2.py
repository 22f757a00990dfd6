"""GPT-2 weights to and from Hugging Face ``transformers`` (``GPT2LMHeadModel`` / ``GPT2Model``).

GPT-2 (Radford et al. 2019) is exactly an xformer decoder:

    x   = wte[ids] + wpe[pos]                       tokenizer "text", learned positions
    x   = x + attn(ln_1(x)); x = x + mlp(ln_2(x))   pre-norm blocks (norm_first=True)
    h   = ln_f(x)                                   final norm
    logits = h wte^T                                head "causal_lm", tied

(with ``tie_word_embeddings: false``, ``lm_head``: a folder without it, e.g. a ``GPT2Model`` saved so, leaves the
head untrained, as transformers initialises it fresh; ``gpt2_checkpoint``).

Names and layouts, Hugging Face -> xformer:

    transformer.wte / wpe           tokenizer.embed / tokenizer.positions
    h.{i}.ln_1 / ln_2               core.blocks.{i}.res1.norm / res2.norm
    h.{i}.attn.c_attn               core.blocks.{i}.attn.qkv     rows [q; k; v] in both
    h.{i}.attn.c_proj               core.blocks.{i}.attn.proj
    h.{i}.mlp.c_fc / c_proj         core.blocks.{i}.mlp.fc1 / fc2
    ln_f                            core.norm

GPT-2's ``Conv1D`` computes x W + b with W stored (in, out); ``nn.Linear``
computes x W^T + b with W stored (out, in): every Conv1D weight is transposed.
``gelu_new`` is the tanh approximation of GELU (``activation="gelu_tanh"``).
Dropout is placed slightly differently (xformer's Mlp also drops after the
activation), so parity holds in eval mode, which is what the tests check.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from torch import Tensor

from ..core import CoreConfig
from ..models import Model, ModelConfig, PartConfig, build_model, untrained_line
from .hf_checkpoint import is_checkpoint_folder, load_exactly, read_hf_folder, strip_prefix, tied_output_layer
from .support import need, state_with_zero_biases

# (Hugging Face name inside block i, xformer name inside block i, stored as Conv1D?)
_BLOCK = [("ln_1", "res1.norm", False), ("attn.c_attn", "attn.qkv", True), ("attn.c_proj", "attn.proj", True),
          ("ln_2", "res2.norm", False), ("mlp.c_fc", "mlp.fc1", True), ("mlp.c_proj", "mlp.fc2", True)]
_ACTIVATION_TO_XFORMER = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}
_ACTIVATION_TO_HF = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}
# the task layers of transformers' other GPT-2 classes, which no xformer head is -> what each is
_TASK_LAYERS = {"score": "sequence classifier", "classifier": "per-token classifier",
                "qa_outputs": "answer-span scorer", "multiple_choice_head": "multiple-choice scorer"}


def _get(config, key, default=None):
    return config.get(key, default) if isinstance(config, dict) else getattr(config, key, default)


# ---------------------------------------------------------------- configs


def gpt2_config_to_xformer(config) -> ModelConfig:
    """A ``GPT2Config`` (or its dict) -> the xformer ModelConfig of the same network."""
    unsupported = {"scale_attn_by_inverse_layer_idx": True, "add_cross_attention": True, "scale_attn_weights": False}
    for key, bad in unsupported.items():
        if _get(config, key, not bad) == bad:
            raise ValueError(f"GPT-2 config {key}={bad} is not supported by the xformer conversion")
    activation = _get(config, "activation_function", "gelu_new")
    if activation not in _ACTIVATION_TO_XFORMER:
        raise ValueError(f"GPT-2 activation {activation!r} not supported; one of {', '.join(_ACTIVATION_TO_XFORMER)}")
    d = _get(config, "n_embd")
    core = CoreConfig(d_model=d, n_layers=_get(config, "n_layer"), n_heads=_get(config, "n_head"),
                      d_ff=_get(config, "n_inner") or 4 * d, activation=_ACTIVATION_TO_XFORMER[activation],
                      norm_eps=_get(config, "layer_norm_epsilon", 1e-5), norm_first=True, final_norm=True,
                      dropout=_get(config, "resid_pdrop", 0.1), attn_dropout=_get(config, "attn_pdrop", 0.1),
                      init="gpt2")
    tokenizer = PartConfig("text", {"vocab_size": _get(config, "vocab_size"),
                                    "max_positions": _get(config, "n_positions"),
                                    "dropout": _get(config, "embd_pdrop", 0.1)})
    head = PartConfig("causal_lm", {"tie_weights": bool(_get(config, "tie_word_embeddings", True))})
    return ModelConfig("decoder", core, tokenizer, head)


def xformer_config_to_gpt2(config: ModelConfig, **extra):
    """The inverse of :func:`gpt2_config_to_xformer`; ``extra`` goes to ``GPT2Config`` (e.g. eos_token_id).

    bos/eos default to the last id, GPT-2's convention (50256 = <|endoftext|>). A bias-free model
    (``core.bias`` / ``qkv_bias`` false) is a GPT-2 whose biases are zero (see ``to_hf_gpt2``).
    Raises ValueError naming the first setting GPT-2 cannot express."""
    GPT2Config = need("transformers", "exporting to GPT-2").GPT2Config

    core, tok, head = config.core, config.tokenizer, config.head
    positions = tok.args.get("positions", "learned")
    checks = [
        (config.architecture == "decoder", f"architecture {config.architecture!r} (GPT-2 is a decoder)"),
        (tok.name == "text", f"the {tok.name!r} tokenizer (GPT-2's is 'text')"),
        (not core.rope, "rotary positions"),
        (core.n_kv_heads in (None, core.n_heads), f"grouped-query attention ({core.n_kv_heads} key/value heads)"),
        (positions == "learned", ("no position table" if positions == "none" else f"{positions} positions")
         + " (GPT-2 learns its positions: train with model.tokenizer.args.positions=learned)"),
        (head.name == "causal_lm", f"the {head.name!r} head (GPT-2's is causal_lm)"),
        (not head.args.get("bias", False), "a bias in the output layer (GPT-2's lm_head has none: train with "
                                           "model.head.args.bias=false)"),
        (core.norm == "layernorm", f"{core.norm} norms (GPT-2 uses LayerNorm: train with model.core.norm=layernorm)"),
        (core.norm_first, "post-norm blocks (GPT-2's are pre-norm: train with model.core.norm_first=true)"),
        (core.has_final_norm, "no final norm (GPT-2 has ln_f: train with model.core.final_norm=true)"),
        (core.activation in _ACTIVATION_TO_HF, f"activation {core.activation!r}"),
        (core.layer_scale is None, "layer scale"),
        (not core.residual_attention, "residual attention"),
        (core.attn_proj_dropout == 0, "dropout on the attention output besides the residual dropout"),
    ]
    for ok, what in checks:
        if not ok:
            raise ValueError(f"cannot export to GPT-2: the model has {what}")
    extra.setdefault("bos_token_id", tok.args["vocab_size"] - 1)
    extra.setdefault("eos_token_id", tok.args["vocab_size"] - 1)
    return GPT2Config(vocab_size=tok.args["vocab_size"], n_positions=tok.args.get("max_positions", 1024),
                      n_embd=core.d_model, n_layer=core.n_layers, n_head=core.n_heads,
                      n_inner=core.hidden_dim, activation_function=_ACTIVATION_TO_HF[core.activation],
                      resid_pdrop=core.dropout, attn_pdrop=core.attn_dropout, embd_pdrop=tok.args.get("dropout", 0.0),
                      layer_norm_epsilon=core.norm_eps, tie_word_embeddings=head.args.get("tie_weights", True),
                      **extra)


# ---------------------------------------------------------------- state dicts


def gpt2_state_dict_to_xformer(state: dict[str, Tensor], n_layers: int) -> dict[str, Tensor]:
    """Hugging Face GPT-2 names and layouts -> xformer (``transformer.`` prefix optional); ``head.proj.weight``
    only where the state holds ``lm_head.weight`` (a tied head is the embedding: ``gpt2_checkpoint``)."""
    lm_head = state.get("lm_head.weight")
    state = strip_prefix(state, "transformer.")
    out = {"tokenizer.embed.weight": state["wte.weight"], "tokenizer.positions.weight": state["wpe.weight"],
           "core.norm.weight": state["ln_f.weight"], "core.norm.bias": state["ln_f.bias"]}
    if lm_head is not None:
        out["head.proj.weight"] = lm_head
    for i in range(n_layers):
        for hf, ours, conv1d in _BLOCK:
            w = state[f"h.{i}.{hf}.weight"]
            out[f"core.blocks.{i}.{ours}.weight"] = w.t() if conv1d else w
            out[f"core.blocks.{i}.{ours}.bias"] = state[f"h.{i}.{hf}.bias"]
    return out


def xformer_state_dict_to_gpt2(state: dict[str, Tensor], n_layers: int) -> dict[str, Tensor]:
    """xformer -> the state dict of a ``GPT2LMHeadModel``."""
    out = {"transformer.wte.weight": state["tokenizer.embed.weight"],
           "transformer.wpe.weight": state["tokenizer.positions.weight"],
           "transformer.ln_f.weight": state["core.norm.weight"], "transformer.ln_f.bias": state["core.norm.bias"],
           "lm_head.weight": state["head.proj.weight"]}
    for i in range(n_layers):
        for hf, ours, conv1d in _BLOCK:
            w = state[f"core.blocks.{i}.{ours}.weight"]
            out[f"transformer.h.{i}.{hf}.weight"] = (w.t() if conv1d else w).contiguous()
            out[f"transformer.h.{i}.{hf}.bias"] = state[f"core.blocks.{i}.{ours}.bias"]
    return out


# ---------------------------------------------------------------- models


def gpt2_checkpoint(config, state: dict[str, Tensor]) -> tuple[ModelConfig, dict[str, Tensor]]:
    """(ModelConfig, weights under xformer's names) of a GPT-2 config and state dict, the head tied to the word
    embedding where transformers ties it (``tied_output_layer``): a ``GPT2Model`` saved with
    ``tie_word_embeddings=False`` has no head to read, which is left out of the weights (untrained)."""
    model = gpt2_config_to_xformer(config)
    weights = gpt2_state_dict_to_xformer(state, model.core.n_layers)
    model.head.args["tie_weights"] = tied_output_layer(weights, "head.proj.weight", "tokenizer.embed.weight",
                                                       model.head.args["tie_weights"])
    return model, weights


def gpt2_unread(state: dict[str, Tensor]) -> dict[str, str]:
    """The layers of a GPT-2 state dict outside the decoder and its LM head -> what each is (a
    ``GPT2ForSequenceClassification``'s ``score``), so that a summary names them rather than dropping them unsaid."""
    decoder = ("transformer.", "lm_head.", "wte.", "wpe.", "h.", "ln_f.")
    return {layer: _TASK_LAYERS.get(layer, "layer") for layer in sorted({k.split(".")[0] for k in state
                                                                          if not k.startswith(decoder)})}


def load_gpt2(source) -> Model:
    """An xformer Model (eval mode) from a ``GPT2LMHeadModel`` / ``GPT2Model`` object or a local
    folder written by ``save_pretrained`` (config.json + model.safetensors). A head the checkpoint does not give
    (an untied ``GPT2Model``'s) keeps its initial values, with a warning, and is named in ``model.untrained``."""
    if is_checkpoint_folder(source):
        config, state = read_hf_folder(source)
    else:
        config, state = source.config, source.state_dict()
    model_config, weights = gpt2_checkpoint(config, state)
    model = build_model(model_config)
    load_exactly(model, weights, allow_missing=("head.",))
    model.untrained = frozenset(name for name in model.state_dict() if name not in weights)
    if model.untrained:
        warnings.warn(untrained_line(model, None, "so its logits are random"), stacklevel=2)
    return model.eval()


def to_hf_gpt2(model: Model, **config_extra):
    """The ``GPT2LMHeadModel`` (eval mode) with the weights of an xformer GPT-2-shaped Model
    (a bias-free one gets zero biases: the same function)."""
    hf_config = xformer_config_to_gpt2(model.config, **config_extra)
    hf = need("transformers", "exporting to GPT-2").GPT2LMHeadModel(hf_config)
    state = xformer_state_dict_to_gpt2(state_with_zero_biases(model), model.config.core.n_layers)
    load_exactly(hf, state, allow_missing=tuple(f"transformer.h.{i}.attn.bias" for i in range(hf_config.n_layer)))
    return hf.eval()


def save_gpt2(model: Model, folder: str | Path, **config_extra) -> Path:
    """Write config.json + model.safetensors that ``GPT2LMHeadModel.from_pretrained(folder)`` loads."""
    to_hf_gpt2(model, **config_extra).save_pretrained(folder)
    return Path(folder)


__all__ = ["gpt2_config_to_xformer", "xformer_config_to_gpt2", "gpt2_state_dict_to_xformer", "gpt2_unread",
           "xformer_state_dict_to_gpt2", "gpt2_checkpoint", "load_gpt2", "to_hf_gpt2", "save_gpt2"]
