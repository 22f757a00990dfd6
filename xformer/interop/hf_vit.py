"""ViT weights to and from Hugging Face ``transformers`` (``ViTModel``, ``ViTForImageClassification``).

A Hugging Face ViT (Dosovitskiy et al. 2021) is, in xformer's terms, an ``encoder`` with pre-norm LayerNorm
blocks and a final norm (eps ``layer_norm_eps``, 1e-12), fed by ``image_patches`` with a class token and learned
positions for it and for every cell, finished by ``classification`` on the class token:

    x = [cls; conv_p(image)] + pos                    tokenizer "image_patches" (class_token, positions learned)
    x = x + attn(LN(x)); x = x + mlp(LN(x))           norm_first=True, final norm
    z = W_c LN(x)[:, 0] + b_c                         head "classification", pool cls, no pooler

Names as ``save_pretrained`` writes them (``vit.`` prefix optional; transformers 5 renames the blocks' in
memory, ``_IN_MEMORY``, and back on saving) -> xformer:

    embeddings.cls_token                                  tokenizer.cls_token
    embeddings.position_embeddings (1, 1 + N, d)          tokenizer.pos_prefix (row 0), tokenizer.pos_grid (rows 1..N)
    embeddings.patch_embeddings.projection                tokenizer.proj
    encoder.layer.{i}.layernorm_before / layernorm_after  core.blocks.{i}.res1.norm / res2.norm
    encoder.layer.{i}.attention.attention.query|key|value   core.blocks.{i}.attn.qkv (rows stacked [q; k; v])
    encoder.layer.{i}.attention.output.dense              core.blocks.{i}.attn.proj
    encoder.layer.{i}.intermediate.dense / output.dense   core.blocks.{i}.mlp.fc1 / fc2
    layernorm                                             core.norm
    classifier                                            head.fc

A ``ViTModel``'s pooler (tanh of a linear map of [CLS]) is not read: ``ViTForImageClassification`` does not
use it either (``vit_unread`` names it for init_from's summary). The classes are ``id2label``'s
(``support.hf_class_names``). The image processor's ``preprocessor_config.json`` (``image_mean`` /
``image_std``; 0.5 for the google/vit checkpoints, not ImageNet's statistics) is the normalisation a run started
from the folder uses (``vit_normalisation``), and an export writes the run's back (``vit_preprocessor_config``).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

from ..core import CoreConfig
from ..models import ModelConfig, PartConfig
from .support import hf_class_names, need, state_with_zero_biases

_ACTIVATION_TO_XFORMER = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu"}
_ACTIVATION_TO_HF = {"gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "relu": "relu"}
_BLOCK = [("layernorm_before", "res1.norm"), ("layernorm_after", "res2.norm"), ("attention.output.dense", "attn.proj"),
          ("intermediate.dense", "mlp.fc1"), ("output.dense", "mlp.fc2")]
# transformers 5's in-memory names of a block's parts -> the names on disk (what save_pretrained writes)
_IN_MEMORY = [(".attention.q_proj.", ".attention.attention.query."),
              (".attention.k_proj.", ".attention.attention.key."),
              (".attention.v_proj.", ".attention.attention.value."), (".attention.o_proj.", ".attention.output.dense."),
              (".mlp.fc1.", ".intermediate.dense."), (".mlp.fc2.", ".output.dense.")]


def _get(config, key, default=None):
    return config.get(key, default) if isinstance(config, dict) else getattr(config, key, default)


def _pair(value) -> list[int]:
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value), int(value)]


def vit_config_to_xformer(config) -> ModelConfig:
    """A ``ViTConfig`` (or its dict) -> the xformer ModelConfig, its head the classifier of ``id2label``'s classes
    (a ``ViTModel`` has none: the head then starts fresh)."""
    activation = _get(config, "hidden_act", "gelu")
    if activation not in _ACTIVATION_TO_XFORMER:
        raise ValueError(f"ViT activation {activation!r} not supported; one of {', '.join(_ACTIVATION_TO_XFORMER)}")
    if _get(config, "problem_type") == "regression":
        raise ValueError("a regression model (problem_type regression) is not a classifier; xformer reads ViT "
                         "image classifiers")
    if _get(config, "problem_type") == "multi_label_classification":  # a sigmoid per class, not a softmax
        raise ValueError("a multi-label classifier (problem_type multi_label_classification) scores each class apart, "
                         "where xformer's head picks one; to start from its encoder save it as one: "
                         "ViTModel.from_pretrained(FOLDER).save_pretrained(NEW_FOLDER)")
    eps = _get(config, "layer_norm_eps", 1e-12)
    core = CoreConfig(d_model=_get(config, "hidden_size"), n_layers=_get(config, "num_hidden_layers"),
                      n_heads=_get(config, "num_attention_heads"), d_ff=_get(config, "intermediate_size"),
                      activation=_ACTIVATION_TO_XFORMER[activation], norm_eps=eps, norm_first=True, final_norm=True,
                      qkv_bias=bool(_get(config, "qkv_bias", True)), dropout=_get(config, "hidden_dropout_prob", 0.0),
                      attn_dropout=_get(config, "attention_probs_dropout_prob", 0.0), init="torch")
    tokenizer = PartConfig("image_patches", {"image_size": _pair(_get(config, "image_size", 224)),
                                             "patch_size": _pair(_get(config, "patch_size", 16)),
                                             "channels": _get(config, "num_channels", 3), "class_token": True,
                                             "positions": "learned", "prefix_positions": True})
    head = PartConfig("classification", {"n_classes": len(hf_class_names(config)), "pool": "cls"})
    return ModelConfig("encoder", core, tokenizer, head)


def _disk_names(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The state dict under the names on disk, without the ``vit.`` prefix, whichever transformers wrote it."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("vit.")
        if key.startswith("layers."):  # transformers 5 in memory: layers.{i}.attention.q_proj...
            key = "encoder.layer." + key.removeprefix("layers.")
            for new, old in _IN_MEMORY:
                key = key.replace(new, old)
        out[key] = value
    return out


def vit_state_dict_to_xformer(state: dict[str, Tensor], n_layers: int) -> dict[str, Tensor]:
    """Hugging Face ViT names -> xformer's (the classifier where the checkpoint has one; the pooler is left out)."""
    state = _disk_names(state)
    position = state["embeddings.position_embeddings"][0]
    out = {"tokenizer.cls_token": state["embeddings.cls_token"], "tokenizer.pos_prefix": position[:1],
           "tokenizer.pos_grid": position[1:], "core.norm.weight": state["layernorm.weight"],
           "core.norm.bias": state["layernorm.bias"]}
    for p in ("weight", "bias"):
        out[f"tokenizer.proj.{p}"] = state[f"embeddings.patch_embeddings.projection.{p}"]
        if f"classifier.{p}" in state:
            out[f"head.fc.{p}"] = state[f"classifier.{p}"]
    for i in range(n_layers):
        layer, block = f"encoder.layer.{i}.", f"core.blocks.{i}."
        for p in ("weight", "bias"):
            qkv = [state.get(f"{layer}attention.attention.{n}.{p}") for n in ("query", "key", "value")]
            if all(t is not None for t in qkv):  # qkv_bias=False has no q / k / v biases
                out[f"{block}attn.qkv.{p}"] = torch.cat(qkv)
            for hf, ours in _BLOCK:
                out[f"{block}{ours}.{p}"] = state[f"{layer}{hf}.{p}"]
    return out


