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


def count_parameters(config: ModelConfig) -> int | None:
    """Parameters and buffers of the model ``config`` builds, counted without allocating them
    (None when some part cannot be built on the meta device: the check is then skipped)."""
    try:
        with torch.device("meta"):
            model = build_model(config)
    except ConfigError:
        raise
    except Exception:  # a part that computes values at construction (e.g. .item()) cannot run on meta
        return None
    return sum(t.numel() for t in (*model.parameters(), *model.buffers()))


def _size(n_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n_bytes < 1024 or unit == "PiB":
            return f"{n_bytes:.3g} {unit}"
        n_bytes /= 1024


def check_fits(config: ModelConfig, device: torch.device) -> None:
    """Raise ConfigError naming the size when training the model cannot fit in ``device``'s memory."""
    available = device_memory(device)
    if config.baseline is None:
        bound = core_parameters_lower_bound(config)
        if bound * BYTES_PER_PARAMETER > available:
            _refuse(bound, available, device, "at least ")
    count = count_parameters(config)
    if count is not None and count * BYTES_PER_PARAMETER > available:
        _refuse(count, available, device, "")


def _refuse(parameters: int, available: int, device: torch.device, qualifier: str) -> None:
    raise ConfigError(f"the model has {qualifier}{parameters:,} parameters: training needs {qualifier}"
                      f"{_size(parameters * BYTES_PER_PARAMETER)} (weights, gradients, AdamW state) but the "
                      f"{device.type} memory is {_size(available)}; lower model.core.d_model, d_ff or n_layers")
