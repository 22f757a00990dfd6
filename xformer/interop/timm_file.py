"""A timm ViT state dict as a starting point (``init_from: timm:FILE#MODEL,key=value``; pretrained.py reads the
file and wraps the result): the ``key=value`` pairs after the model name, the ``timm.create_model`` arguments
the tensors show, and the one-line refusals of what cannot load.

The pairs are split at the commas outside brackets, so a list stays one value (``img_size=[32,48]``, the only
way to give a non-square file's size: 96 cells may be 8x12, 12x8 or 6x16), and each value is read as YAML.
A pair the tensors contradict (``num_classes=4`` on a 10-class head, ``img_size=48`` on weights of 32) is
refused naming the value the weights hold: a timm file is loaded at its own size and classes (the data gives
n_classes; a head of another size starts fresh). timm's regularisation arguments are refused too: xformer
takes dropout and drop path from the recipe (``REGULARISATION`` names each key), so they would do nothing, and
``patch_drop_rate`` has no counterpart here.
"""
from __future__ import annotations

import math
import re

import yaml
from torch import Tensor

from ..errors import ConfigError
from ..models import ModelConfig

# timm.create_model's argument -> the recipe key that does it in xformer (and what timm applies it to)
REGULARISATION = {
    "drop_rate": "model.head.args.dropout",  # timm: the head's dropout, before the classifier
    "drop_path_rate": "model.core.drop_path",
    "attn_drop_rate": "model.core.attn_dropout",  # on the attention weights
    "proj_drop_rate": "model.core.attn_proj_dropout",  # timm: also the MLP's, here model.core.dropout
    "pos_drop_rate": "model.tokenizer.args.dropout",  # the tokens after their positions
}
# timm.create_model's regularisation arguments xformer has no counterpart for -> what timm does with them
NO_COUNTERPART = {
    "patch_drop_rate": "timm drops that share of the patch tokens in training; xformer has no patch dropout",
}
# timm's modules whose models are the VisionTransformer timm_vit.py reads, and their names in words
VIT_MODULES = ("vision_transformer", "deit")
VIT_NAMES = "vit_*, deit_*, deit3_*, flexivit_*, e.g. vit_tiny_patch16_224"
# the arguments whose every other value changes a tensor's shape (img_size: _fit_img_size, as a guess may be wrong)
_SHAPE_KEYS = ("num_classes", "embed_dim", "in_chans", "patch_size", "depth", "class_token", "reg_tokens")


def split_pairs(text: str) -> list[str]:
    """'a=1,b=[2,3]' -> ['a=1', 'b=[2,3]']: commas inside brackets or braces stay in their value."""
    pairs, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += (char in "[({") - (char in "])}")
        if char == "," and depth <= 0:
            pairs.append(text[start:i])
            start = i + 1
    return [*pairs, text[start:]]


