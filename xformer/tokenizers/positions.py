"""Absolute positions, added to the token embeddings by a tokenizer: learned, sinusoidal, none.

Each is a module whose ``forward(n, offset)`` gives the (n, d) vectors of positions offset .. offset+n-1.
Rotary positions rotate queries and keys inside attention instead (``xformer/core/positions.py``);
an image grid's 2-D sine-cosine positions are in ``image.py``.
"""
from __future__ import annotations

import numbers

import torch
from torch import Tensor, nn


def sinusoidal_table(n_positions: int, dim: int, base: float = 10000.0) -> Tensor:
    """Vaswani et al. (2017) encodings, shape (n_positions, dim).

    PE(pos, 2i)   = sin(pos / base^(2i/d))
    PE(pos, 2i+1) = cos(pos / base^(2i/d))
    """
    if dim % 2:
        raise ValueError(f"sinusoidal positions need an even dimension, got {dim}")
    pos = torch.arange(n_positions, dtype=torch.float64).unsqueeze(1)
    inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    table = torch.zeros(n_positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * inv_freq)
    table[:, 1::2] = torch.cos(pos * inv_freq)
    return table.float()


class LearnedPositions(nn.Module):
    """A trainable table of ``max_positions`` vectors; positions beyond it are an error."""

    def __init__(self, max_positions: int, dim: int, init_std: float = 0.02):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(max_positions, dim) * init_std)

    def forward(self, n: int, offset: int = 0) -> Tensor:
        if offset + n > self.weight.shape[0]:
            raise ValueError(
                f"sequence of {offset + n} positions is longer than the {self.weight.shape[0]} "
                "learned positions; use shorter inputs or a larger max_positions"
            )
        return self.weight[offset : offset + n]


class UniformLearnedPositions(LearnedPositions):
    """Learned positions drawn from U(-a, a), a = 0.02: PatchTST's ``W_pos`` (``pe='zeros'``, ``learn_pe``).

    Its spread is a / sqrt(3) = 0.0115, about half the 0.02 of :class:`LearnedPositions`.
    """

    def __init__(self, max_positions: int, dim: int, bound: float = 0.02):
        super().__init__(max_positions, dim)
        nn.init.uniform_(self.weight, -bound, bound)


class SinusoidalPositions(nn.Module):
    """Fixed sinusoidal table (see :func:`sinusoidal_table`), computed once as a buffer."""

    def __init__(self, max_positions: int, dim: int, base: float = 10000.0):
        super().__init__()
        self.register_buffer("table", sinusoidal_table(max_positions, dim, base), persistent=False)

    def forward(self, n: int, offset: int = 0) -> Tensor:
        if offset + n > self.table.shape[0]:
            raise ValueError(f"sequence of {offset + n} positions exceeds max_positions={self.table.shape[0]}")
        return self.table[offset : offset + n]


class NoPositions(nn.Module):
    """No absolute position information (e.g. with rotary embeddings, or for sets)."""

    def forward(self, n: int, offset: int = 0) -> Tensor | float:
        return 0.0


def make_positions(kind: str, max_positions: int, dim: int) -> nn.Module:
    """Build the additive position module named ``kind``: learned, learned_uniform, sinusoidal or none."""
    kinds = {"learned": LearnedPositions, "learned_uniform": UniformLearnedPositions, "sinusoidal": SinusoidalPositions}
    if isinstance(max_positions, bool) or not isinstance(max_positions, numbers.Integral) or max_positions < 1:
        raise ValueError(f"max_positions must be a whole number >= 1, got {max_positions!r}")
    if kind == "none" or kind == "rope":
        return NoPositions()
    if kind not in kinds:
        raise ValueError(f"unknown positions {kind!r}; choose one of learned, learned_uniform, sinusoidal, rope, none")
    return kinds[kind](max_positions, dim)


__all__ = ["LearnedPositions", "NoPositions", "SinusoidalPositions", "UniformLearnedPositions", "make_positions",
           "sinusoidal_table"]