def vit_unread(state: dict[str, Tensor]) -> dict[str, str]:
    """The layers of the checkpoint that xformer leaves out -> what each is: a ``ViTModel``'s pooler (its
    ``ViTForImageClassification`` reads the class token without it, as xformer's classifier does)."""
    return {"pooler.dense": "pooler"} if "pooler.dense.weight" in _disk_names(state) else {}


def xformer_config_to_vit(config: ModelConfig, **extra):
    """The ``ViTConfig`` of an xformer ViT classifier; ValueError naming what Hugging Face's ViT cannot express."""
    ViTConfig = need("transformers", "exporting to ViT").ViTConfig
    core, tok, head = config.core, config.tokenizer.args, config.head.args
    checks = [
        (config.architecture == "encoder" and config.tokenizer.name == "image_patches"
         and config.head.name == "classification", "another architecture, tokenizer or head"),
        (core.norm == "layernorm" and core.norm_first and core.has_final_norm,
         "blocks other than pre-LayerNorm with a final norm"),
        (core.activation in _ACTIVATION_TO_HF, f"activation {core.activation!r}"),
        (not core.rope, "rotary positions"),
        (core.n_kv_heads in (None, core.n_heads), f"grouped-query attention ({core.n_kv_heads} key/value heads)"),
        (core.layer_scale is None, "layer scale"),
        (not core.residual_attention, "residual attention"),
        (tok.get("class_token", True), "no class token (Hugging Face's ViT classifies its [CLS] token)"),
        (not tok.get("register_tokens", 0), "register tokens"),
        (tok.get("positions", "learned") == "learned" and tok.get("prefix_positions", True),
         "positions other than learned ones for the class token and every cell"),
        (not tok.get("pre_norm"), "a norm before the blocks (model.tokenizer.args.pre_norm)"),
        (not tok.get("shifted_patches"), "shifted patch tokenization"),
        (head.get("pool", "cls") == "cls" and not head.get("norm") and not head.get("pooler"),
         "pooling other than the class token, or a norm or pooler after it"),
    ]
    for ok, what in checks:
        if not ok:
            raise ValueError(f"cannot export to Hugging Face's ViT: the model has {what}")
    if "id2label" not in extra:
        extra = {"num_labels": head["n_classes"], **extra}
    size, patch = _pair(tok.get("image_size", 224)), _pair(tok.get("patch_size", 16))
    return ViTConfig(hidden_size=core.d_model, num_hidden_layers=core.n_layers, num_attention_heads=core.n_heads,
                     intermediate_size=core.hidden_dim, hidden_act=_ACTIVATION_TO_HF[core.activation],
                     hidden_dropout_prob=core.dropout, attention_probs_dropout_prob=core.attn_dropout,
                     layer_norm_eps=core.norm_eps, image_size=size[0] if size[0] == size[1] else size,
                     patch_size=patch[0] if patch[0] == patch[1] else patch, num_channels=tok.get("channels", 3),
                     qkv_bias=core.qkv_bias, **extra)


