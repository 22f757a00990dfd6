"""What the exporters share: optional packages named with their pip extra, and bias-free layers as zero biases.

Optional packages (``pip install "xformer[hf]"`` for transformers, ``"xformer[onnx]"`` for onnx and
onnxruntime) are imported through :func:`need`: a missing one is a :class:`MissingExtra`, an
ImportError whose message is the one line to act on (the CLI prints it and exits with status 2).
"""
from __future__ import annotations

import importlib

import torch
from torch import Tensor, nn

from ..errors import ConfigError, UserError

EXTRAS = {"transformers": "hf", "onnx": "onnx", "onnxruntime": "onnx", "onnxscript": "onnx"}


class MissingExtra(UserError, ImportError):
    """An optional package is not installed; the message names the pip extra that brings it."""


def need(module: str, purpose: str):
    """``importlib.import_module(module)``, or a one-line MissingExtra naming ``pip install "xformer[EXTRA]"``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = EXTRAS.get(module.split(".")[0], module)
        raise MissingExtra(f"{purpose} needs the {module.split('.')[0]} package, which is not installed; "
                           f"install it with: pip install \"xformer[{extra}]\"") from None


class CannotExport(ConfigError):
    """The target format cannot express this model; the message names the feature (one line)."""


def describe(config) -> str:
    """'a decoder with the text tokenizer and the causal_lm head': what a refusal says the model is."""
    if config.baseline is not None:
        return f"the baseline {config.baseline.name!r}"
    article = "an" if config.architecture.startswith(("e", "a")) else "a"
    return f"{article} {config.architecture} with the {config.tokenizer.name} tokenizer and the {config.head.name} head"


def state_with_zero_biases(model: nn.Module) -> dict[str, Tensor]:
    """``model.state_dict()`` plus a zero ``bias`` for every ``nn.Linear`` built without one.

    x W^T + 0 = x W^T, so a bias-free model (nanoGPT's bias=False, ``core.bias: false``) is exactly
    the same network as one whose biases are zero: the form GPT-2, BERT and timm's ViT always have."""
    state = dict(model.state_dict())
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and module.bias is None:
            weight = module.weight
            state[f"{name}.bias"] = torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device)
    return state


def hf_class_names(config) -> list[str]:
    """A Hugging Face classifier's class names in id order (its config's ``id2label``, a dict or a config
    object), with Hugging Face's default LABEL_i read as the label i ("0", "1", ...)."""
    get = config.get if isinstance(config, dict) else lambda key, default=None: getattr(config, key, default)
    id2label = get("id2label") or {}
    n = len(id2label) or get("num_labels", 2)
    names = [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(n)]
    if names == [f"LABEL_{i}" for i in range(len(names))]:
        return [str(i) for i in range(len(names))]
    return names


__all__ = ["MissingExtra", "CannotExport", "describe", "hf_class_names", "need", "state_with_zero_biases"]