def timm_pairs(spec: str, pairs: list[str]) -> dict:
    """The create_model arguments ``key=value`` after ``#MODEL``, each value read as YAML."""
    kwargs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"init_from {spec}: {pair!r} must look like key=value, e.g. #vit_small_patch16_224,"
                              "num_heads=6")
        try:
            kwargs[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            problem = str(getattr(e, "problem", None) or type(e).__name__)
            raise ConfigError(f"init_from {spec}: {pair!r}: the value is not YAML ({problem}); give e.g. "
                              "num_heads=6 or img_size=[32,48]") from None
    return kwargs


def _timm_kwargs(state: dict[str, Tensor]) -> dict:
    """The timm.create_model arguments the tensors' shapes show."""
    kwargs = {"num_classes": state["head.weight"].shape[0] if "head.weight" in state else 0}
    proj = state.get("patch_embed.proj.weight")
    if proj is not None and proj.dim() == 4 and proj.shape[2] == proj.shape[3]:
        kwargs.update(embed_dim=proj.shape[0], in_chans=proj.shape[1], patch_size=proj.shape[2])
        depth = len({k.split(".")[1] for k in state if re.match(r"blocks\.\d+\.", k)})
        if depth:
            kwargs["depth"] = depth
        if "blocks.0.mlp.fc1.weight" in state:
            kwargs["mlp_ratio"] = state["blocks.0.mlp.fc1.weight"].shape[0] / proj.shape[0]
        kwargs["class_token"] = "cls_token" in state
        kwargs["fc_norm"] = "fc_norm.weight" in state  # its default follows the pooling, which it does not show
        if not kwargs["class_token"]:  # no token to pool through: timm averages
            kwargs["global_pool"] = "avg"
        kwargs["reg_tokens"] = state["reg_token"].shape[1] if "reg_token" in state else 0
        if "pos_embed" in state:
            n, prefix = state["pos_embed"].shape[1], int(kwargs["class_token"]) + kwargs["reg_tokens"]
            for grid, no_embed_class in ((n - prefix, False), (n, True)):
                side = math.isqrt(max(grid, 0))
                if grid > 0 and side * side == grid:
                    kwargs.update(img_size=side * proj.shape[2], no_embed_class=no_embed_class and prefix > 0)
                    break
    return kwargs


def _pair(size) -> list | None:
    """32 -> [32, 32]; [32, 48] -> [32, 48]; anything else None (create_model will say what is wrong)."""
    pair = [size, size] if isinstance(size, int) else list(size) if isinstance(size, (list, tuple)) else []
    return pair if len(pair) == 2 and all(isinstance(v, int) and v > 0 for v in pair) else None


def _refuse_pairs_the_file_contradicts(shown: dict, extra: dict, source: str) -> None:
    """A regularisation argument, or a size the tensors show otherwise: one line naming the key and the fix."""
    for key, value in extra.items():
        if key in REGULARISATION:
            raise ConfigError(f"{source}: {key}={value} after the model name would do nothing (xformer takes "
                              f"dropout from the recipe, not from create_model); remove it and set "
                              f"{REGULARISATION[key]}={value}")
        if key in NO_COUNTERPART:
            raise ConfigError(f"{source}: {key}={value} after the model name would do nothing ({NO_COUNTERPART[key]}); "
                              "remove it")
        if key not in _SHAPE_KEYS or key not in shown:
            continue
        theirs = shown[key]
        if value == theirs or key == "patch_size" and _pair(value) == _pair(theirs):  # 4 and [4, 4] are one size
            continue
        if key == "num_classes":
            has = f"{theirs} classes" if theirs else "no classes (no head)"
            raise ConfigError(f"{source}: num_classes={value} after the model name, but the file's head has {has}; "
                              "leave it out: the data gives n_classes, and a head of another size starts fresh")
        raise ConfigError(f"{source}: {key}={value} after the model name, but the weights hold {key}={theirs}; "
                          f"leave it out (the tensors give it) or give {key}={theirs}")


def _fit_img_size(shown: dict, state: dict[str, Tensor], size, source: str) -> dict:
    """``shown`` with the pairs' ``img_size`` when the file's positions fit its grid (a non-square grid is not
    shown: 96 cells may be 8x12 or 12x8; nor is a square guess certain: 25 positions may be 5x5 cells, or 24 cells
    and the class token's); whether the class token has a position follows from the count."""
    (h, w), patch = _pair(size) or (None, None), _pair(shown.get("patch_size"))
    if h is None or patch is None or "pos_embed" not in state:
        return shown
    n, prefix = state["pos_embed"].shape[1], int(shown["class_token"]) + shown["reg_tokens"]
    cells = (h // patch[0]) * (w // patch[1])
    for count, no_embed_class in ((n - prefix, False), (n, True)):
        if cells == count:
            return {**shown, "img_size": size, "no_embed_class": no_embed_class and prefix > 0}
    held, fix = ((f"img_size={shown['img_size']}", f"give img_size={shown['img_size']}") if "img_size" in shown else
                 (f"{n - prefix} cells", f"give img_size=[H,W] with H/{patch[0]} x W/{patch[1]} = {n - prefix}"))
    raise ConfigError(f"{source}: img_size={size} after the model name makes {cells} cells, but the weights hold "
                      f"{held} (pos_embed); leave it out or {fix} (the size the file was trained at; "
                      "data.args.image_size may differ: its positions are resampled)")


def _refuse_other_shapes(vit, state: dict[str, Tensor], name: str, source: str) -> None:
    """A tensor of the file whose shape is not the model's: one line naming what to pass after the name."""
    own = vit.state_dict()
    for key, tensor in state.items():
        if key not in own or own[key].shape == tensor.shape:
            continue
        if key == "pos_embed":  # a grid the tensors do not show (not square) or an img_size that misreads it
            cells = tensor.shape[1] - (0 if vit.no_embed_class else vit.num_prefix_tokens)
            (gh, gw), (ph, pw) = vit.patch_embed.grid_size, vit.patch_embed.patch_size
            raise ConfigError(f"{source}: the file's pos_embed holds {cells} cells, but img_size="
                              f"{list(vit.patch_embed.img_size)} makes {gh}x{gw}; give the file's image size after "
                              f"the name, #{name},img_size=[H,W] (H/{ph} x W/{pw} = {cells} cells; "
                              "data.args.image_size may differ: its positions are resampled)")
        raise ConfigError(f"{source}: the file's {key} is {list(tensor.shape)} but timm.create_model({name!r}) makes "
                          f"{list(own[key].shape)}; give the create_model arguments it was saved with after the "
                          "name, #NAME,key=value")


def _refuse_other_families(state: dict[str, Tensor], name: str, source: str) -> None:
    """A name timm knows from another family (resnet18, convnext_tiny), or a file without a ViT's patch embedding:
    one line naming what xformer reads."""
    from timm.models import is_model, is_model_in_modules

    if is_model(name) and not is_model_in_modules(name, VIT_MODULES):
        raise ConfigError(f"{source}: {name.split('.')[0]!r} is not a timm ViT; xformer reads timm's "
                          f"VisionTransformer models ({VIT_NAMES}); give the ViT name the file was saved from")
    if "patch_embed.proj.weight" not in state:
        raise ConfigError(f"{source}: the file holds no timm ViT (no patch_embed.proj.weight; its tensors start "
                          f"{', '.join(list(state)[:3])}); xformer reads timm's VisionTransformer models ({VIT_NAMES})")


def timm_checkpoint(state: dict[str, Tensor], path, name: str, extra: dict,
                    source: str) -> tuple[ModelConfig, dict[str, Tensor]]:
    """(ModelConfig, weights under xformer's names) of a timm ViT state dict created as ``name`` (timm_vit.py)."""
    import timm

    from .timm_vit import from_timm_vit, hub_model_args

    _refuse_other_families(state, name, source)
    if "dist_token" in state:
        raise ConfigError(f"{source}: the file is a distilled DeiT (dist_token and head_dist: a second token and "
                          "classifier, averaged with the first), which xformer's ViT does not have; start from a "
                          "DeiT without distillation (e.g. deit_tiny_patch16_224) or another ViT")
    shown = _timm_kwargs(state)
    _refuse_pairs_the_file_contradicts(shown, extra, source)
    if "img_size" in extra:
        shown = _fit_img_size(shown, state, extra["img_size"], source)
    kwargs = {**shown, **hub_model_args(path, name), **extra}
    try:
        vit = timm.create_model(name, pretrained=False, **kwargs)
    except Exception as e:  # noqa: BLE001 - an unknown name, an argument the model does not take: one line
        problem = (str(e).splitlines() or [type(e).__name__])[0]
        hint = ""
        if problem.startswith("Unknown model"):
            hint = "; timm.list_models('vit_*') gives the names timm knows"
        elif "num_heads" in problem and "num_heads" not in kwargs:
            hint = "; the weights do not show the number of heads: give it after the name, #NAME,num_heads=N"
        raise ConfigError(f"{source}: timm.create_model({name!r}, {kwargs}) failed: {problem}{hint}") from None
    own = vit.state_dict()
    missing, unexpected = [k for k in own if k not in state], [k for k in state if k not in own]
    if missing or unexpected:
        raise ConfigError(f"{source}: the file does not fit {name} (missing {missing[:3]}, unexpected "
                          f"{unexpected[:3]}); give the model name it was saved from, and other "
                          "create_model arguments after it: #NAME,key=value")
    _refuse_other_shapes(vit, state, name, source)
    said = {**hub_model_args(path, name), **extra}
    if shown.get("fc_norm") and shown.get("class_token") and vit.global_pool == "token" and not (
            {"global_pool", "fc_norm"} & set(said)):
        raise ConfigError(f"{source}: the file has fc_norm and a class token, which timm pools by averaging "
                          "(global_pool='avg', fc_norm by default) or through the class token (fc_norm=True); the "
                          f"tensors do not say which: give it after the name, #{name},global_pool=avg or "
                          f"#{name},global_pool=token")
    vit.load_state_dict(state)
    headless = vit.num_classes == 0  # a backbone (num_classes=0): the head is left untrained, as for a ViTModel
    if headless:
        vit.reset_classifier(1)
    try:
        model = from_timm_vit(vit)
    except (ValueError, AttributeError) as e:
        raise ConfigError(f"{source}: {e}") from None
    return model.config, {k: v for k, v in model.state_dict().items() if not (headless and k.startswith("head.fc."))}


__all__ = ["REGULARISATION", "VIT_MODULES", "split_pairs", "timm_pairs", "timm_checkpoint"]
