"""What the Hugging Face converters share: reading a local checkpoint folder and a checked load.

A Hugging Face checkpoint folder holds ``config.json`` and the weights ``save_pretrained`` writes:
``model.safetensors``, or shards named by ``model.safetensors.index.json`` above ``max_shard_size``
(older folders: ``pytorch_model.bin`` and its index). A pickle is read with
``torch.load(weights_only=True)``, so loading a file never executes code from it.
Nothing is downloaded: a hub name that is not a local folder is an error.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import ConfigError


def is_checkpoint_folder(source) -> bool:
    return isinstance(source, (str, Path))


def read_weights_file(path: Path) -> dict[str, Tensor]:
    """A state dict from safetensors, or from a pickle with ``torch.load(weights_only=True)`` (no code runs); the
    ``module.`` that DistributedDataParallel puts before every name is dropped, as timm's ``load_checkpoint`` does."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return {k.removeprefix("module."): v for k, v in load_file(str(path)).items()}
    import argparse

    try:
        # timm's train.py keeps its arguments beside the weights: a Namespace is plain data, and allowing it runs no code
        with torch.serialization.safe_globals([argparse.Namespace]):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a pickle with code, a truncated file: one line
        raise ConfigError(f"{path} cannot be read with torch.load(weights_only=True) ({type(e).__name__}): it is not "
                          "a file of plain tensors, and xformer never unpickles code; save model.state_dict() or "
                          ".safetensors") from None
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ConfigError(f"{path} holds no state dict of tensors; save model.state_dict()")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _read_shards(index: Path) -> dict[str, Tensor]:
    """The state dict of a sharded checkpoint (``save_pretrained`` above ``max_shard_size``): the shard files
    that ``index``'s ``weight_map`` names, each read once, every mapped tensor checked present."""
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        files = sorted(set(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ConfigError(f"{index} is no shard index (a JSON object with a weight_map of tensor -> file); "
                          "save the model again with save_pretrained(folder)") from None
    state = {}
    for name in files:
        if not (index.parent / name).is_file():
            raise ConfigError(f"{index} names the shard {name}, which is not in {index.parent}; copy every shard "
                              "file of the checkpoint into the folder")
        state.update(read_weights_file(index.parent / name))
    missing = sorted(set(weight_map) - set(state))
    if missing:
        raise ConfigError(f"the shards of {index.parent} lack {len(missing)} tensors their index names "
                          f"({', '.join(missing[:3])}); copy the checkpoint's files again")
    return state


def read_hf_folder(folder: str | Path) -> tuple[dict, dict[str, Tensor]]:
    """(config.json, state dict) of a local Hugging Face folder: model.safetensors, else pytorch_model.bin, else
    the shards their index (``model.safetensors.index.json``, ``pytorch_model.bin.index.json``) names."""
    folder = Path(folder)
    if folder.is_file():
        raise ConfigError(f"{folder} is a file; give the Hugging Face model folder that holds it ({folder.parent})")
    if not (folder / "config.json").is_file() and (folder / "config.yaml").is_file():
        raise ConfigError(f"{folder} is an xformer run folder (config.yaml), not a Hugging Face one; give it without "
                          f"hf:, e.g. init_from: {folder}")
    if not (folder / "config.json").is_file():
        what = "no such folder" if not folder.exists() else "no config.json"
        raise ConfigError(f"{folder} is not a Hugging Face model folder ({what}); give a local folder written by "
                          "save_pretrained (xformer never downloads)")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except ValueError as e:
        raise ConfigError(f"{folder / 'config.json'} is not JSON ({e})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{folder / 'config.json'} is not a model configuration (a JSON object)")
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return config, read_weights_file(folder / name)
    for name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (folder / name).is_file():
            return config, _read_shards(folder / name)
    raise ConfigError(f"{folder} holds no model.safetensors or pytorch_model.bin (nor a shard index); save the model "
                      "with save_pretrained(folder)")


def strip_prefix(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """Drop ``prefix`` (e.g. 'transformer.', 'bert.') from the keys that have it."""
    return {k.removeprefix(prefix): v for k, v in state.items()}


def load_exactly(module: nn.Module, state: dict[str, Tensor], allow_missing: tuple[str, ...] = ()) -> None:
    """load_state_dict that names every key that did not match, except those starting with ``allow_missing``."""
    result = module.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(allow_missing)]
    if missing or result.unexpected_keys:
        raise ValueError(f"weights do not match the model: missing {missing}, unexpected {result.unexpected_keys}")


def tied_output_layer(weights: dict[str, Tensor], layer: str, embedding: str, tie: bool) -> bool:
    """Whether a language model's output layer (``weights[layer]``, xformer's name) is its word embedding
    (``weights[embedding]``), as transformers decides on loading: config.json ties them (``tie``, its
    ``tie_word_embeddings``) and the weights hold no other output layer (one that differs is loaded untied: transformers
    "will NOT tie them"). A tied layer is given the embedding in ``weights``; an untied one the weights lack stays
    out of them, to be left fresh (``model.untrained``) as transformers initialises it ("newly initialized")."""
    own = weights.get(layer)
    tied = tie and (own is None or torch.equal(own, weights[embedding]))
    if tied:
        weights[layer] = weights[embedding]
    return tied


__all__ = ["is_checkpoint_folder", "read_hf_folder", "read_weights_file", "strip_prefix", "load_exactly",
           "tied_output_layer"]
