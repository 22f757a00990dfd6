"""AdamW (or SGD) with decay / no-decay parameter groups, and the learning-rate schedules recipes use.

Weight decay (decoupled, Loshchilov & Hutter 2019: w <- w - lr * wd * w) is applied to every
trained parameter with two or more dimensions, by shape alone: weight matrices, conv kernels and
embedding tables, and also learned positions (``pos_grid``, ``pos_prefix``, a position table), the
class and register tokens (``cls_token`` (1, 1, d), ``reg_tokens``) and attention pooling's
``query``. Biases, norm gains and shifts, layer scales and every other 1-D parameter are not decayed.
This is nanoGPT's convention (``configure_optimizers``: decay iff ``p.dim() >= 2``, so its ``wpe``
positions decay too). timm's and DeiT's ViTs differ: their ``no_weight_decay()`` also exempts
``pos_embed``, ``cls_token`` and ``reg_token`` (``create_optimizer_v2``), so a timm recipe run here
also decays those (each step multiplies them by 1 - lr_t wd, besides their gradient step).

Layer-wise learning-rate decay (``train.layer_decay``, timm's ``--layer-decay``; BEiT, Bao et al. 2022, and
MAE fine-tune a pretrained ViT so): with L blocks, the tokenizer (embeddings, positions) is layer 0, block i
layer i + 1, the final norm and the head layer L + 1, and a parameter of layer l learns at

    lr_l(t) = lr(t) * decay ** (L + 1 - l)

so the head learns at the schedule's rate and each layer below at ``decay`` times the one above; a stack's final
norm learns with its last block, as timm's ``param_groups_layer_decay`` puts ``norm`` (an encoder-decoder's
decoder blocks come after its encoder's). The whole schedule scales, its floor ``min_lr``
too, as timm's: with it the cosine is a LambdaLR of the closed form, each group's rate times its scale.

Every schedule is built from torch.optim.lr_scheduler and stepped once per
optimizer step; the optional warmup is a LinearLR from lr/(warmup+1) to lr,
chained in front with SequentialLR.
"""
from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LinearLR, LRScheduler, SequentialLR, StepLR

