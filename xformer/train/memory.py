"""Refuse a model that cannot fit in memory before allocating it (a typo such as d_model=1048576
would otherwise ask the allocator for terabytes, or swap the machine to a standstill).

Training in fp32 with AdamW holds, per parameter, the weight, its gradient and Adam's two moments:

    bytes >= 16 * P

(activations come on top). P is counted exactly by building the model on PyTorch's ``meta``
device, which records shapes and allocates nothing; a core so large that even the lower bound

    P >= L * (2 d^2 + 2 d d_ff)       (per layer: at least Q and the output projection, and the MLP)

exceeds the memory is refused before that build, since building millions of layer objects takes long.
"""
from __future__ import annotations

import os

import torch

from ..config import ConfigError
from ..models import ModelConfig, build_model

BYTES_PER_PARAMETER = 16  # fp32 weight, gradient, AdamW exp_avg and exp_avg_sq


def device_memory(device: torch.device) -> int:
    """Total memory of ``device`` in bytes (the machine's RAM for the CPU)."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def core_parameters_lower_bound(config: ModelConfig) -> int:
    core = config.core
    layers = core.n_layers
    if config.architecture == "encoder-decoder":
        layers += core.n_decoder_layers or core.n_layers
    return layers * (2 * core.d_model ** 2 + 2 * core.d_model * core.hidden_dim)


def _meta_model(config: ModelConfig) -> torch.nn.Module | None:
    """The model ``config`` builds, on the meta device (None when some part cannot be built there)."""
    try:
        with torch.device("meta"):
            return build_model(config)
    except ConfigError:
        raise
    except Exception:  # a part that computes values at construction (e.g. .item()) cannot run on meta
        return None


def _numel(module: torch.nn.Module) -> int:
    return sum(t.numel() for t in (*module.parameters(), *module.buffers()))


def count_parameters(config: ModelConfig) -> int | None:
    """Parameters and buffers of the model ``config`` builds, counted without allocating them
    (None when some part cannot be built on the meta device: the check is then skipped)."""
    model = _meta_model(config)
    return None if model is None else _numel(model)


def _size(n_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n_bytes < 1024 or unit == "PiB":
            return f"{n_bytes:.3g} {unit}"
        n_bytes /= 1024


def check_fits(config: ModelConfig, device: torch.device) -> None:
    """Raise ConfigError naming the size, and the part's arguments to lower, when training the model cannot fit
    in ``device``'s memory."""
    available = device_memory(device)
    if config.baseline is None:
        bound = core_parameters_lower_bound(config)
        if bound * BYTES_PER_PARAMETER > available:
            _refuse(bound, available, device, "at least ", CORE_ADVICE)
    model = _meta_model(config)
    count = None if model is None else _numel(model)
    if count is not None and count * BYTES_PER_PARAMETER > available:
        _refuse(count, available, device, "", _advice(config, model))


CORE_ADVICE = "lower model.core.d_model, d_ff or n_layers"
FIXED_BY_DATA = ("n_classes", "image_size", "channels", "n_channels", "pad_id")  # what a user would not lower here


def _advice(config: ModelConfig, model: torch.nn.Module) -> str:
    """What to lower: the core's sizes, or the largest size argument of the part (tokenizer, head, baseline) that
    holds the most parameters (not one the data fixes, such as the classes)."""
    if config.baseline is not None:
        part, key, count = config.baseline, "model.baseline", _numel(model)
    else:
        counts = {name: _numel(getattr(model, name)) for name in ("tokenizer", "core", "head")}
        name = max(counts, key=counts.get)
        if name == "core":
            return CORE_ADVICE
        part, key, count = getattr(config, name), f"model.{name}", counts[name]

    def size(value) -> float:
        values = value if isinstance(value, (list, tuple)) else [value]
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return max(numbers) if numbers and len(numbers) == len(values) else 0

    sizes = [k for k in part.args if k not in FIXED_BY_DATA and size(part.args[k]) > 1]
    largest = max(sizes, key=lambda k: size(part.args[k]), default=None)
    named = f"{key}.args.{largest} (now {part.args[largest]})" if largest is not None else f"{key}.args"
    return f"the {part.name} {key.split('.')[-1]} holds {count:,} of them: lower {named}"


def _refuse(parameters: int, available: int, device: torch.device, qualifier: str, advice: str) -> None:
    raise ConfigError(f"the model has {qualifier}{parameters:,} parameters: training needs {qualifier}"
                      f"{_size(parameters * BYTES_PER_PARAMETER)} (weights, gradients, AdamW state) but the "
                      f"{device.type} memory is {_size(available)}; {advice}")
