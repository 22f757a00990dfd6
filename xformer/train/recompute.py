"""Activation checkpointing, ``train.activation_checkpointing: true`` (timm's ``--grad-checkpointing``, Hugging
Face's ``gradient_checkpointing_enable()``): memory for compute.

Without it, backpropagation keeps every intermediate tensor of every block (attention inputs, softmax weights,
the MLP's hidden layer of d_ff per token...). With it, each block of the core keeps only its input and runs its
forward pass a second time during the backward pass (``torch.utils.checkpoint``, non-reentrant) to rebuild them:
the tensors kept for backward shrink to about one (B, N, d) input per block, at the price of a second forward
pass of the blocks (roughly a third more compute per step). The random state is replayed, so dropout and drop
path draw the same masks again and the gradients are those of the plain model (tested). Evaluation and
generation (no gradient) run the blocks as usual. The weights and their names are untouched: checkpoints,
resume and export see the same model.

Refused for a model without a transformer core (a baseline) and for a core with BatchNorm (PatchTST's
``norm: batchnorm``), whose running statistics the second forward pass would update twice.
"""
from __future__ import annotations

import functools

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..errors import ConfigError


def _recomputed(forward, *args, **kwargs):
    if torch.is_grad_enabled():
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)
    return forward(*args, **kwargs)


def checkpoint_blocks(model: nn.Module) -> int:
    """Make every block of ``model.core`` (an encoder-decoder's both stacks) recompute its activations in the
    backward pass; return how many blocks. Applying it twice changes nothing."""
    core = getattr(model, "core", None)
    stacks = [getattr(core, name) for name in ("encoder", "decoder") if hasattr(core, name)] or [core]
    blocks = [block for stack in stacks if stack is not None for block in getattr(stack, "blocks", [])]
    if not blocks:
        raise ConfigError("train.activation_checkpointing recomputes the blocks of a transformer core, and this "
                          "model has none (a baseline); leave it out")
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for block in blocks for m in block.modules()):
        raise ConfigError("train.activation_checkpointing runs each block twice per step, and BatchNorm in the "
                          "blocks (model.core.norm=batchnorm) would update its running statistics twice; use "
                          "layernorm, or leave activation checkpointing out")
    for block in blocks:
        if not isinstance(block.forward, functools.partial):  # the block's own forward, not yet wrapped
            block.forward = functools.partial(_recomputed, block.forward)
    return len(blocks)


__all__ = ["checkpoint_blocks"]
