"""Rotary positions, the ones applied inside attention.

Absolute positions (learned, sinusoidal, 2-D sine-cosine) are added to the token
embeddings by a tokenizer and live with the tokenizers (``xformer/tokenizers/positions.py``,
``xformer/tokenizers/image.py``); the core only rotates queries and keys.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (Su et al. 2021), "rotate half" layout (GPT-NeoX, LLaMA).

    The pair (x_i, x_{i+d/2}) at position p is rotated by the angle p * theta_i,
    theta_i = base^(-2i/d):
        rot(x) = x * cos(p theta) + rotate_half(x) * sin(p theta),
        rotate_half([x1, x2]) = [-x2, x1].
    A rotation keeps |x|, and <rot_p(q), rot_s(k)> depends only on p - s.
    """

    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary embeddings need an even head dimension, got {head_dim}")
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """Rotate x of shape (B, heads, N, head_dim) for positions offset .. offset+N-1."""
        n = x.shape[-2]
        pos = torch.arange(offset, offset + n, device=x.device, dtype=torch.float32)
        angles = torch.outer(pos, self.inv_freq)
        angles = torch.cat([angles, angles], dim=-1)
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        rotated_half = torch.cat([-x2, x1], dim=-1)
        return x * cos + rotated_half * sin
