"""Sharpness-Aware Minimization (train.sam): Foret et al. 2021, "Sharpness-Aware Minimization for
Efficiently Improving Generalization", and its adaptive form ASAM (Kwon et al. 2021).

SAM looks for weights whose whole neighbourhood has a low loss, min_w max_{||e|| <= rho} L(w + e). To first
order the inner maximum lies at

    e(w) = rho g / ||g||_2                                        g = grad L(w)          (SAM)
    e(w) = rho T_w^2 g / ||T_w g||_2,   T_w = diag(|w| + eta)                            (ASAM, adaptive)

T_w scales every trained parameter, biases, class token and positions included: davda54/sam's adaptive
form (|w| alone, i.e. eta 0) with the paper's eta. The official ASAM code (SamsungLabs/ASAM ``asam.py``,
``ascent_step``) scales only parameters whose name contains ``weight`` (matrices, kernels, norm gains) and
leaves the others unscaled (T = 1), so the same rho spreads e differently there: much more on biases, tokens
and positions (near zero, they get almost none here), less on the weight matrices. Its rho (0.5-2 in the
paper's runs) belongs to that form; results do not carry over at equal rho.

The optimizer takes its step at w with the gradient found there, grad L(w + e(w)). So one optimizer
step costs two forward / backward passes over the same batch: the first for g (its loss is the one logged),
the second at w + e. The norm runs over every trained parameter together; with DDP the first pass's
gradients are the ranks' average, so every rank perturbs its weights alike. Chen et al. 2022 ("When Vision
Transformers Outperform ResNets without Pretraining or Strong Data Augmentations") and SAMformer (Ilbert et
al. 2024, for forecasting transformers) use it where a transformer's training loss keeps falling while its
validation loss turns up early.

BatchNorm's running statistics are kept as the first pass left them: the second pass would otherwise fold
the statistics of the perturbed weights into them (davda54/sam's ``disable_running_stats`` does the same
with momentum 0). The weights are restored exactly (a copy, not w + e - e).
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .config import Sam


def _running_statistics(norm: _BatchNorm) -> list[torch.Tensor]:
    return [b for b in (norm.running_mean, norm.running_var, norm.num_batches_tracked) if b is not None]


class SharpnessAware:
    """Moves ``model``'s weights to w + e(w) from the gradients they hold (``perturbed``), and back."""

    def __init__(self, model: nn.Module, config: Sam):
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.norms = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
        self.rho, self.adaptive, self.eta = config.rho, config.adaptive, config.eta

    @torch.no_grad()
    def _ascent(self) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """e(w) for every parameter with a gradient (the equations above)."""
        pairs = [(p, p.grad) for p in self.params if p.grad is not None]
        scales = [p.abs() + self.eta if self.adaptive else None for p, _ in pairs]
        scaled = [g if t is None else t * g for (_, g), t in zip(pairs, scales)]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(s.float()) for s in scaled]))
        factor = self.rho / (norm + 1e-12)
        return [(p, (s if t is None else t * s) * factor) for (p, _), s, t in zip(pairs, scaled, scales)]

    @contextmanager
    def perturbed(self):
        """Inside: the weights at w + e(w), no gradients held, BatchNorm statistics frozen. On leaving: the
        weights and statistics as they were, the gradients those computed inside (for the optimizer's step)."""
        steps = self._ascent()
        saved = [p.detach().clone() for p, _ in steps]
        statistics = [[b.clone() for b in _running_statistics(m)] for m in self.norms]
        with torch.no_grad():
            for p, e in steps:
                p.add_(e)
                p.grad = None
        try:
            yield
        finally:
            with torch.no_grad():
                for (p, _), w in zip(steps, saved):
                    p.copy_(w)
                for m, kept in zip(self.norms, statistics):
                    for b, k in zip(_running_statistics(m), kept):
                        b.copy_(k)
