"""Dense relative localization beside a classifier (Liu et al. 2021, "Efficient Training of Visual
Transformers with Small Datasets", NeurIPS; their code: yhlleo/VTs-Drloc).

A self-supervised task on the final grid of tokens makes each token say where it is: the spatial
knowledge a CNN gets from its architecture, which a transformer trained on few images must learn. From
the core's output on a grid of k_r x k_c cells, e_ij, m pairs of cells per image are drawn uniformly
(with replacement) and a small MLP f reads each pair and predicts their offset:

    (u, v) = f([e_ij ; e_pq])                          f: Linear(2d, h) - ReLU - Linear(h, h) - ReLU - Linear(h, 2)
    L_loc = 1 / (2 B m) sum_pairs |u - (i - p)| + |v - (j - q)|      (L1, in cells)
    L = L_ce + lambda L_loc

The reference's defaults: h = 512, lambda 0.5 (Swin) or 0.1 (CvT, T2T), m = 32 or 64 (here m <= 1024, lambda a
finite number >= 0). It adds the term in training only; so does this head, which keeps the validation and test
losses the plain cross-entropy (comparable with any other classifier's). Under distillation the hook mixes this
loss as the student's own: (1 - alpha) (L_ce + lambda L_loc) + alpha L_teacher.
"""
from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core import CoreConfig
from ..errors import ConfigError
from ..registry import check_sizes, register_head
from ..tokens import Tokens, token_state
from .classification import ClassificationHead


MAX_PAIRS = 1024  # pairs per image: 16 times the reference's most, bounding the (batch, pairs, 2 d) gather


class RelativeLocalization(nn.Module):
    """L_loc of ``m`` random pairs of cells per image of a (B, rows * cols, d) grid of tokens (raster order)."""

    def __init__(self, dim: int, pairs: int = 32, hidden_dim: int = 512):
        super().__init__()
        self.pairs = pairs
        self.mlp = nn.Sequential(nn.Linear(2 * dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim),
                                 nn.ReLU(), nn.Linear(hidden_dim, 2))

    def forward(self, cells: Tensor, grid: tuple[int, int]) -> Tensor:
        rows, cols = grid
        b = cells.shape[0]
        first = torch.randint(rows * cols, (b, self.pairs), device=cells.device)
        second = torch.randint(rows * cols, (b, self.pairs), device=cells.device)
        offset = torch.stack([first // cols - second // cols, first % cols - second % cols], dim=-1)

        def take(index: Tensor) -> Tensor:
            return torch.gather(cells, 1, index.unsqueeze(-1).expand(-1, -1, cells.shape[-1]))

        predicted = self.mlp(torch.cat([take(first), take(second)], dim=-1))
        return F.l1_loss(predicted.float(), offset.float())


class LocalizingClassificationHead(ClassificationHead):
    """The classification head plus ``weight`` x L_loc in training (module docstring)."""

    def __init__(self, *args, weight: float = 0.5, pairs: int = 32, hidden_dim: int = 512, **kwargs):
        super().__init__(*args, **kwargs)
        self.weight = weight
        self.localization = RelativeLocalization(self.fc.in_features, pairs, hidden_dim)

    def forward(self, hidden: Tensor, tokens: Tokens, batch: dict) -> dict:
        out = super().forward(hidden, tokens, batch)
        if self.training and "loss" in out and self.weight > 0:
            n_prefix = tokens.state.prefix_tokens or 0
            out["loss"] = out["loss"] + self.weight * self.localization(hidden[:, n_prefix:], tokens.state.grid)
        return out


@register_head("classification_drloc")
def classification_drloc_head(core: CoreConfig, tokenizer: nn.Module, n_classes: int, pool: str = "cls",
                              norm: bool = False, dropout: float = 0.0, label_smoothing: float = 0.0,
                              n_heads: int | None = None, weight: float = 0.5, pairs: int = 32,
                              hidden_dim: int = 512) -> LocalizingClassificationHead:
    """``classification``'s arguments, and ``weight`` (lambda), ``pairs`` (m per image), ``hidden_dim`` (h)."""
    check_sizes("model.head.args", n_classes=n_classes, n_heads=n_heads, pairs=pairs, hidden_dim=hidden_dim)
    if pairs > MAX_PAIRS:  # each pair's two tokens are gathered for the whole batch at every step
        raise ConfigError(f"model.head.args.pairs must be at most {MAX_PAIRS} (cell pairs drawn per image; the "
                          f"reference draws 32 or 64), got {pairs}")
    if not (isinstance(weight, numbers.Real) and not isinstance(weight, bool) and 0 <= weight < math.inf):
        raise ConfigError(f"model.head.args.weight must be >= 0 and finite (the localization term's lambda, e.g. "
                          f"0.5), got {weight!r}")
    if token_state(tokenizer).grid is None:
        raise ValueError("classification_drloc needs image tokens on a grid (image_patches, image_conv or "
                         "image_hybrid); use head name classification for these tokens")
    return LocalizingClassificationHead(core.d_model, n_classes, pool, n_heads or core.n_heads, norm, core.norm_eps,
                                        dropout, label_smoothing, weight=weight, pairs=pairs, hidden_dim=hidden_dim)


__all__ = ["LocalizingClassificationHead", "RelativeLocalization"]
