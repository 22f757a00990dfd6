"""Weights to and from timm's ``VisionTransformer``.

A timm ViT is, in xformer's terms, an ``encoder`` (pre-norm, LayerNorm eps 1e-6,
qkv bias, exact GELU) fed by ``image_patches`` and finished by ``classification``.
The parameters map one to one:

    timm                               xformer
    patch_embed.proj.{weight,bias}     tokenizer.proj.*
    cls_token (1, 1, d)                tokenizer.cls_token
    reg_token (1, R, d)                tokenizer.reg_tokens
    pos_embed (1, P + HW, d)           cat(tokenizer.pos_prefix (P, d), tokenizer.pos_grid (HW, d))
    norm_pre.*                         tokenizer.norm_pre.*
    blocks.i.norm1.* / norm2.*         core.blocks.i.res1.norm.* / res2.norm.*
    blocks.i.attn.qkv.* / attn.proj.*  core.blocks.i.attn.qkv.* / attn.proj.*   (same [q; k; v] row layout)
    blocks.i.ls1.gamma / ls2.gamma     core.blocks.i.res1.scale.gamma / res2.scale.gamma
    blocks.i.mlp.fc1.* / fc2.*         core.blocks.i.mlp.fc1.* / fc2.*
    norm.*   (global_pool="token")     core.norm.*
    fc_norm.* (global_pool="avg")      head.norm.*   (timm normalises after pooling then)
    head.*                             head.fc.*

``P`` is the number of prefix tokens, or 0 with ``no_embed_class=True``.
Not supported (a one-line error says so): q/k norm, attention-pool ("map") heads,
patch-embedding norms, non-GELU activations.

    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    model = from_timm_vit(vit)                     # logits equal timm's to 1e-4
    vit.load_state_dict(to_timm_state_dict(model))  # strict, and back
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..core import CoreConfig
from ..models import Model, ModelConfig, PartConfig, build_model
from .support import state_with_zero_biases


def _unsupported(vit: nn.Module) -> str | None:
    blk = vit.blocks[0]
    if not isinstance(getattr(blk.attn, "q_norm", nn.Identity()), nn.Identity):
        return "q/k normalisation (qk_norm=True)"
    if getattr(vit, "attn_pool", None) is not None:
        return "attention-pool head (global_pool='map')"
    if not isinstance(getattr(vit.patch_embed, "norm", nn.Identity()), nn.Identity):
        return "a norm inside the patch embedding"
    if vit.global_pool not in ("token", "avg"):
        return f"global_pool={vit.global_pool!r} (use 'token' or 'avg')"
    act = getattr(blk.mlp, "act", None)
    if not (isinstance(act, nn.GELU)):
        return f"activation {type(act).__name__} (GELU only)"
    if not isinstance(getattr(blk, "norm1", None), nn.LayerNorm):
        return f"norm {type(getattr(blk, 'norm1', None)).__name__} (LayerNorm only)"
    return None


def config_from_timm_vit(vit: nn.Module) -> ModelConfig:
    """The xformer ModelConfig of the same architecture as a timm VisionTransformer."""
    problem = _unsupported(vit)
    if problem is not None:
        raise ValueError(f"this timm ViT uses {problem}, which xformer's ViT does not have")
    blk = vit.blocks[0]
    ls = getattr(blk, "ls1", nn.Identity())
    layer_scale = float(ls.gamma.detach().flatten()[0]) if hasattr(ls, "gamma") else None
    use_fc_norm = not isinstance(vit.fc_norm, nn.Identity)
    core = CoreConfig(
        d_model=vit.embed_dim, n_layers=len(vit.blocks), n_heads=blk.attn.num_heads,
        d_ff=blk.mlp.fc1.out_features,
        activation="gelu_tanh" if blk.mlp.act.approximate == "tanh" else "gelu",
        norm_eps=blk.norm1.eps, norm_first=True, final_norm=not isinstance(vit.norm, nn.Identity),
        qkv_bias=blk.attn.qkv.bias is not None, bias=True, layer_scale=layer_scale, init="torch",
    )
    pe = vit.patch_embed
    tokenizer = PartConfig("image_patches", {
        "image_size": list(pe.img_size), "patch_size": list(pe.patch_size), "channels": pe.proj.in_channels,
        "class_token": vit.cls_token is not None, "register_tokens": vit.num_reg_tokens,
        "positions": "learned" if vit.pos_embed is not None else "none",
        "prefix_positions": not vit.no_embed_class, "pre_norm": not isinstance(vit.norm_pre, nn.Identity),
    })
    head = PartConfig("classification", {
        "n_classes": vit.num_classes, "pool": "cls" if vit.global_pool == "token" else "mean",
        "norm": use_fc_norm,
    })
    return ModelConfig(architecture="encoder", core=core, tokenizer=tokenizer, head=head)


def _renames(n_layers: int) -> dict[str, str]:
    """xformer name -> timm name, for every parameter except the positions (split/concatenated)."""
    names = {
        "tokenizer.proj.weight": "patch_embed.proj.weight", "tokenizer.proj.bias": "patch_embed.proj.bias",
        "tokenizer.cls_token": "cls_token", "tokenizer.reg_tokens": "reg_token",
        "tokenizer.norm_pre.weight": "norm_pre.weight", "tokenizer.norm_pre.bias": "norm_pre.bias",
        "core.norm.weight": "norm.weight", "core.norm.bias": "norm.bias",
        "head.norm.weight": "fc_norm.weight", "head.norm.bias": "fc_norm.bias",
        "head.fc.weight": "head.weight", "head.fc.bias": "head.bias",
    }
    per_block = {
        "res1.norm": "norm1", "res2.norm": "norm2", "attn.qkv": "attn.qkv", "attn.proj": "attn.proj",
        "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2",
    }
    for i in range(n_layers):
        for ours, theirs in per_block.items():
            for p in ("weight", "bias"):
                names[f"core.blocks.{i}.{ours}.{p}"] = f"blocks.{i}.{theirs}.{p}"
        names[f"core.blocks.{i}.res1.scale.gamma"] = f"blocks.{i}.ls1.gamma"
        names[f"core.blocks.{i}.res2.scale.gamma"] = f"blocks.{i}.ls2.gamma"
    return names


def xformer_state_dict_from_timm(timm_sd: dict[str, Tensor], model: Model) -> dict[str, Tensor]:
    """Rename a timm ViT state dict into the names of ``model`` (built from :func:`config_from_timm_vit`)."""
    ours = model.state_dict()
    renames = _renames(model.config.core.n_layers)
    out = {k: timm_sd[v] for k, v in renames.items() if k in ours and v in timm_sd}
    if "pos_embed" in timm_sd:
        pos = timm_sd["pos_embed"][0]
        n_prefix = ours["tokenizer.pos_prefix"].shape[0] if "tokenizer.pos_prefix" in ours else 0
        if n_prefix:
            out["tokenizer.pos_prefix"] = pos[:n_prefix]
        out["tokenizer.pos_grid"] = pos[n_prefix:]
    missing = sorted(set(ours) - set(out))
    if missing:
        raise ValueError(f"the timm state dict has no weights for {', '.join(missing[:4])}; "
                         "build the model with config_from_timm_vit(vit)")
    return out


def to_timm_state_dict(model: Model) -> dict[str, Tensor]:
    """The state dict timm's VisionTransformer of the same config loads with strict=True. Projections
    and MLPs without biases (``core.bias: false``) get zero ones, as timm's always have them; a qkv
    projection without bias stays without (timm's ``qkv_bias=False``)."""
    if model.config.core.residual_attention:
        raise ValueError("this model uses residual attention, which timm's VisionTransformer does not have")
    own = model.state_dict()
    ours = {k: v for k, v in state_with_zero_biases(model).items() if k in own or not k.endswith("attn.qkv.bias")}
    renames = _renames(model.config.core.n_layers)
    out = {renames[k]: v.clone() for k, v in ours.items() if k in renames}
    if "tokenizer.pos_grid" in ours:
        parts = [ours["tokenizer.pos_prefix"]] if "tokenizer.pos_prefix" in ours else []
        out["pos_embed"] = torch.cat(parts + [ours["tokenizer.pos_grid"]], dim=0)[None].clone()
    unmapped = sorted(set(ours) - set(renames) - {"tokenizer.pos_prefix", "tokenizer.pos_grid"})
    if unmapped:
        raise ValueError(f"no timm name for {', '.join(unmapped[:4])}: this model is not a timm-style ViT")
    return out


def from_timm_vit(vit: nn.Module) -> Model:
    """An xformer Model with the architecture and weights of a timm VisionTransformer."""
    model = build_model(config_from_timm_vit(vit))
    model.load_state_dict(xformer_state_dict_from_timm(vit.state_dict(), model), strict=True)
    return model


def save_timm_safetensors(model: Model, path) -> None:
    """Write the weights under timm's names with safetensors (load with timm's load_checkpoint)."""
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in to_timm_state_dict(model).items()}, str(path))