def xformer_state_dict_to_vit(state: dict[str, Tensor], n_layers: int) -> dict[str, Tensor]:
    """xformer -> a ``ViTForImageClassification`` state dict under the names on disk (``vit.`` prefix)."""
    out = {"vit.embeddings.cls_token": state["tokenizer.cls_token"],
           "vit.embeddings.position_embeddings": torch.cat([state["tokenizer.pos_prefix"],
                                                            state["tokenizer.pos_grid"]])[None],
           "vit.layernorm.weight": state["core.norm.weight"], "vit.layernorm.bias": state["core.norm.bias"]}
    for p in ("weight", "bias"):
        out[f"vit.embeddings.patch_embeddings.projection.{p}"] = state[f"tokenizer.proj.{p}"]
        out[f"classifier.{p}"] = state[f"head.fc.{p}"]
    for i in range(n_layers):
        layer, block = f"vit.encoder.layer.{i}.", f"core.blocks.{i}."
        for p in ("weight", "bias"):
            if f"{block}attn.qkv.{p}" in state:
                for name, t in zip(("query", "key", "value"), state[f"{block}attn.qkv.{p}"].chunk(3)):
                    out[f"{layer}attention.attention.{name}.{p}"] = t
            for hf, ours in _BLOCK:
                out[f"{layer}{hf}.{p}"] = state[f"{block}{ours}.{p}"]
    return {k: v.detach().contiguous().clone() for k, v in out.items()}


def vit_normalisation(folder: str | Path) -> dict | None:
    """{"mean", "std"} of the image processor beside a checkpoint (``preprocessor_config.json``), mean 0 / std 1
    when it does not normalise; None without one. Its 1/255 rescaling is xformer's [0, 1] scaling."""
    try:
        spec = json.loads((Path(folder) / "preprocessor_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(spec, dict):
        return None
    if not spec.get("do_normalize", True):
        return {"mean": [0.0], "std": [1.0]}
    mean, std = spec.get("image_mean"), spec.get("image_std")
    if not (isinstance(mean, list) and isinstance(std, list)):
        return None
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}


def vit_preprocessor_config(preprocess: dict | None, image_size) -> dict:
    """A ``ViTImageProcessor``'s preprocessor_config.json for the run's evaluation transform (preprocess.json):
    resized to the model's size (bilinear, PIL's filter that xformer's antialiased resize matches), scaled to
    [0, 1], normalised by the run's mean / std (none for a run that does not normalise)."""
    h, w = _pair(image_size)
    mean, std = (preprocess or {}).get("mean"), (preprocess or {}).get("std")
    return {"image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": h, "width": w},
            "resample": 2, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": mean is not None,
            "image_mean": list(mean) if mean is not None else [0.5],
            "image_std": list(std) if std is not None else [0.5]}


def save_vit(model, folder: str | Path, preprocess: dict | None = None, **config_extra) -> Path:
    """config.json + model.safetensors (+ preprocessor_config.json) that ``ViTForImageClassification
    .from_pretrained(folder)`` and ``AutoImageProcessor.from_pretrained(folder)`` load, with any transformers
    version (the names on disk). A bias-free model gets zero biases."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hf_config = xformer_config_to_vit(model.config, **config_extra)
    hf_config.architectures = ["ViTForImageClassification"]
    hf_config.save_pretrained(folder)
    own = model.state_dict()  # a qkv projection without bias stays without (qkv_bias=False)
    state = {k: v for k, v in state_with_zero_biases(model).items() if k in own or not k.endswith("attn.qkv.bias")}
    save_file(xformer_state_dict_to_vit(state, model.config.core.n_layers), str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    spec = vit_preprocessor_config(preprocess, model.config.tokenizer.args.get("image_size", 224))
    (folder / "preprocessor_config.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    return folder


__all__ = ["vit_config_to_xformer", "vit_state_dict_to_xformer", "xformer_config_to_vit", "xformer_state_dict_to_vit",
           "vit_normalisation", "vit_preprocessor_config", "save_vit", "vit_unread"]
