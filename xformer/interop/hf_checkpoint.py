"""What the Hugging Face converters share: reading a local checkpoint folder and a checked load.

A Hugging Face checkpoint folder holds ``config.json`` and ``model.safetensors``
(what ``save_pretrained`` writes). Only safetensors are read: loading a file
never executes code from it (pickled ``pytorch_model.bin`` files are refused).
Nothing is downloaded: a hub name that is not a local folder is an error.
"""
from __future__ import annotations

import json
from pathlib import Path

from torch import Tensor, nn


def is_checkpoint_folder(source) -> bool:
    return isinstance(source, (str, Path))


def read_checkpoint(folder: str | Path) -> tuple[dict, dict[str, Tensor]]:
    """(config dict, state dict) of a local folder holding config.json and model.safetensors."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a local folder; save the model with save_pretrained(folder) "
                                "first (xformer never downloads)")
    config_file, weights_file = folder / "config.json", folder / "model.safetensors"
    for f in (config_file, weights_file):
        if not f.is_file():
            hint = " (pickled .bin checkpoints are not read; re-save with safe_serialization)" \
                if f is weights_file and (folder / "pytorch_model.bin").exists() else ""
            raise FileNotFoundError(f"{f} is missing{hint}")
    return json.loads(config_file.read_text(encoding="utf-8")), load_file(str(weights_file))


def strip_prefix(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """Drop ``prefix`` (e.g. 'transformer.', 'bert.') from the keys that have it."""
    return {k.removeprefix(prefix): v for k, v in state.items()}


def load_exactly(module: nn.Module, state: dict[str, Tensor], allow_missing: tuple[str, ...] = ()) -> None:
    """load_state_dict that names every key that did not match, except those starting with ``allow_missing``."""
    result = module.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(allow_missing)]
    if missing or result.unexpected_keys:
        raise ValueError(f"weights do not match the model: missing {missing}, unexpected {result.unexpected_keys}")