from ..errors import ConfigError
from .config import TrainConfig
from .switched import SCHEDULE_READS


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: parameters with >= 2 dims decay (tokens and positions too), the others (biases, norms) do not."""
    decay, no_decay = [], []
    for p in model.parameters():  # shared (tied) parameters are listed once
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def layer_ids(model: nn.Module) -> tuple[dict[str, int], int]:
    """({parameter name: its layer}, L): the tokenizer 0, block i of the core i + 1 (a decoder's after an encoder's),
    a stack's final norm its last block's layer (timm's ``norm``), everything else (the head) L + 1."""
    core = getattr(model, "core", None)
    stacks = [name for name in ("encoder", "decoder") if hasattr(core, name)]
    prefixes = [f"core.{s}.blocks." for s in stacks] if stacks else ["core.blocks."]
    counts = [len(getattr(getattr(core, s), "blocks", [])) for s in stacks] if stacks else \
        [len(getattr(core, "blocks", []))]
    if core is None or not sum(counts):
        raise ConfigError("train.layer_decay scales the learning rate of a transformer's layers, and this model "
                          "has none (a baseline); leave it out")
    ids = {}
    for name, _ in model.named_parameters():
        layer = 0 if name.startswith("tokenizer.") else sum(counts) + 1
        for before, (prefix, count) in enumerate(zip(prefixes, counts)):
            if name.startswith(prefix):
                layer = sum(counts[:before]) + int(name[len(prefix):].split(".")[0]) + 1
            elif name.startswith(prefix.replace("blocks.", "norm.")):
                layer = sum(counts[:before + 1])
        ids[name] = layer
    return ids, sum(counts)


def layer_decay_groups(model: nn.Module, weight_decay: float, lr: float, decay: float) -> list[dict]:
    """``param_groups`` per layer, each with ``lr_scale`` = decay ** (L + 1 - layer) and its ``lr``."""
    ids, n_layers = layer_ids(model)
    groups: dict[tuple[int, bool], dict] = {}
    seen = set()
    for name, p in model.named_parameters():  # shared (tied) parameters: their first name's layer
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            scale = decay ** (n_layers + 1 - ids[name])
            group = groups.setdefault((ids[name], p.ndim >= 2), {
                "params": [], "weight_decay": weight_decay if p.ndim >= 2 else 0.0, "lr_scale": scale,
                "lr": lr * scale})
            group["params"].append(p)
    return [groups[key] for key in sorted(groups)]


def check_read_settings(config: TrainConfig) -> None:
    """Refuse a schedule's setting given with another schedule, and AdamW's betas with SGD, which would never read
    them (train.gamma=0.5 under the default cosine schedule: a run at a rate it did not ask for). At its default
    (what every run's config.yaml holds) a setting passes."""
    defaults = {field.name: field.default for field in dataclasses.fields(TrainConfig)}
    for key, readers in SCHEDULE_READS.items():
        if config.schedule not in readers and getattr(config, key) != defaults[key]:
            raise ConfigError(f"train.{key}={getattr(config, key)} does nothing with train.schedule={config.schedule}; "
                              f"give train.schedule={' or '.join(readers)}, or leave it out (its default "
                              f"{defaults[key]})")
    if config.optimizer == "sgd" and list(config.betas) != list(defaults["betas"]):
        raise ConfigError(f"train.betas={list(config.betas)} does nothing: SGD has no betas (its momentum); give "
                          "train.optimizer=adamw, or leave them out")


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay), or with ``optimizer: sgd`` timm's SGD: momentum 0.9 and Nesterov unless
    ``momentum`` / ``nesterov`` say otherwise, weight decay as an L2 term of the gradient (torch's and timm's)."""
    groups = param_groups(model, config.weight_decay) if config.layer_decay is None else \
        layer_decay_groups(model, config.weight_decay, config.lr, config.layer_decay)
    if config.optimizer == "adamw":
        given = [f"train.{k}={getattr(config, k)}" for k in ("momentum", "nesterov") if getattr(config, k) is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} does nothing: AdamW has no momentum setting (its betas); give "
                              "train.optimizer=sgd, or leave it out")
        return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)
    momentum = 0.9 if config.momentum is None else config.momentum
    if not (math.isfinite(momentum) and 0 <= momentum < 1):
        raise ConfigError(f"train.momentum must be in [0, 1), got {momentum}; e.g. 0.9")
    nesterov = config.nesterov is not False
    if nesterov and momentum == 0:
        raise ConfigError("Nesterov momentum needs train.momentum > 0; give train.nesterov=false for plain SGD")
    return torch.optim.SGD(groups, lr=config.lr, momentum=momentum, nesterov=nesterov)


class _Cosine:
    """factor(t) = (min_lr + (lr - min_lr) (1 + cos(pi t / T)) / 2) / lr: CosineAnnealingLR's closed form as a
    factor of each group's own rate, so that a scaled group's floor is min_lr times its scale (layer decay)."""

    def __init__(self, lr: float, min_lr: float, steps: int):
        self.lr, self.min_lr, self.steps = lr, min_lr, steps

    def __call__(self, step: int) -> float:
        return (self.min_lr + (self.lr - self.min_lr) * (1 + math.cos(math.pi * min(step, self.steps) / self.steps))
                / 2) / self.lr


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
    if config.schedule == "cosine" and config.layer_decay is not None:
        main = LambdaLR(optimizer, _Cosine(config.lr, config.min_lr, after))
    elif config.schedule == "cosine":
        main = CosineAnnealingLR(optimizer, T_max=after, eta_min=config.min_lr)
    elif config.schedule == "linear":  # lr * (1 + (min_lr / lr - 1) t / T): to min_lr at t = T, then held there
        main = LinearLR(optimizer, start_factor=1.0, end_factor=config.min_lr / config.lr, total_iters=after)
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

