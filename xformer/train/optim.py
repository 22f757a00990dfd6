"""AdamW with decay / no-decay parameter groups, and the learning-rate schedules recipes use.

Weight decay (decoupled, Loshchilov & Hutter 2019: w <- w - lr * wd * w) is applied to every
trained parameter with two or more dimensions, by shape alone: weight matrices, conv kernels and
embedding tables, and also learned positions (``pos_grid``, ``pos_prefix``, a position table), the
class and register tokens (``cls_token`` (1, 1, d), ``reg_tokens``) and attention pooling's
``query``. Biases, norm gains and shifts, layer scales and every other 1-D parameter are not decayed.
This is nanoGPT's convention (``configure_optimizers``: decay iff ``p.dim() >= 2``, so its ``wpe``
positions decay too). timm's and DeiT's ViTs differ: their ``no_weight_decay()`` also exempts
``pos_embed``, ``cls_token`` and ``reg_token`` (``create_optimizer_v2``), so a timm recipe run here
also decays those (each step multiplies them by 1 - lr_t wd, besides their gradient step).

Every schedule is built from torch.optim.lr_scheduler and stepped once per
optimizer step; the optional warmup is a LinearLR from lr/(warmup+1) to lr,
chained in front with SequentialLR.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LinearLR, LRScheduler, SequentialLR, StepLR

from .config import TrainConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: parameters with >= 2 dims decay (tokens and positions too), the others (biases, norms) do not."""
    decay, no_decay = [], []
    for p in model.parameters():  # shared (tied) parameters are listed once
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr, betas=config.betas)


class _EpochDecay:
    """factor(t) = 1 for the first ``keep`` epochs, then gamma ** (epoch - keep + 1).

    A callable object (not a lambda) so that LambdaLR's state_dict keeps it out of the checkpoint.
    """

    def __init__(self, steps_per_epoch: int, keep: int, gamma: float):
        self.steps_per_epoch, self.keep, self.gamma = steps_per_epoch, keep, gamma

    def __call__(self, step: int) -> float:
        epoch = step // self.steps_per_epoch
        return 1.0 if epoch < self.keep else self.gamma ** (epoch - self.keep + 1)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int,
                    steps_per_epoch: int) -> LRScheduler:
    warmup = min(config.warmup_steps, max(total_steps - 1, 0))
    after = max(total_steps - warmup, 1)
    if config.schedule == "cosine":
        main = CosineAnnealingLR(optimizer, T_max=after, eta_min=config.min_lr)
    elif config.schedule == "step":
        main = StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    elif config.schedule == "epoch_decay":
        main = LambdaLR(optimizer, _EpochDecay(steps_per_epoch, config.decay_after_epochs, config.gamma))
    else:
        main = LambdaLR(optimizer, lambda step: 1.0)
    if warmup == 0:
        return main
    ramp = LinearLR(optimizer, start_factor=1.0 / (warmup + 1), end_factor=1.0, total_iters=warmup)
    return SequentialLR(optimizer, [ramp, main], milestones=[warmup])

