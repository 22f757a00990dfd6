"""The moving average of the weights (train.ema; the equation is in config.Ema).

timm's ``ModelEmaV3`` semantics (d_1 = 0, the same warm-up formula), with one difference in what is
averaged: ``parameters()`` (a tied weight is listed once, where ``state_dict()`` would list a tied LM
head twice and average it twice per step) and every floating-point buffer, so that a BatchNorm layer's
running mean and variance follow the averaged weights they normalise (PatchTST, the CNN baseline).
Copying them instead would pair averaged weights with the live model's statistics. Integer buffers
(BatchNorm's ``num_batches_tracked``) are copied; constant tables average to themselves exactly,
since lerp(a, a, w) = a.

The copy also follows the model's ``untrained`` (a head no checkpoint gave, models.clear_stepped_untrained): from
the first step the average is of the stepped weights (d_1 = 0), and a parameter never stepped averages to its
initial value, so the average is untrained exactly where the model is.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .config import Ema


class WeightAverage:
    """A copy of ``model`` (same device, eval mode, no gradients) averaged after every optimizer step:

        theta_ema <- d_t theta_ema + (1 - d_t) theta_t
        d_1 = 0,  d_t = decay,  or with warm-up  d_t = min(decay, 1 - t ** -warmup_power)
    """

    def __init__(self, model: nn.Module, config: Ema):
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.warmup, self.warmup_power = config.decay, config.warmup, config.warmup_power

    def decay_at(self, step: int) -> float:
        if step <= 1:
            return 0.0
        return min(self.decay, 1 - step ** -self.warmup_power) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        pairs = [*zip(self.module.parameters(), model.parameters()), *zip(self.module.buffers(), model.buffers())]
        averaged = [(mine, theirs) for mine, theirs in pairs if mine.is_floating_point()]
        torch._foreach_lerp_([mine for mine, _ in averaged], [theirs for _, theirs in averaged],
                             weight=1.0 - self.decay_at(step))
        for mine, theirs in pairs:
            if not mine.is_floating_point():
                mine.copy_(theirs)
        if hasattr(model, "untrained"):  # a baseline has no such record
            self.module.untrained = model.untrained