def hub_model_args(path, name: str) -> dict:
    """The ``model_args`` of a timm Hub config.json beside the weights file ``path`` (``xformer export --format
    timm`` writes one) when it names the same architecture ``name``; {} otherwise. They hold what the tensors
    cannot show, above all ``num_heads``: a ViT of another head count loads the same tensors and computes
    something else."""
    import json
    from pathlib import Path

    try:
        config = json.loads((Path(path).parent / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    args = config.get("model_args") if isinstance(config, dict) and config.get("architecture") == name else None
    return dict(args) if isinstance(args, dict) else {}


def hub_label_names(path) -> list[str] | None:
    """The class names of a timm Hub config.json beside the weights file ``path`` (its ``label_names``, as
    ``xformer export --format timm`` writes them, or its ``pretrained_cfg``'s), in the order of the logits; None
    when there is none."""
    import json
    from pathlib import Path

    try:
        config = json.loads((Path(path).parent / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    names = config.get("label_names") or (config.get("pretrained_cfg") or {}).get("label_names")
    return [str(n) for n in names] if isinstance(names, list) and names else None


def hub_normalisation(path) -> dict | None:
    """{"mean", "std"} of the ``pretrained_cfg`` in a timm Hub config.json beside the weights file ``path`` (the
    normalisation the model was trained with; an ``xformer export --format timm`` folder has the run's), or None."""
    import json
    from pathlib import Path

    try:
        config = json.loads((Path(path).parent / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    cfg = config.get("pretrained_cfg") if isinstance(config, dict) else None
    mean, std = (cfg.get("mean"), cfg.get("std")) if isinstance(cfg, dict) else (None, None)
    if not (isinstance(mean, (list, tuple)) and isinstance(std, (list, tuple))):
        return None
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}


__all__ = ["hub_model_args", "hub_label_names", "hub_normalisation", "config_from_timm_vit", "from_timm_vit",
           "to_timm_state_dict",
           "xformer_state_dict_from_timm", "save_timm_safetensors"]
